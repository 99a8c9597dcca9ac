"""Read campaigns in the API's JSON shape: JSON Lines, or a JSON array, streamed item by item.

Records are taken as the API takes them (English field names, codes, ISO dates); the fields the
API adds on output (id, version, timestamps, metric assessments) are dropped, so an export or an
API listing imports as it is. A JSON Lines line that is not JSON is rejected on its own; a JSON
array that breaks off stops the file there (what came before is still reported).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

from ingest.encoding import text_stream
from ingest.errors import FileReadError
from ingest.records import SourceRow, from_api_shape

CHUNK_CHARS = 256 * 1024
# A JSON document of at most this size may be an object wrapping a list ({"items": [...]}).
WHOLE_DOCUMENT_CHARS = 32 * 1024 * 1024
_WRAPPERS = ("items", "campaigns", "data", "records")


# A value nested deeper than the decoder recurses (a 434-byte file can hold one).
NESTING_MESSAGE = "JSON 嵌套过深，无法读取"
# An integer of more digits than Python converts (4300): no amount anyone types.
TOO_LONG_NUMBER_MESSAGE = "数字位数过多（上千位），无法读取"


class _Counting:
    """Progress of a binary stream: bytes read so far and its size."""

    def __init__(self, binary: IO[bytes]) -> None:
        self.binary = binary
        self.start = binary.tell()
        self.size = binary.seek(0, 2) - self.start
        binary.seek(self.start)

    def position(self) -> tuple[int, int]:
        return min(self.binary.tell() - self.start, self.size), self.size


class _StreamReader:
    """A reader over one binary stream that reports how far it has read."""

    def __init__(self, binary: IO[bytes]) -> None:
        self._progress = _Counting(binary)
        self.binary = binary
        self.warnings: list[str] = []

    def position(self) -> tuple[int, int]:
        return self._progress.position()


def _record(row: int, value: Any, line: int | None = None) -> SourceRow:
    if not isinstance(value, dict):
        return SourceRow(row=row, line=line, errors={"": "应为 JSON 对象（一个活动）"})
    return SourceRow(row=row, line=line, data=from_api_shape(value))


class JsonLinesReader(_StreamReader):
    """One campaign per line; blank lines are skipped, row numbers are line numbers."""

    def rows(self) -> Iterator[SourceRow]:
        with text_stream(self.binary) as text:
            yield from _lines(text)


def _lines(text: IO[str]) -> Iterator[SourceRow]:
    for number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            message = getattr(exc, "msg", str(exc))
            yield SourceRow(row=number, errors={"": f"不是合法的 JSON：{message}"})
            continue
        except RecursionError:  # the decoder recurses per level: a row of [[[[…]]]] alone
            yield SourceRow(row=number, errors={"": NESTING_MESSAGE})
            continue
        yield _record(number, value)


class JsonReader(_StreamReader):
    """A JSON array of campaigns (streamed), one campaign object, or ``{"items": [...]}``."""

    def rows(self) -> Iterator[SourceRow]:
        with text_stream(self.binary) as text:
            buffer = text.read(CHUNK_CHARS)
            first = buffer.lstrip()[:1]
            if first == "[":
                yield from _array_items(text, buffer)
                return
            if first != "{":
                raise FileReadError("不是 JSON 文件：应以 [ 或 { 开头")
            rest = text.read(WHOLE_DOCUMENT_CHARS)
        try:
            document = json.loads(buffer + rest)
        except RecursionError:
            raise FileReadError(NESTING_MESSAGE) from None
        except json.JSONDecodeError as exc:
            if exc.msg != "Extra data":
                raise FileReadError(f"第 {exc.lineno} 行不是合法的 JSON：{exc.msg}") from None
            # Several objects one after another: JSON Lines saved as .json.
            self.binary.seek(self._progress.start)
            with text_stream(self.binary) as text:
                yield from _lines(text)
            return
        except ValueError:  # an integer of thousands of digits (Python refuses past 4300)
            raise FileReadError(TOO_LONG_NUMBER_MESSAGE) from None
        wrapped = next((document[k] for k in _WRAPPERS if isinstance(document.get(k), list)), None)
        if wrapped is None:
            yield _record(1, document, line=1)
            return
        for number, item in enumerate(wrapped, start=1):
            yield _record(number, item)


def _array_items(text: IO[str], buffer: str) -> Iterator[SourceRow]:
    """Decode the items of a JSON array one at a time, reading more text only as needed."""
    decoder = json.JSONDecoder()
    eof = False
    line = 1
    pos = buffer.index("[") + 1
    line += buffer.count("\n", 0, pos)
    number = 0
    expect_item = True
    while True:
        # Skip white space and one comma between items; stop at "]".
        while True:
            while pos < len(buffer) and buffer[pos] in " \t\r\n":
                if buffer[pos] == "\n":
                    line += 1
                pos += 1
            if pos < len(buffer) or eof:
                break
            buffer, pos, eof = _more(text, buffer, pos)
        if pos >= len(buffer):
            raise FileReadError(f"第 {line} 行：JSON 数组没有结束（缺少 ]）")
        char = buffer[pos]
        if char == "]":
            return
        if char == "," and not expect_item:
            pos += 1
            expect_item = True
            continue
        try:
            value, end = decoder.raw_decode(buffer, pos)
        except RecursionError:
            # Where this item ends is unknown, so the items after it cannot be read either.
            raise FileReadError(f"第 {line} 行：{NESTING_MESSAGE}") from None
        except json.JSONDecodeError as exc:
            if not eof:
                buffer, pos, eof = _more(text, buffer, pos)
                continue
            raise FileReadError(
                f"第 {line + buffer.count(chr(10), pos, exc.pos)} 行不是合法的 JSON：{exc.msg}"
            ) from None
        except ValueError:
            raise FileReadError(f"第 {line} 行：{TOO_LONG_NUMBER_MESSAGE}") from None
        number += 1
        yield _record(number, value, line=line)
        line += buffer.count("\n", pos, end)
        pos = end
        expect_item = False


def _more(text: IO[str], buffer: str, pos: int) -> tuple[str, int, bool]:
    """Drop what was consumed and append the next chunk; say whether the text has ended."""
    chunk = text.read(CHUNK_CHARS)
    return buffer[pos:] + chunk, 0, not chunk


class ListReader:
    """Campaigns already decoded from a JSON request body, numbered from 1."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items
        self.warnings: list[str] = []
        self._done = 0

    def position(self) -> tuple[int, int]:
        return self._done, len(self.items)

    def rows(self) -> Iterator[SourceRow]:
        for number, item in enumerate(self.items, start=1):
            self._done = number
            yield _record(number, item)
