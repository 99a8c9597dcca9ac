"""Exports answered as file downloads: streamed, with a file name that survives any browser."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Iterator
from datetime import date
from typing import IO
from urllib.parse import quote

from flask import Response, stream_with_context

from kb.models import Campaign
from kb.transfer import exports as exporters
from kb.transfer.exports import MIMETYPES


def export_response(campaigns: Iterable[Campaign], fmt: str, stem: str) -> Response:
    """Answer ``campaigns`` as a CSV, Excel or JSON Lines download named ``<stem>-<date>``."""
    filename = f"{stem}-{date.today().isoformat()}.{fmt}"
    chunks: Iterator[str] | Iterator[bytes]
    if fmt == "xlsx":
        # Spooled: a small workbook stays in memory, a large one goes to a temporary file.
        target = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115  # closed by _file_chunks
        try:
            exporters.write_xlsx(campaigns, target)
        except BaseException:
            target.close()
            raise
        target.seek(0)
        chunks = _file_chunks(target)
    elif fmt == "csv":
        chunks = exporters.csv_chunks(campaigns)
    else:
        chunks = exporters.jsonl_chunks(campaigns)
    return Response(
        stream_with_context(chunks),
        content_type=MIMETYPES[fmt],  # it names its charset; mimetype= would add a second
        headers={"Content-Disposition": attachment(filename, filename)},
    )


def _file_chunks(handle: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := handle.read(64 * 1024):
            yield chunk
    finally:
        handle.close()


def attachment(filename: str, fallback: str) -> str:
    """Return a Content-Disposition naming the file in UTF-8, with an ASCII fallback."""
    ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", fallback)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
