"""Read text files the way Chinese teams save them: UTF-8, UTF-8 with BOM, GB18030/GBK, UTF-16.

Detection is deterministic rather than statistical: a BOM decides; otherwise UTF-8 when the
sampled bytes are valid UTF-8, else GB18030 (a superset of GBK and GB2312, which Excel on Chinese
Windows writes by default). Statistical detectors guess wrong on short Chinese samples.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

# Enough to reach the first Chinese text of any realistic file (headers, front matter).
SAMPLE_BYTES = 1 << 20

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def detect_encoding(sample: bytes) -> str:
    """Return the codec name for a file whose first bytes are ``sample``."""
    for bom, name in _BOMS:
        if sample.startswith(bom):
            return name
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        # final=False: a sample cut inside a multi-byte character is still valid UTF-8.
        decoder.decode(sample, final=False)
    except UnicodeDecodeError:
        return "utf-8" if _mostly_utf8(sample) else "gb18030"
    return "utf-8"


# UTF-8 with stray bytes has far more valid non-ASCII characters than bad bytes; GBK read as
# UTF-8 has a bad byte at nearly every character and only chance valid ones. One bad byte per
# two valid characters at most separates them with room on either side.
_STRAY_BYTES_PER_CHARACTER = 2


def _mostly_utf8(sample: bytes) -> bool:
    """Tell whether text that is not valid UTF-8 is UTF-8 with a few stray bytes.

    A CRM export with one damaged byte was read as GB18030 whole, every Chinese character turned
    into two others without a word; with a few bad bytes among much valid UTF-8, only those
    bytes are lost (shown as U+FFFD). GBK text read as UTF-8 fails at nearly every character.
    """
    text = sample.decode("utf-8", errors="replace")
    stray = text.count("\ufffd") - sample.decode("utf-8", errors="ignore").count("\ufffd")
    wide = sum(1 for ch in text if ord(ch) > 0x7F and ch != "\ufffd")
    return wide > 0 and stray * _STRAY_BYTES_PER_CHARACTER <= wide


def decode_bytes(data: bytes) -> str:
    """Decode a whole file's bytes with the detected encoding."""
    encoding = detect_encoding(data[:SAMPLE_BYTES])
    return data.decode(encoding, errors="replace" if encoding == "gb18030" else "strict")


def open_text(binary: IO[bytes]) -> io.TextIOWrapper:
    """Wrap a binary stream (seekable) as text in its detected encoding, without reading it all."""
    start = binary.tell()
    sample = binary.read(SAMPLE_BYTES)
    binary.seek(start)
    encoding = detect_encoding(sample)
    # GB18030 decodes every byte sequence; "replace" only guards against truncated files.
    # UTF-8 past the sample that turns out invalid is shown as U+FFFD rather than sinking the file.
    return io.TextIOWrapper(binary, encoding=encoding, errors="replace", newline="")


@contextmanager
def text_stream(binary: IO[bytes]) -> Iterator[io.TextIOWrapper]:
    """Read ``binary`` as text for the block; the caller's binary stream stays open after it."""
    text = open_text(binary)
    try:
        yield text
    finally:
        text.detach()
