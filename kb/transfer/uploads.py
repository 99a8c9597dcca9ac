"""Uploaded files kept between the preview and the confirmation of an import.

Nothing is held in memory across requests: the upload is written to
``DATA_DIR/uploads/<token>/`` and the token travels in the confirm form. Uploads are removed
after the import and, if never confirmed, after an hour.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from werkzeug.datastructures import FileStorage

TTL_S = 3600
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


@dataclass(frozen=True, slots=True)
class Upload:
    """A stored upload: its token, folder and what the user said about it."""

    token: str
    folder: Path
    filename: str
    format: str | None
    metrics_filename: str | None

    @property
    def source(self) -> Path:
        return self.folder / "source"

    @property
    def metrics(self) -> Path | None:
        return self.folder / "metrics" if self.metrics_filename else None


def uploads_dir(data_dir: str | Path) -> Path:
    """Return the folder that holds pending uploads."""
    return Path(data_dir) / "uploads"


def store(
    data_dir: str | Path, file: FileStorage, metrics: FileStorage | None, fmt: str | None
) -> Upload:
    """Write an upload (and its optional metrics file) to a new token folder."""
    clean_expired(data_dir)
    token = secrets.token_urlsafe(24)
    folder = uploads_dir(data_dir) / token
    folder.mkdir(parents=True, mode=0o700)
    file.save(folder / "source")
    metrics_name = None
    if metrics is not None and metrics.filename:
        metrics.save(folder / "metrics")
        metrics_name = metrics.filename
    meta = {"filename": file.filename or "", "format": fmt, "metrics_filename": metrics_name}
    (folder / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    return Upload(token, folder, file.filename or "", fmt, metrics_name)


def load(data_dir: str | Path, token: str) -> Upload | None:
    """Return the upload with this token, or None if the token is malformed, unknown or expired."""
    if not _TOKEN.match(token or ""):
        return None
    folder = uploads_dir(data_dir) / token
    try:
        meta: dict[str, Any] = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        if time.time() - folder.stat().st_mtime > TTL_S:
            remove(folder)
            return None
    except (OSError, ValueError):
        return None
    return Upload(
        token=token,
        folder=folder,
        filename=str(meta.get("filename") or ""),
        format=meta.get("format"),
        metrics_filename=meta.get("metrics_filename"),
    )


def remove(folder: Path) -> None:
    """Delete an upload folder (missing is fine)."""
    shutil.rmtree(folder, ignore_errors=True)


def clean_expired(data_dir: str | Path) -> int:
    """Delete uploads older than the time limit; return how many."""
    root = uploads_dir(data_dir)
    if not root.is_dir():
        return 0
    removed = 0
    cutoff = time.time() - TTL_S
    for folder in root.iterdir():
        try:
            expired = folder.is_dir() and folder.stat().st_mtime < cutoff
        except OSError:
            continue
        if expired:
            remove(folder)
            removed += 1
    return removed
