"""Prompt-injection signals in what the verifier will read: added diff lines, file names, commit
messages, the plan the change brings and the pull-request text (``verify --context FILE``).

Three families, one finding id ``prompt_injection_signal`` (high):

* bidirectional controls and invisible characters (U+202A-U+202E, U+2066-U+2069, U+200E/U+200F,
  U+061C, zero-width U+200B-U+200D, U+2060, U+FEFF except a byte-order mark that opens a file,
  Unicode tag characters U+E0000-U+E007F);
* HTML or Markdown comments that address an AI or a reviewer;
* instructions aimed at the reviewer ("ignore previous instructions", "you are now ...", "approve
  this change", "system prompt", paraphrases) in English, Spanish, French, German, Portuguese,
  Italian, Russian, Chinese, Japanese and Korean.

Text is normalised first (NFKC, invisible characters removed), so full-width letters or a zero-width
space inside a word do not hide a phrase. In documentation files, a phrase that sits inside quotes or
backticks (prose *about* prompt injection) is ``low``: it is recorded, it does not block.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

from agentflow.rules import Finding, Rule, finding, finding_id
from agentflow.rules.change import Change

RULE = "prompt_injection_signal"

_INVISIBLE = re.compile(
    "[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\u200b-\u200d\u2060\u2061-\u2064\ufeff\U000e0000-\U000e007f]"
)
_NAMES = {
    **{
        chr(c): "a bidirectional control"
        for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x61C]
    },
    **{
        chr(c): "a zero-width character"
        for c in [0x200B, 0x200C, 0x200D, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0xFEFF]
    },
}
_DOC = re.compile(r"\.(md|markdown|rst|txt|adoc|asciidoc|org)$", re.IGNORECASE)

_AI = (
    r"(?:ai|a\.i\.|llm|llms|assistant|language\s+model|chat\s*bot|claude|gpt[-\w]*|chatgpt|copilot|gemini|"
    r"verifier|review(?:ing)?\s*bot|ai\s+reviewer|automated\s+review(?:er)?|code\s*rabbit|agent)"
)
_WHO = rf"(?:{_AI}|reviewers?|approvers?|maintainers?\s+bot)"
_PHRASES: list[tuple[str, re.Pattern[str]]] = [
    (
        "en",
        re.compile(
            r"\b(ignore|disregard|forget|override|bypass|skip)\s+(all\s+|any\s+|of\s+)*(the\s+|your\s+|my\s+|these\s+)?"
            r"(previous|prior|above|earlier|preceding|former|original|system|initial|old|existing)\s+"
            r"(instructions?|prompts?|rules|directions|guidelines|directives|messages?|context|orders)"
            r"|\b(ignore|disregard|forget)\s+(all|everything)\s+(your\s+)?(instructions?|rules|you\s+(were|have\s+been)\s+told|above)"
            r"|\b(ignore|disregard|forget|override)\s+your\s+(instructions?|rules|guidelines|system\s+prompt|programming)"
            rf"|\byou\s+are\s+now\s+(an?\s+|the\s+|my\s+|in\s+)?([\w-]+\s+){{0,3}}({_AI}|reviewer|approver|bot|dan|mode|jailbroken|unrestricted)\b"
            r"|\byou\s+are\s+no\s+longer\s+(an?\s+|the\s+|bound)"
            rf"|\bfrom\s+now\s+on,?\s+(you|the\s+{_WHO})\s+(are|will|must|should|shall)\b"
            r"|\byour\s+(new|real|actual|true)\s+(role|task|instructions?|goal|job|purpose)\s+(is|are)\b"
            rf"|\b(pretend|act)\s+(to\s+be|as\s+if\s+you\s+are|as|like)\s+(an?\s+|the\s+)?([\w-]+\s+)?({_AI}|reviewer|approver)\b"
            r"|\b(approve|accept|merge|lgtm|pass)\s+this\s+(change|pr|pull\s+request|merge\s+request|mr|commit|diff|patch|code|verification)\b"
            rf"|\b(you|{_WHO})\s+(must|should|shall|will|have\s+to|need\s+to)\s+(approve|accept|merge|pass)\b"
            r"|\b(please|just|simply|always)\s+(approve|accept|merge)\b"
            r"|\b(mark|report|treat|consider|rate|label)\s+(this|it|the\s+(change|pr|code|diff))\s+as\s+(approved|safe|correct|passing|verified|secure)\b"
            r"|\b(reveal|print|show|repeat|output|leak|ignore|override|disregard|forget|replace)\s+(your\s+|the\s+)?(system\s+prompt|initial\s+instructions)"
            r"|\b(new|updated|real|hidden)\s+system\s+prompt|\bsystem\s+prompt\s*(:|override|update)|<\|?\s*/?\s*(system|im_start|im_end)\s*\|?>"
            r"|\[\s*/?\s*(system|inst)\s*\]|\bBEGIN\s+(SYSTEM|NEW)\s+(PROMPT|INSTRUCTIONS)"
            rf"|\b(note|message|instructions?|attention|hey|dear|hello|hi)\s+(to\s+|for\s+)?(the\s+|all\s+|any\s+)?{_AI}s?\s*[:,!]"
            r"|\b(do\s+not|don'?t|never)\s+(report|flag|mention|raise|list|point\s+out)\s+(any\s+)?(issues?|findings?|problems?|vulnerabilit\w+|bugs)\b"
            r"|\bno\s+(further\s+)?review\s+(is\s+)?(needed|required)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "es",
        re.compile(
            r"\b(ignora|ignore|olvida|olvide|omite)\s+(todas\s+)?(las\s+)?(tus\s+)?instrucciones(\s+(anteriores|previas))?"
            r"|\bahora\s+eres\b|\ba\s+partir\s+de\s+ahora\s+eres\b|\baprueba\s+(este|esta|el|la)\s+(cambio|pr|c[oó]digo|solicitud)"
            r"|\b(prompt|indicaciones|instrucciones)\s+del\s+sistema\b|\bdebes\s+aprobar\b",
            re.IGNORECASE,
        ),
    ),
    (
        "fr",
        re.compile(
            r"\b(ignore[zr]?|oublie[zr]?)\s+(toutes\s+)?(les|tes|vos)\s+instructions(\s+(pr[ée]c[ée]dentes|ant[ée]rieures))?"
            r"|\b(tu\s+es|vous\s+[êe]tes)\s+(maintenant|d[ée]sormais)\b|\bapprouve[zr]?\s+(ce|cette|cet)\s+"
            r"|\b(invite|prompt|instructions?)\s+(du\s+)?syst[èe]me\b|\b(tu\s+dois|vous\s+devez)\s+approuver\b",
            re.IGNORECASE,
        ),
    ),
    (
        "de",
        re.compile(
            r"\b(ignoriere|ignorieren\s+sie|vergiss|vergessen\s+sie)\s+(alle\s+)?(vorherigen\s+|bisherigen\s+|obigen\s+|deine\s+|ihre\s+)?"
            r"(anweisungen|instruktionen|befehle|regeln)"
            r"|\b(du\s+bist|sie\s+sind)\s+(jetzt|nun|ab\s+sofort)\s+(ein|eine|der|die|das)?\b"
            r"|\b(genehmige|genehmigen\s+sie|akzeptiere|billige)\s+(diese|diesen|dieses|dies)\b"
            r"|\b(system-?prompt|systemanweisung(en)?)\b|\b(du\s+musst|sie\s+m[üu]ssen)\s+(das\s+)?genehmigen\b",
            re.IGNORECASE,
        ),
    ),
    (
        "pt",
        re.compile(
            r"\b(ignore|ignora|esque[çc]a|desconsidere)\s+(todas\s+)?(as\s+)?(suas\s+)?instru[çc][õo]es(\s+(anteriores|pr[ée]vias))?"
            r"|\b(agora\s+voc[êe]\s+[ée]|voc[êe]\s+agora\s+[ée])\b|\baprove\s+(este|esta|essa|esse|isso)\b"
            r"|\bprompt\s+do\s+sistema\b|\bvoc[êe]\s+deve\s+aprovar\b",
            re.IGNORECASE,
        ),
    ),
    (
        "it",
        re.compile(
            r"\bignora\s+(tutte\s+)?le\s+istruzioni|\bora\s+sei\s+(un|una)\b|\bapprova\s+(questa|questo)\b"
            r"|\bprompt\s+di\s+sistema\b",
            re.IGNORECASE,
        ),
    ),
    (
        "ru",
        re.compile(
            r"(игнорируй(те)?|забудь(те)?|проигнорируй(те)?)\s+(все\s+)?(предыдущие\s+|прошлые\s+|прежние\s+|свои\s+)?"
            r"(инструкции|указания|команды|правила)"
            r"|теперь\s+ты\b|ты\s+теперь\b|одобри(те)?\s+(этот|это|эти|данный)|системн(ый|ого|ом)\s+промпт",
            re.IGNORECASE,
        ),
    ),
    (
        "zh",
        re.compile(
            r"(忽略|无视|忘记|忽视|無視|忘記)(掉)?(之前|以前|上面|前面|先前|所有|全部|上述|此前)?(的)?(所有)?(指令|指示|说明|說明|提示|规则|規則)"
            r"|你现在是|你現在是|从现在开始你|從現在開始你|(批准|通过|通過|同意)(这个|這個|此|该|該)(更改|变更|變更|修改|合并请求|PR|提交)"
            r"|系统提示|系統提示",
        ),
    ),
    (
        "ja",
        re.compile(
            r"(以前|前|上記|これまで|すべて|全て)の(指示|命令|ルール)を(すべて|全て)?(無視|忘れ)"
            r"|指示を(すべて|全て)?無視|あなたは(今|今から|これから)|今からあなたは"
            r"|(この|本)(変更|PR|プルリクエスト|コミット|差分)を承認|承認してください|システムプロンプト",
        ),
    ),
    (
        "ko",
        re.compile(r"이전\s*(의\s*)?(지시|명령|지침)(을|를)?\s*무시|시스템\s*프롬프트|이\s*(변경|PR)(을|를)?\s*승인"),
    ),
]
_FORGED = re.compile(r"\bdecision\W{0,3}\s*[:=]\s*\W{0,3}approve\b", re.IGNORECASE)  # prose only: code holds verdicts
_HTML_COMMENT = re.compile(r"<!--(.*?)(-->|$)", re.DOTALL)
_MD_COMMENT = re.compile(r"^\s*\[(?://|comment|_)\]:\s*(?:#|<>)\s*[(\"'](.*)[)\"']\s*$", re.MULTILINE)
_ADDRESS = re.compile(rf"\b{_WHO}\b", re.IGNORECASE)
_QUOTED = re.compile(r"(`[^`]*`|\"[^\"]*\"|“[^”]*”|'[^']*'|«[^»]*»|„[^“”]*[“”])")


def normalise(text: str) -> str:
    """NFKC with invisible characters removed: what a phrase match sees."""
    return unicodedata.normalize("NFKC", _INVISIBLE.sub("", text))


def phrase(text: str) -> tuple[str, str] | None:
    """``(language, matched text)`` of the first reviewer-aimed instruction in ``text``."""
    norm = normalise(text)
    for language, pattern in _PHRASES:
        match = pattern.search(norm)
        if match:
            return language, match.group(0)
    return None


def invisible(text: str, *, bom_ok: bool = False) -> str | None:
    """The description of the first invisible or bidirectional character in ``text`` (None if none)."""
    for match in _INVISIBLE.finditer(text):
        ch = match.group(0)
        if bom_ok and ch == "\ufeff" and match.start() == 0:
            continue
        name = _NAMES.get(ch) or "a Unicode tag character"
        return f"{name} (U+{ord(ch):04X})"
    return None


def _in_quotes(text: str, matched: str) -> bool:
    norm = normalise(text)
    return any(matched in q for q in _QUOTED.findall(norm))


def scan_text(
    text: str,
    *,
    where: str,
    file: str | None = None,
    line: int | None = None,
    doc: bool = False,
    bom_ok: bool = False,
    key: str | None = None,
) -> list[Finding]:
    """Injection findings in one piece of text (a diff line, a message, a file name)."""
    found = _scan(text, where=where, file=file, line=line, doc=doc, bom_ok=bom_ok)
    if key and file is None:
        for item in found:
            item["id"] = finding_id(RULE, key)
    return found


def _scan(text: str, *, where: str, file: str | None, line: int | None, doc: bool, bom_ok: bool) -> list[Finding]:
    found: list[Finding] = []
    if hidden := invisible(text, bom_ok=bom_ok):
        found.append(
            _finding(
                f"{where} contains {hidden}, which can hide or reorder what a reviewer reads",
                file,
                line,
                "remove the invisible or bidirectional character",
            )
        )
    for body in [m.group(1) for m in _HTML_COMMENT.finditer(text)] + _MD_COMMENT.findall(text):
        if _ADDRESS.search(normalise(body)):
            found.append(
                _finding(
                    f"{where} has a hidden comment that addresses an AI or a reviewer: `{_short(body)}`",
                    file,
                    line,
                    "remove the comment; talk to reviewers in the open",
                )
            )
            break
    hit = phrase(text)
    if hit is None and (doc or file is None) and (forged := _FORGED.search(normalise(text))):
        hit = ("en", forged.group(0))
    if hit:
        language, matched = hit
        quoted = doc and _in_quotes(text, matched)
        found.append(
            _finding(
                f"{where} holds an instruction aimed at the reviewer ({language}): `{_short(matched)}`"
                + (" (quoted in documentation)" if quoted else ""),
                file,
                line,
                "remove the instruction; content under review must not address the reviewer",
                severity="low" if quoted else "high",
            )
        )
    return found


def _short(text: str) -> str:
    return " ".join(normalise(text).split())[:100]


def _finding(message: str, file: str | None, line: int | None, fix: str, severity: str = "high") -> Finding:
    return finding(
        RULE,
        message,
        file=file,
        line=line,
        severity=severity,
        suggestion=f"{fix}; auto-approval is void until then: only a human override (`agentflow approve "
        "--override`) opens the gate",
    )


def _sources(change: Change) -> Iterator[Finding]:
    for file in change.files:
        yield from scan_text(
            file.path.replace("_", " ").replace("-", " "), where=f"the file name {file.path!r}", file=file.path
        )
        if file.old_path:
            yield from scan_text(file.old_path, where=f"the old file name {file.old_path!r}", file=file.path)
        doc = bool(_DOC.search(file.path))
        added = file.added
        for line in added:
            yield from scan_text(
                line.text, where=f"{file.path}:{line.new}", file=file.path, line=line.new, doc=doc, bom_ok=line.new == 1
            )
        # comments and phrases spread over several added lines
        joined = "\n".join(line.text for line in added)
        for match in _HTML_COMMENT.finditer(joined):
            if "\n" in match.group(0) and _ADDRESS.search(normalise(match.group(1))):
                number = added[joined[: match.start()].count("\n")].new
                yield from scan_text(
                    match.group(0).replace("\n", " "),
                    where=f"{file.path}:{number}",
                    file=file.path,
                    line=number,
                    doc=doc,
                )
    for index, message in enumerate(change.commit_messages, 1):
        yield from scan_text(message, where=f"commit message {index}", key=f"commit-{index}")
    for label, text in change.texts:  # the PR text, the plan: no leniency for quotes there
        for number, line in enumerate(text.splitlines(), 1):
            yield from scan_text(line, where=f"{label}:{number}", bom_ok=number == 1, key=f"{label}:{number}")


def check_injection(change: Change) -> list[Finding]:
    seen: set[str] = set()
    found = []
    for item in _sources(change):
        key = item["id"] + item["message"]
        if key not in seen:
            seen.add(key)
            found.append(item)
    # one id per place: the message of the first hit at a place wins, the others are folded in
    by_id: dict[str, Finding] = {}
    for item in found:
        if item["id"] in by_id:
            first = by_id[item["id"]]
            if item["severity"] == "high" and first["severity"] != "high":
                by_id[item["id"]] = item
            continue
        by_id[item["id"]] = item
    return list(by_id.values())


RULES = [
    Rule(
        RULE,
        "bidi/invisible characters, hidden comments addressing an AI or reviewer, instructions aimed at the "
        "reviewer (10 languages) in added lines, file names, commit messages, the plan and the PR text",
        "high",
        check_injection,
    ),
]
