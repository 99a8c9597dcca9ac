"""Measure what gunicorn workers of one host hold, and how much of the model weights they share.

Starts gunicorn (the project's gunicorn.conf.py, both models) on a demo data directory with 1
and then N workers, waits until every worker has warmed up at boot and gone idle, and prints
per process RSS, PSS (shared pages divided among the processes that map them) and anonymous
memory from /proc/<pid>/smaps_rollup, and the pages of the models directory's weight files.

    .venv/bin/python -m bench.model_sharing [--workers 1,4] [--data-dir DIR] [--models-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = "e5,use"
SETTLE_TIMEOUT_S = 600


def rollup(pid: int) -> dict[str, float]:
    """Return Rss, Pss and Anonymous of a process in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss", "Anonymous"):
            values[key] = int(rest.split()[0]) / 1024
    return values


def mapped_mb(pid: int, folder: Path) -> dict[str, float]:
    """Return Rss and Pss (MB) of the process's mappings of files under folder."""
    totals = {"Rss": 0.0, "Pss": 0.0}
    inside = False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split(maxsplit=5)
        if len(head) >= 5 and "-" in head[0] and not head[0].endswith(":"):
            inside = len(head) == 6 and head[5].startswith(f"{folder}/")
        elif inside and head and head[0].rstrip(":") in totals:
            totals[head[0].rstrip(":")] += int(head[1]) / 1024
    return totals


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def workers_of(master: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{master}/task/{master}/children").read_text().split()]


def measure(code: Path, data_dir: Path, models_dir: Path, workers: int) -> list[str]:
    """Run gunicorn from the code tree with ``workers`` workers; return the report lines."""
    port = 20000 + os.getpid() % 20000
    env = {
        **os.environ,
        "PYTHONPATH": str(code),
        "KB_DATA_DIR": str(data_dir),
        "KB_MODELS_DIR": str(models_dir),
        "KB_EMBEDDING_MODELS": MODELS,
        "HF_HUB_OFFLINE": "1",
    }
    command = [
        str(Path(sys.executable).parent / "gunicorn"), "-c", str(code / "gunicorn.conf.py"),
        "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "kb:create_app()",
    ]  # fmt: skip
    log_path = data_dir / f"gunicorn-{workers}.log"
    started = time.monotonic()
    with log_path.open("wb") as log:
        server = subprocess.Popen(  # noqa: S603  # fixed command, our own venv
            command, cwd=code, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        # Each worker loads and warms both models at boot; wait until all are idle for 4 s.
        quiet_since = None
        before: dict[int, float] = {}
        while True:
            if time.monotonic() - started > SETTLE_TIMEOUT_S:
                raise TimeoutError("the workers did not settle")
            time.sleep(1)
            pids = workers_of(server.pid)
            now = {pid: cpu_seconds(pid) for pid in pids}
            busy = len(pids) != workers or any(
                now[p] - before.get(p, -1.0) > 0.05 or rollup(p)["Rss"] < 400 for p in pids
            )
            before = now
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= 4:
                break
        settled_s = time.monotonic() - started
        lines = [f"{workers} worker(s), settled {settled_s:.0f} s after start:"]
        total = {"Rss": 0.0, "Pss": 0.0}
        for role, pid in [("master", server.pid), *(("worker", p) for p in workers_of(server.pid))]:
            mem = rollup(pid)
            weights = mapped_mb(pid, models_dir.resolve())
            total["Rss"] += mem["Rss"]
            total["Pss"] += mem["Pss"]
            lines.append(
                f"  {role:6} RSS {mem['Rss']:6.0f} MB  PSS {mem['Pss']:6.0f} MB  "
                f"anonymous {mem['Anonymous']:6.0f} MB  | weight files mapped: "
                f"RSS {weights['Rss']:5.0f} MB, PSS {weights['Pss']:5.0f} MB"
            )
        lines.append(
            f"  total  RSS {total['Rss']:6.0f} MB  PSS {total['Pss']:6.0f} MB (shared pages once)"
        )
        return lines
    finally:
        server.terminate()
        server.wait(timeout=60)


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    flags = next(
        line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")
    ).split()
    bf16 = "avx512_bf16" in flags
    return (
        f"{model}, {os.cpu_count()} CPUs, avx512_bf16: {'yes' if bf16 else 'no'}; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,4", help="comma-separated worker counts")
    parser.add_argument("--data-dir", type=Path, default=None, help="reuse a demo data directory")
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--code", type=Path, default=ROOT, help="the source tree gunicorn runs")
    options = parser.parse_args()
    data_dir = options.data_dir or Path(tempfile.mkdtemp(prefix="kb-model-sharing-"))
    models_dir = options.models_dir or data_dir / "models"
    if not (data_dir / "kb.sqlite3").exists():
        from bench.eval_search import make_app

        make_app(data_dir, MODELS, models_dir=models_dir)
    print(machine(), flush=True)
    print(f"code: {options.code}; demo data: {data_dir}; models: {models_dir}", flush=True)
    for count in (int(n) for n in options.workers.split(",")):
        for line in measure(options.code, data_dir, models_dir, count):
            print(line, flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
