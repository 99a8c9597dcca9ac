"""Measure what the gunicorn processes of one host hold, what they share, and how soon a worker serves.

Starts gunicorn (the project's gunicorn.conf.py: the master preloads libraries and models, then
forks) on a data directory (the demo data by default, or a search_bench ``--keep`` directory),
with each worker count in turn; waits until every worker has warmed up at boot and gone idle,
and prints per process RSS, PSS (shared pages divided among the processes that map them),
private memory (pages no other process maps: what the process alone costs the host), the
anonymous memory and the pages of the models directory's weight files, all from
/proc/<pid>/smaps(_rollup). With ``--queries``, the memory is read again after that many
semantic and hybrid searches over 4 connections (a worker's heap grows while it serves).
With ``--readiness``, the single worker is killed and the time from the replacement's fork to
its ``/readyz`` and to its first answered semantic search is measured.

    .venv/bin/python -m bench.model_sharing [--workers 1,4] [--data-dir DIR] [--models-dir DIR]
        [--queries 200] [--readiness]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
MODELS = "e5,use"
SETTLE_TIMEOUT_S = 900
# Searches while serving: a mix of Chinese, English and filtered-looking queries.
SEARCHES = [
    "双十一 满减券 叠加", "沉睡用户召回 短信", "直播带货 退货率", "会员积分 核销率",
    "how to win back lapsed customers", "新客首单券 获客成本", "ROI 低于预期的直播活动",
    "复购率提升的活动", "任务宝 邀请有礼 作弊", "年卡续费 教练",
]  # fmt: skip


def smaps_rollup(pid: int) -> dict[str, float]:
    """Return Rss, Pss, Private (clean + dirty) and Anonymous of a process in MB."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if rest.strip().endswith("kB"):
            values[key] = int(rest.split()[0]) / 1024
    values["Private"] = values["Private_Clean"] + values["Private_Dirty"]
    return values


def mapped_kb(pid: int, folder: Path, fields: tuple[str, ...]) -> dict[str, int]:
    """Sum these smaps fields (kB) over the process's mappings of files under folder."""
    totals = dict.fromkeys(fields, 0)
    inside = False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split(maxsplit=5)
        if len(head) >= 5 and "-" in head[0] and not head[0].endswith(":"):
            inside = len(head) == 6 and head[5].startswith(f"{folder}/")
        elif inside and head and head[0].rstrip(":") in totals:
            totals[head[0].rstrip(":")] += int(head[1])
    return totals


def mapped_mb(pid: int, folder: Path) -> dict[str, float]:
    """Return Rss and Pss (MB) of the process's mappings of files under folder."""
    return {name: kb / 1024 for name, kb in mapped_kb(pid, folder, ("Rss", "Pss")).items()}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def started_at(pid: int) -> float:
    """Return when the process started, in time.monotonic()'s clock (both count from boot)."""
    ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    return ticks / os.sysconf("SC_CLK_TCK")


def workers_of(master: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{master}/task/{master}/children").read_text().split()]


def get(port: int, path: str, token: str = "") -> tuple[int, object]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310  # loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, None


def make_token(data_dir: Path, models_dir: Path) -> str:
    """Issue a viewer API token in the data directory's database."""
    from kb import create_app
    from kb.accounts import services as accounts

    app = create_app(
        {"DATA_DIR": str(data_dir), "MODELS_DIR": str(models_dir), "EMBEDDING_MODELS": MODELS}
    )
    with app.app_context():
        return accounts.create_token("model-sharing", "viewer").secret


@contextmanager
def serving(
    code: Path, data_dir: Path, models_dir: Path, workers: int
) -> Iterator[tuple[int, int]]:
    """Run gunicorn from the code tree; yield its master's pid and port."""
    port = 20000 + os.getpid() % 20000
    env = {
        **os.environ,
        "PYTHONPATH": str(code),
        "KB_DATA_DIR": str(data_dir),
        "KB_MODELS_DIR": str(models_dir),
        "KB_EMBEDDING_MODELS": MODELS,
        "KB_TORCH_THREADS": "1",
        "KB_RATELIMIT_API": "1000000 per minute",
        "HF_HUB_OFFLINE": "1",
    }
    command = [
        str(Path(sys.executable).parent / "gunicorn"), "-c", str(code / "gunicorn.conf.py"),
        "--workers", str(workers), "--threads", "4", "--bind", f"127.0.0.1:{port}",
        "kb:create_app()",
    ]  # fmt: skip
    log_path = data_dir / f"gunicorn-{workers}.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(  # noqa: S603  # fixed command, our own venv
            command, cwd=code, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield server.pid, port
    finally:
        server.terminate()
        server.wait(timeout=60)


def wait_settled(master: int, workers: int, started: float) -> float:
    """Wait until every worker exists and all have been idle for 4 s; return seconds since start."""
    quiet_since = None
    before: dict[int, float] = {}
    while True:
        if time.monotonic() - started > SETTLE_TIMEOUT_S:
            raise TimeoutError("the workers did not settle")
        time.sleep(1)
        pids = workers_of(master)
        now = {pid: cpu_seconds(pid) for pid in pids}
        busy = len(pids) != workers or any(now[p] - before.get(p, -1.0) > 0.05 for p in pids)
        before = now
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= 4:
            return time.monotonic() - started


def memory_lines(master: int, models_dir: Path) -> list[str]:
    lines = []
    total = {"Rss": 0.0, "Pss": 0.0, "Private": 0.0}
    for role, pid in [("master", master), *(("worker", p) for p in workers_of(master))]:
        mem = smaps_rollup(pid)
        weights = mapped_mb(pid, models_dir.resolve())
        for key in total:
            total[key] += mem[key]
        lines.append(
            f"  {role:6} RSS {mem['Rss']:6.0f}  PSS {mem['Pss']:6.0f}  private {mem['Private']:5.0f}"
            f"  anonymous {mem['Anonymous']:5.0f} MB | weight files: RSS {weights['Rss']:4.0f},"
            f" PSS {weights['Pss']:4.0f} MB"
        )
    lines.append(
        f"  total  RSS {total['Rss']:6.0f}  PSS {total['Pss']:6.0f}  private {total['Private']:5.0f}"
        " MB (PSS: the host's memory for the app, shared pages counted once)"
    )
    return lines


def serve_searches(port: int, token: str, count: int) -> float:
    """Send ``count`` semantic and hybrid searches over 4 connections; return the seconds."""
    started = time.monotonic()
    paths = [
        "/api/v1/search?" + urlencode({"q": f"{SEARCHES[i % len(SEARCHES)]} {i}", "mode": mode})
        for i in range(count // 2)
        for mode in ("semantic", "hybrid")
    ]

    def send(share: list[str]) -> None:
        for path in share:
            status, _ = get(port, path, token)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}")

    threads = [threading.Thread(target=send, args=(paths[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


def time_replacement(master: int, port: int, token: str) -> list[str]:
    """Kill the only worker; time its replacement from fork to /readyz and to a semantic search."""
    (old,) = workers_of(master)
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        pids = [p for p in workers_of(master) if p != old]
        if pids:
            break
        if time.monotonic() > deadline:
            raise TimeoutError("no replacement worker")
        time.sleep(0.05)
    forked = started_at(pids[0])
    ready = searched = None
    path = "/api/v1/search?" + urlencode({"q": "沉睡会员召回", "mode": "semantic"})
    while ready is None or searched is None:
        if time.monotonic() > deadline:
            raise TimeoutError("the replacement worker did not serve")
        try:
            if ready is None and get(port, "/readyz")[0] == 200:
                ready = time.monotonic() - forked
            if searched is None and get(port, path, token)[0] == 200:
                searched = time.monotonic() - forked
        except OSError:
            pass
        time.sleep(0.1)
    return [
        f"  replacement worker (fork -> /readyz 200): {ready:.1f} s; "
        f"fork -> first semantic search answered: {searched:.1f} s"
    ]


def measure(
    code: Path, data_dir: Path, models_dir: Path, workers: int, queries: int, readiness: bool
) -> list[str]:
    """Run gunicorn with ``workers`` workers; return the report lines."""
    token = make_token(data_dir, models_dir) if queries or readiness else ""
    started = time.monotonic()
    with serving(code, data_dir, models_dir, workers) as (master, port):
        settled_s = wait_settled(master, workers, started)
        log = (data_dir / f"gunicorn-{workers}.log").read_text(errors="replace")
        preloaded = next((line for line in log.splitlines() if "Preloaded before fork" in line), "")
        lines = [f"{workers} worker(s), settled {settled_s:.0f} s after start"]
        if preloaded:
            lines.append("  master: " + preloaded.split("] ", 3)[-1])
        lines += memory_lines(master, models_dir)
        if queries:
            took = serve_searches(port, token, queries)
            wait_settled(master, workers, time.monotonic())
            lines.append(
                f"after {queries} semantic + hybrid searches over 4 connections ({took:.0f} s):"
            )
            lines += memory_lines(master, models_dir)
        if readiness and workers == 1:
            lines += time_replacement(master, port, token)
        return lines


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
    parser.add_argument("--data-dir", type=Path, default=None, help="reuse a data directory")
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--code", type=Path, default=ROOT, help="the source tree gunicorn runs")
    parser.add_argument("--queries", type=int, default=0, help="searches to serve, then measure")
    parser.add_argument(
        "--readiness", action="store_true", help="time a replacement worker (1 worker)"
    )
    options = parser.parse_args()
    data_dir = options.data_dir or Path(tempfile.mkdtemp(prefix="kb-model-sharing-"))
    models_dir = options.models_dir or data_dir / "models"
    if not (data_dir / "kb.sqlite3").exists():
        from bench.eval_search import make_app

        make_app(data_dir, MODELS, models_dir=models_dir)
    print(machine(), flush=True)
    print(f"code: {options.code}; data: {data_dir}; models: {models_dir}", flush=True)
    for count in (int(n) for n in options.workers.split(",")):
        lines = measure(
            options.code, data_dir, models_dir, count, options.queries, options.readiness
        )
        for line in lines:
            print(line, flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
