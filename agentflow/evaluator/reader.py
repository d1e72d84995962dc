"""Reading event logs: JSON Lines (plain or gzip) streamed in blocks, JSON arrays streamed per element.

JSON Lines are read in ``BLOCK``-sized pieces split on newlines, so memory does not depend on the
file's size. A large plain (not compressed) JSON Lines file is split into byte ranges aligned on
newlines and analysed in parallel (``workers``): the parent analyses the first range, forked worker
processes the others; each returns its aggregator and the parent merges them, shifting line
numbers by the lines of the ranges before.
Gzip streams cannot be split, so they are read by one process.

A file whose first non-blank character is ``[`` is a JSON array. It is decoded one element at a
time with the standard library's ``raw_decode`` (slower than the JSON Lines path, but streaming).
A syntax error inside an array cannot be resynchronised reliably, so it is reported with its line
number and the rest of that file is skipped; the analysis of the other files goes on.
"""

from __future__ import annotations

import codecs
import gzip
import json
import os
import re
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from agentflow.errors import UsageError
from agentflow.evaluator.schema import Aggregator, hash_census

BLOCK = 1 << 20
PARALLEL_MIN_BYTES = 64 << 20
MAX_ARRAY_ELEMENT = 16 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_SPACE = re.compile(r"[ \t\r\n]*")
_BLANK = b" \t\r\n"  # JSON whitespace: a line of it alone is blank


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def read_logs(
    paths: list[Path],
    *,
    type_field: str | None = None,
    workers: int | None = None,
    parallel_min_bytes: int | None = None,
    allow_empty: bool = False,
) -> Aggregator:
    """Analyse every log into one aggregator (file indexes follow ``paths``).

    A file that yields no event at all (empty, binary, another format) is a usage error naming the
    file, unless ``allow_empty``: in CI a wrong log path must not pass as "no findings"."""
    workers = default_workers() if workers is None else max(1, workers)
    if parallel_min_bytes is None:
        parallel_min_bytes = PARALLEL_MIN_BYTES
    aggregator = Aggregator(type_field)
    for index, path in enumerate(paths):
        before, bad_before = aggregator.events, aggregator.bad_lines
        read_one(aggregator, path, index, workers=workers, parallel_min_bytes=parallel_min_bytes)
        aggregator.flush()
        if aggregator.events == before and not allow_empty:
            raise UsageError(
                _no_event_problem(aggregator, index, aggregator.bad_lines - bad_before),
                where=path,
                fix="name a JSON Lines or JSON array event log (plain or gzip), or pass --allow-empty",
            )
    aggregator.flush()
    return aggregator


def _no_event_problem(aggregator: Aggregator, index: int, bad: int) -> str:
    """Why a file gave no event: empty, or what its first bad line was."""
    if not bad:
        return "no event in this file (it is empty)"
    first = next((f"line {line}: {message}" for i, line, message in aggregator.errors if i == index), "")
    return f"no event could be read ({bad} bad line{'s' if bad != 1 else ''}" + (f"; {first})" if first else ")")


def _open(path: Path) -> tuple[BinaryIO, bool]:
    try:
        raw = path.open("rb")
    except FileNotFoundError:
        raise UsageError("no such file", where=path, fix="name an existing event log") from None
    except IsADirectoryError:
        raise UsageError("is a directory", where=path, fix="name event log files, not folders") from None
    except OSError as exc:
        raise UsageError(f"cannot read: {exc.strerror}", where=path) from None
    compressed = raw.read(2) == _GZIP_MAGIC
    raw.seek(0)
    if compressed:
        return gzip.GzipFile(fileobj=raw, mode="rb"), True  # type: ignore[return-value]
    return raw, False


def read_one(
    aggregator: Aggregator, path: Path, index: int, *, workers: int = 1, parallel_min_bytes: int = PARALLEL_MIN_BYTES
) -> None:
    stream, compressed = _open(path)
    with stream:
        try:
            first = stream.read(BLOCK)
        except (OSError, EOFError, zlib.error) as exc:
            aggregator.bad(index, 1, f"cannot decompress: {exc}")
            return
        if first.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark is not part of the first line
            first = first[3:]
        if first.lstrip(b" \t\r\n")[:1] == b"[":
            _read_array(aggregator, stream, index, first)
            return
        size = path.stat().st_size
        if not compressed and workers > 1 and size >= parallel_min_bytes:
            stream.close()
            _read_parallel(aggregator, path, index, workers, size)
            return
        _read_lines(aggregator, stream.read, index, first)


def _read_lines(aggregator: Aggregator, read: Callable[[int], bytes], index: int, first: bytes, limit: int = -1) -> int:
    """Stream JSON Lines from ``read``; returns the number of lines seen (``limit``: bytes to read).

    A line longer than a block is collected as a list of pieces and joined once, so any line length
    costs linear time (joining the carried-over piece to every block would be quadratic)."""
    line, rest, block, remaining = 1, b"", first, limit
    pending: list[bytes] = []  # the pieces of the current, still unfinished, line
    while True:
        if not block:
            break
        if b"\n" not in block:
            pending.append(block)
        elif not pending and not rest.strip(_BLANK) and not block.strip(_BLANK):
            # a block of blank lines (a log padded with newlines): counted, never parsed one by one
            line += block.count(b"\n")
            rest = block[block.rfind(b"\n") + 1 :]
        else:
            lines = block.split(b"\n")
            hashes, escaped = hash_census(block)  # counted on the block: joining the lines again would copy it
            if pending or rest:  # joined to the first line only: prepending it to the block would copy it
                head = b"".join([rest, *pending]) if pending else rest
                pending = []
                lines[0] = head + lines[0]
                hashes += head.count(b"#")
                if not escaped and b"\\" in head:  # an escape may straddle the two pieces: look at the joined line
                    escaped = hash_census(lines[0])[1]
            rest = lines.pop()  # the last piece has no newline yet: it continues in the next block
            hashes -= rest.count(b"#")
            # Mostly blank: "\n\n" counted without overlap (N/2 when all blank). Looked for only when
            # some line is empty: count() scans 1 MB in 1.5 ms, 5 us a line of GH Archive.
            if lines and b"" in lines and block.count(b"\n\n") > len(lines) // 4:
                _add_non_blank(aggregator, lines, index, line)  # mostly blank: only the runs of lines
                line += len(lines)
            elif lines:
                aggregator.add_lines(lines, index, line, (hashes, escaped))
                line += len(lines)
        if remaining == 0:
            break
        size = BLOCK if remaining < 0 else min(BLOCK, remaining)
        try:
            block = read(size)
        except (OSError, EOFError, zlib.error) as exc:
            aggregator.bad(index, line, f"cannot read further ({exc}); the rest of this file was skipped")
            return line - 1
        if remaining > 0:
            remaining -= len(block)
    if pending:
        rest = b"".join([rest, *pending])
    if rest:
        aggregator.add_lines([rest], index, line)
        line += 1
    return line - 1


def _add_non_blank(aggregator: Aggregator, lines: list[bytes], index: int, first_line: int) -> None:
    """Hand over each run of non-blank lines with its line number; blank lines are skipped here, in
    one pass, instead of each failing a JSON parse (a gzip of newlines took minutes)."""
    start = None
    for i, raw in enumerate(lines):
        if raw.strip(_BLANK):
            if start is None:
                start = i
        elif start is not None:
            aggregator.add_lines(lines[start:i], index, first_line + start)
            start = None
    if start is not None:
        aggregator.add_lines(lines[start:], index, first_line + start)


# -- parallel JSON Lines -----------------------------------------------------------------------------


def _ranges(path: Path, size: int, parts: int) -> list[tuple[int, int]]:
    """Byte ranges covering the file, each ending just after a newline (or at the end)."""
    bounds = [0]
    with path.open("rb") as handle:
        for k in range(1, parts):
            target = max(size * k // parts, bounds[-1])
            handle.seek(target)
            handle.readline()
            bounds.append(min(handle.tell(), size))
    bounds.append(size)
    return [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def _work(path: str, start: int, end: int, type_field: str | None) -> tuple[Aggregator, int]:
    """Worker process: analyse one byte range; line numbers are relative to the range."""
    aggregator = Aggregator(type_field)
    with open(path, "rb") as handle:
        handle.seek(start)
        length = end - start
        first = handle.read(min(BLOCK, length))
        lines = _read_lines(aggregator, handle.read, 0, first, limit=length - len(first))
    aggregator.flush()
    aggregator.fast = None  # compiled Struct classes do not pickle; the counts are in the shapes now
    return aggregator, lines


def _read_parallel(aggregator: Aggregator, path: Path, index: int, workers: int, size: int) -> None:
    import multiprocessing

    type_field = ".".join(aggregator.type_field) if aggregator.type_field else None
    tasks = [(str(path), a, b, type_field) for a, b in _ranges(path, size, workers)]
    try:
        context = multiprocessing.get_context("fork")
    except ValueError:  # no fork on this platform: one process
        context = None
    if context is None or len(tasks) == 1:
        results = [_work(*task) for task in tasks]
    else:
        # This process analyses the first range itself while the forked workers do the others:
        # one process fewer to start and to hold in memory.
        with context.Pool(len(tasks) - 1) as pool:
            others = pool.starmap_async(_work, tasks[1:])
            results = [_work(*tasks[0]), *others.get()]
    line_offset = 0
    for part, lines in results:
        aggregator.merge(part, file_offset=index, line_offset=line_offset)
        line_offset += lines


# -- JSON arrays ------------------------------------------------------------------------------------


class _ArrayStream:
    """A decoded text window over a byte stream with line accounting."""

    def __init__(self, stream: BinaryIO, first: bytes):
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.text = self.decoder.decode(first).lstrip("\ufeff")
        self.eof = not first
        self.line, self.counted = 1, 0  # newlines in text[:counted] are included in line

    def more(self) -> bool:
        if self.eof:
            return False
        block = self.stream.read(BLOCK)
        self.text += self.decoder.decode(block, final=not block)
        self.eof = not block
        return True

    def line_at(self, pos: int) -> int:
        if pos > self.counted:
            self.line += self.text.count("\n", self.counted, pos)
            self.counted = pos
        return self.line

    def drop(self, pos: int) -> int:
        """Forget text before ``pos`` (after counting its lines); returns the new position 0."""
        self.line_at(pos)
        self.text = self.text[pos:]
        self.counted = 0
        return 0


def _read_array(aggregator: Aggregator, stream: BinaryIO, index: int, first: bytes) -> None:
    decoder = json.JSONDecoder()
    try:
        window = _ArrayStream(stream, first)
        _decode_array(aggregator, window, decoder, index)
    except UnicodeDecodeError as exc:
        aggregator.bad(index, 0, f"invalid UTF-8 in a JSON array ({exc.reason}); the rest of this file was skipped")
    except (OSError, EOFError, zlib.error) as exc:
        aggregator.bad(index, 0, f"cannot read further ({exc}); the rest of this file was skipped")


def _decode_array(aggregator: Aggregator, window: _ArrayStream, decoder: json.JSONDecoder, index: int) -> None:
    pos = _SPACE.match(window.text, 0).end() + 1  # just after "["
    expect_value = True
    while True:
        pos = _SPACE.match(window.text, pos).end()
        if pos >= len(window.text):
            if window.more():
                continue
            aggregator.bad(index, window.line_at(pos), "JSON array not closed (truncated file?)")
            return
        char = window.text[pos]
        if char == "]":
            return
        if not expect_value:
            if char != ",":
                aggregator.bad(index, window.line_at(pos), "expected ',' or ']' in the JSON array; rest skipped")
                return
            pos, expect_value = pos + 1, True
            continue
        try:
            event, end = decoder.raw_decode(window.text, pos)
        except RecursionError:
            aggregator.bad(index, window.line_at(pos), "JSON nested too deeply in the array; the rest was skipped")
            return
        except json.JSONDecodeError as exc:
            if len(window.text) - pos < MAX_ARRAY_ELEMENT and window.more():
                continue
            line = window.line_at(pos)
            aggregator.bad(index, line, f"invalid JSON in the array: {exc.msg}; the rest of this file was skipped")
            return
        aggregator.add_event(event, index, window.line_at(pos))
        pos, expect_value = end, False
        if pos > BLOCK:
            pos = window.drop(pos)
