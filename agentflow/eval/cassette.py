"""Record and replay model exchanges: a cassette is a directory of ``<digest>.json`` files.

The digest is a SHA-256 of the request after :func:`normalize` (the case's commit ids, run ids,
timestamps, durations, the untrusted blocks' nonces and the temporary clone's path replaced by placeholders) and of the case's
repeat number, so the same question asked again maps to the same answer and a changed prompt
misses. Two levels:

* anthropic: at the HTTP level, an ``httpx2`` transport under the SDK's client (what the SDK
  sends, what the Messages API answered);
* scripted: at the model level (``ModelRequest`` → ``ModelResponse``).

A request that the cassette lacks in replay is recorded as a miss; the runner ends the eval with
exit 3 naming the case.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentflow.errors import UsageError
from agentflow.models.base import Model, ModelError, ModelRequest, ModelResponse

_NONCE = re.compile(r"<<<UNTRUSTED [^ >]+ ([0-9a-f]{8,})>>>")
_RUN_ID = re.compile(r"\b[a-z]{1,3}-\d{8}-[0-9a-f]{6}\b")
_TIME = re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?")
_DURATION = re.compile(r"\b\d+(?:\.\d+)?\s?(?:ms|s)\b")


@dataclass
class Volatile:
    """What changes from run to run of one case without changing the question."""

    commits: dict[str, str] = field(default_factory=dict)  # sha -> placeholder
    paths: dict[str, str] = field(default_factory=dict)  # absolute path -> placeholder

    def apply(self, text: str) -> str:
        for nonce in set(_NONCE.findall(text)):  # the untrusted blocks' per-prompt random markers
            text = text.replace(nonce, "<nonce>")
        for path, name in sorted(self.paths.items(), key=lambda item: -len(item[0])):
            text = text.replace(path, name)
        for sha, name in self.commits.items():
            text = re.sub(
                rf"\b{sha[:7]}[0-9a-f]{{0,33}}\b", lambda m, s=sha, n=name: n if s.startswith(m[0]) else m[0], text
            )
        text = _RUN_ID.sub("<id>", text)
        text = _TIME.sub("<time>", text)
        return _DURATION.sub("<duration>", text)


def normalize(payload: Any, volatile: Volatile) -> str:
    """The canonical JSON of ``payload`` with the volatile parts replaced."""
    return volatile.apply(json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


class Cassette:
    """A directory of recorded exchanges; ``mode`` is ``record`` or ``replay``."""

    def __init__(self, directory: Path, mode: str):
        self.directory = directory
        self.mode = mode
        self.misses: dict[str, str] = {}  # case key -> digest of the first request not found
        self._lock = threading.Lock()
        if mode == "replay" and not directory.is_dir():
            raise UsageError("no such cassette directory", where=directory, fix="record one first with --record DIR")
        if mode == "record":
            directory.mkdir(parents=True, exist_ok=True)

    def digest(self, kind: str, repeat: int, request: Any, volatile: Volatile) -> str:
        text = f"{kind}\n{repeat}\n{normalize(request, volatile)}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def load(self, digest: str) -> Any | None:
        path = self.directory / f"{digest}.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))["response"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"broken cassette entry: {exc}", where=path, fix="record the cassette again") from None

    def store(self, digest: str, case: str, response: Any) -> None:
        data = {"case": case, "response": response}
        path = self.directory / f"{digest}.json"
        path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")

    def miss(self, case_key: str, digest: str) -> None:
        with self._lock:
            self.misses.setdefault(case_key, digest)


class CassetteModel:
    """A ``Model`` recorded or replayed at the model level (the scripted backend)."""

    def __init__(self, inner: Model | None, cassette: Cassette, case: str, repeat: int, volatile: Volatile):
        self.inner = inner
        self.name = inner.name if inner is not None else "replay"
        self.cassette, self.case, self.repeat, self.volatile = cassette, case, repeat, volatile

    def complete(self, request: ModelRequest) -> ModelResponse:
        digest = self.cassette.digest("model", self.repeat, request.model_dump(mode="json"), self.volatile)
        if self.cassette.mode == "replay":
            stored = self.cassette.load(digest)
            if stored is None:
                self.cassette.miss(self.case, digest)
                raise ModelError(f"case {self.case}: the request is not in the cassette ({digest})")
            return ModelResponse.model_validate(stored)
        assert self.inner is not None
        response = self.inner.complete(request)
        self.cassette.store(digest, self.case, response.model_dump(mode="json"))
        return response


def http_client(cassette: Cassette, case: str, repeat: int, volatile: Volatile) -> Any:
    """An ``httpx2.Client`` for the anthropic SDK that records or replays through ``cassette``."""
    import httpx2

    class Transport(httpx2.BaseTransport):
        def __init__(self) -> None:
            self.real = httpx2.HTTPTransport() if cassette.mode == "record" else None

        def handle_request(self, request: httpx2.Request) -> httpx2.Response:
            try:
                body = json.loads(request.read() or b"null")
            except ValueError:
                body = request.content.decode("utf-8", "replace")
            digest = cassette.digest("http", repeat, {"path": request.url.path, "body": body}, volatile)
            if self.real is None:
                stored = cassette.load(digest)
                if stored is None:
                    cassette.miss(case, digest)
                    return httpx2.Response(
                        400,
                        headers={"x-should-retry": "false", "content-type": "application/json"},
                        json={
                            "type": "error",
                            "error": {"type": "invalid_request_error", "message": f"not in the cassette ({digest})"},
                        },
                        request=request,
                    )
                return httpx2.Response(
                    stored["status"],
                    headers={"content-type": stored.get("content_type", "application/json")},
                    content=stored["body"].encode("utf-8"),
                    request=request,
                )
            response = self.real.handle_request(request)
            content = response.read()
            if response.status_code < 400:  # only answers are recorded, never an outage
                cassette.store(
                    digest,
                    case,
                    {
                        "status": response.status_code,
                        "content_type": response.headers.get("content-type", "application/json"),
                        "body": content.decode("utf-8"),
                    },
                )
            headers = {"content-type": response.headers.get("content-type", "application/json")}
            return httpx2.Response(response.status_code, headers=headers, content=content, request=request)

        def close(self) -> None:
            if self.real is not None:
                self.real.close()

    return httpx2.Client(transport=Transport())
