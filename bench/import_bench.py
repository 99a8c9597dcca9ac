"""Import 10,000 campaigns from JSON Lines with ``flask --app kb import``: rate and peak memory.

Run: .venv/bin/python bench/import_bench.py [N]   (default 10000)

The campaigns are the demo campaigns repeated with new external ids and titles (about 4 KB of
JSON each). The import runs in a child process exactly as the command does (progress bar, summary
table) on a fresh SQLite database; the peak resident memory is the child's, read with getrusage.
A second pass imports the same file again, where every row is compared and left unchanged.
Indexing is not measured here (it runs later, in the background indexer; see keyword_bench.py).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def write_campaigns(path: Path, count: int) -> None:
    """Write ``count`` campaigns, one per line, streaming (the generator holds one at a time)."""
    from kb.demo import demo_records

    records = demo_records()
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            record = dict(records[n % len(records)])
            record["external_id"] = f"bench-{n:06d}"
            record["title"] = f"{record['title']} #{n}"[:200]
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def child(path: str) -> None:
    """Run the import command in this process (called in a subprocess by ``main``)."""
    from flask.cli import ScriptInfo

    from kb import create_app
    from kb.transfer.cli import import_command

    app = create_app({"EMBEDDING_MODELS": "fake"})
    if "import" not in app.cli.commands:
        app.cli.add_command(import_command)
    info = ScriptInfo(create_app=lambda: app)
    import_command.main(args=[path], obj=info, prog_name="flask --app kb import")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    work = Path(tempfile.mkdtemp(prefix="import-bench-"))
    try:
        path = work / "campaigns.jsonl"
        started = time.perf_counter()
        write_campaigns(path, count)
        size_mb = path.stat().st_size / 1e6
        print(
            f"{count} campaigns, {size_mb:.1f} MB of JSON Lines ({time.perf_counter() - started:.1f} s to write)"
        )
        env = {**os.environ, "KB_DATA_DIR": str(work / "data"), "PYTHONPATH": str(ROOT)}
        for label in ("first import", "second import (all unchanged)"):
            print(f"\n== {label}")
            started = time.perf_counter()
            subprocess.run(  # noqa: S603  # our own interpreter and script
                [sys.executable, __file__, "--child", str(path)], env=env, check=False
            )
            elapsed = time.perf_counter() - started
            peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            print(
                f"-> {label}: {elapsed:.1f} s wall (process start included), "
                f"{count / elapsed:,.0f} campaigns/s, peak RSS so far {peak_mb:,.0f} MB"
            )
        with sqlite3.connect(work / "data" / "kb.sqlite3") as connection:
            stored = connection.execute("SELECT count(*) FROM campaign").fetchone()[0]
        print(f"\ncampaigns in the database: {stored}")
        assert stored == count, "every campaign should be imported once"
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
