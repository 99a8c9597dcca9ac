"""Bytes a campaign's history stores for 10 saves (PUT) of a 1 MB record.

Run: .venv/bin/python bench/history_bench.py [DATABASE_URL]   (default: a fresh SQLite file)

The record is a campaign of about 1,000,000 characters (the per-record cap), its summary and
strategy documents filled with the demo campaigns' retrospective text, repeated with a period longer
than zlib's 32 KB window so the repetition itself does not shrink it. It is created through the API
and saved 10 times, each save changing its lessons (as an editor does). The figure is what the
campaign_version rows hold: the snapshot column(s), measured in the database with length() /
octet_length(); whichever of the old (JSON) and new (compressed) columns exists is counted.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SAVES = 10
TARGET_CHARS = 990_000


def demo_text() -> str:
    """Return the demo campaigns' retrospective text, every field once."""
    from kb.demo import demo_records

    parts: list[str] = []
    for record in demo_records():
        for name in ("goal", "summary", "went_well", "problems", "lessons", "recommendations"):
            parts.append(str(record.get(name) or ""))
        parts.extend(str(doc.get("body", "")) for doc in record.get("documents", []))
    return "\n".join(part for part in parts if part)


def large_record(text: str) -> dict[str, Any]:
    """Return an API body of about TARGET_CHARS characters built from ``text``."""
    from kb.campaigns.schemas import MARKDOWN_MAX
    from tests.factories import campaign_payload

    fields = -(-TARGET_CHARS // (MARKDOWN_MAX - 1))
    per_field = TARGET_CHARS // fields
    source = (text * (TARGET_CHARS // max(len(text), 1) + 2))[: per_field * fields]
    chunks = [source[i * per_field : (i + 1) * per_field] for i in range(fields)]
    documents = [
        {"title": f"策略文档 {n + 1}", "kind": "strategy", "body": chunk}
        for n, chunk in enumerate(chunks[1:])
    ]
    return campaign_payload(summary=chunks[0], documents=documents)


def table_bytes(engine: sa.Engine) -> tuple[int, int] | None:
    """Return campaign_version's size on disk with TOAST (PostgreSQL compresses), then vacuumed.

    A save rewrites the version before it as a delta, so its whole copy is a dead tuple until
    (auto)vacuum: the first figure counts it, the second (after VACUUM FULL) only live rows.
    """
    if engine.dialect.name != "postgresql":
        return None
    size = sa.text("SELECT pg_total_relation_size('campaign_version')")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        before = connection.scalar(size)
        connection.exec_driver_sql("VACUUM FULL campaign_version")
        after = connection.scalar(size)
    return int(before or 0), int(after or 0)


def stored_bytes(engine: sa.Engine) -> tuple[int, int]:
    """Return (rows, bytes) of the campaign_version snapshots, counted in the database."""
    columns = {c["name"] for c in sa.inspect(engine).get_columns("campaign_version")}
    length = "octet_length" if engine.dialect.name == "postgresql" else "length"
    measured = [
        f"coalesce(sum({length}(CAST({name} AS {'bytea' if name.endswith('zlib') else 'text'}))), 0)"
        if engine.dialect.name == "postgresql"
        else f"coalesce(sum({length}(CAST({name} AS BLOB))), 0)"
        for name in ("snapshot", "snapshot_zlib")
        if name in columns
    ]
    with engine.connect() as connection:
        rows = connection.scalar(sa.text("SELECT count(*) FROM campaign_version"))
        # Column names from the fixed tuple above, never from input.
        query = f"SELECT {' + '.join(measured)} FROM campaign_version"  # noqa: S608
        total = connection.scalar(sa.text(query))
    return int(rows or 0), int(total or 0)


def main() -> None:
    from kb import create_app
    from kb.extensions import db
    from tests.signed_in import SignedInClient

    work = Path(tempfile.mkdtemp(prefix="history-bench-"))
    try:
        config: dict[str, Any] = {
            "DATA_DIR": str(work),
            "TESTING": True,
            "EMBEDDING_MODELS": "fake",
            "RATELIMIT_ENABLED": False,
            "WTF_CSRF_ENABLED": False,
        }
        if len(sys.argv) > 1:
            config["DATABASE_URL"] = sys.argv[1]
        app = create_app(config)
        app.test_client_class = SignedInClient
        client = app.test_client()
        body = large_record(demo_text())
        chars = len(body["summary"]) + sum(len(d["body"]) for d in body["documents"])
        started = time.perf_counter()
        created = client.post("/api/v1/campaigns", json=body)
        assert created.status_code == 201, created.get_json()
        campaign_id, version = created.get_json()["id"], created.get_json()["version"]
        for n in range(SAVES):
            body["lessons"] = f"第 {n + 1} 次修改：短信召回 ROI 最高，社群转化偏低。"
            saved = client.put(
                f"/api/v1/campaigns/{campaign_id}", json={**body, "version": version}
            )
            assert saved.status_code == 200, saved.get_json()
            version = saved.get_json()["version"]
        elapsed = time.perf_counter() - started
        with app.app_context():
            rows, total = stored_bytes(db.engine)
            on_disk = table_bytes(db.engine)
            db.engine.dispose()
        print(f"database: {config.get('DATABASE_URL', 'SQLite file')}")
        print(f"record: {chars:,} characters; 1 create + {SAVES} saves in {elapsed:.1f} s")
        print(
            f"history rows: {rows}; snapshot bytes: {total:,} ({total / rows / 1e6:.2f} MB a version)"
        )
        if on_disk is not None:
            print(
                f"campaign_version on disk (TOAST included): {on_disk[0]:,} bytes;"
                f" after VACUUM FULL: {on_disk[1]:,} bytes"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
