"""Time the first search after an edit, with the floor's recalibration on the search or behind it.

Usage: python bench/floor_recalibration.py [--rounds 15] [--models e5,use] [--models-dir DIR]
           [--data-dir DIR] [--query TEXT]

Loads and indexes the demo data with the real models (bench/eval_search.py's make_app: SQLite in
a temporary data directory, writes indexed in the request), warms up as a gunicorn worker does
(``indexer.warm_up``: models, vectors, the first calibration), then runs ``--rounds`` rounds. Each
round, for each variant in turn (the order alternates between rounds, so neither always runs
first):
  1. edits one demo campaign, the next in id order (a new lesson line and a paragraph: a new
     passage, so the corpus count moves and the calibration is stale, which is checked, and one
     new library text for every model);
  2. times the next hybrid search, as a request does (``service.search`` in a fresh app context);
  3. waits for the background recalibration, if any, and times it from the search's start;
  4. times one more search (calibration fresh, the query cached): the floor-free baseline.
Variants: "on the search" is RECALIBRATE_IN_BACKGROUND = False (the code path of session 7 and
before: the search that notices recomputes), "background" is the default of session 8, and "not
redone" starts no recalibration until the search is over (then runs it, untimed): what the first
search after an edit costs without any, the floor for the other two.
Prints the medians (and ranges) per variant and the host's CPU (model name and flags from
/proc/cpuinfo). A timing benchmark on the demo: no quality figure.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.eval_search import make_app  # noqa: E402  # after the path setup

VARIANTS = ("on the search", "background", "not redone")
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu() -> str:
    """Name the CPU and the vector flags that decide the models' speed (bf16 or not)."""
    model, flags = platform.processor() or "unknown CPU", set[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    shown = " ".join(f for f in CPU_FLAGS if f in flags) or "none of " + ",".join(CPU_FLAGS)
    return f"{model}; {os.cpu_count()} CPUs; flags: {shown}"


def _ms(values: list[float]) -> str:
    return (
        f"median {statistics.median(values) * 1000:7.1f} ms "
        f"({min(values) * 1000:.1f}-{max(values) * 1000:.1f}, n={len(values)})"
    )


# A paragraph longer than a passage (search/documents.py PASSAGE_CHARS = 360): appended to the
# lessons it makes at least one new passage, so the corpus count moves. A lesson line alone
# usually joins the section's last passage: the count stays and nothing is recalibrated.
FILLER = (
    "复盘会上大家对这一点的讨论很充分，结论是后续活动要把结算周期、到账提醒和团长分层一起设计，"
    "不能只调其中一项。我们对比了三个城市的数据，结算周期越短的城市，团长的二次开团率越高，"
    "而且投诉量明显下降。财务那边提出的风险是垫资压力，需要和供应链一起评估账期，"
    "另外客服话术也要同步更新，避免团员以为佣金是他们自己的返现。"
) * 2


def _edit(app: Any, campaign_id: int, line: str) -> None:
    """Append a lesson line and a paragraph to a campaign through the service, as the API does."""
    from kb.campaigns.schemas import validate_campaign
    from kb.campaigns.serialize import campaign_to_input
    from kb.campaigns.services import get_campaign, update_campaign

    with app.app_context():
        data = campaign_to_input(get_campaign(campaign_id))
        data["lessons"] = (data["lessons"] or "").rstrip() + f"\n- {line}\n\n{FILLER}"
        update_campaign(campaign_id, validate_campaign(data))


def _search(app: Any, query: str) -> float:
    from kb.searching import service
    from kb.searching.schemas import validate_search_query

    with app.app_context():
        started = time.perf_counter()
        service.search(validate_search_query({"q": query, "mode": "hybrid"}))
        return time.perf_counter() - started


def _stale(app: Any) -> bool:
    """Say whether the floor's calibration is out of date for the corpus as it is now."""
    from kb.searching import backfill, floor
    from kb.searching.indexer import get_indexes

    with app.app_context():
        indexes = get_indexes()
        indexes.sync_vectors()
        current = floor._state(indexes).current
        counts = {e.name: len(indexes.vectors[e.name]) for e in backfill.serving(indexes)}
        return current is None or floor._stale(current.counts, counts)


def _later(state: Any, indexes: Any) -> None:
    """Start no recalibration from the search ("not redone": the bench runs it afterwards)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--models", default="e5,use")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "tests" / ".cache" / "models")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--query", default="宝妈社群拼团裂变的经验")
    options = parser.parse_args()
    import sqlalchemy as sa

    from kb.extensions import db
    from kb.models import Campaign
    from kb.searching import floor, indexer
    from kb.searching.indexer import get_indexes

    data_dir = options.data_dir or Path(tempfile.mkdtemp(prefix="kb-floor-"))
    started = time.monotonic()
    app = make_app(data_dir, options.models, models_dir=options.models_dir)
    with app.app_context():
        indexer.warm_up()
        indexes = get_indexes()
        ids = list(db.session.scalars(sa.select(Campaign.id).order_by(Campaign.id)))
    print(f"CPU: {cpu()}")
    print(f"models: {options.models}; demo campaigns: {len(ids)}; data: {data_dir}")
    print(f"loaded, indexed and warmed up in {time.monotonic() - started:.0f} s")
    _search(app, options.query)  # the query's vectors cached: every timed search is alike

    first: dict[str, list[float]] = {name: [] for name in VARIANTS}
    behind: dict[str, list[float]] = {name: [] for name in VARIANTS}
    fresh: dict[str, list[float]] = {name: [] for name in VARIANTS}
    not_stale = 0
    start_refresh = floor._start_refresh
    edits = 0
    for round_ in range(options.rounds):
        order = VARIANTS[round_ % 3 :] + VARIANTS[: round_ % 3]  # each one first in turn
        for name in order:
            floor.RECALIBRATE_IN_BACKGROUND = name != "on the search"
            floor._start_refresh = start_refresh if name == "background" else _later
            campaign_id = ids[edits % len(ids)]
            edits += 1
            _edit(
                app, campaign_id, f"第{edits}次复盘补充：团长佣金结算周期缩短到{edits}天后复购上升"
            )
            if not _stale(app):
                not_stale += 1  # this edit moved no count: it would time no recalibration
                continue
            began = time.perf_counter()
            first[name].append(_search(app, options.query))
            if name == "not redone":
                with app.app_context():  # the library texts are read from the database
                    floor._recompute(floor._state(indexes), indexes)
            if not floor.wait_for_recalibration(indexes, timeout=300):
                raise SystemExit("后台重新校准 300 秒内没有完成")
            behind[name].append(time.perf_counter() - began)
            fresh[name].append(_search(app, options.query))
    floor.RECALIBRATE_IN_BACKGROUND = True
    floor._start_refresh = start_refresh
    print(
        f"rounds: {options.rounds}; edits: {edits}; edits that moved no passage count: {not_stale}"
    )
    print(f'hybrid search "{options.query}", the query cached; same run, variants alternating:')
    for name in VARIANTS:
        print(f"  {name:13s} first search after an edit:      {_ms(first[name])}")
        print(f"  {name:13s} calibration fresh again after:   {_ms(behind[name])}")
        print(f"  {name:13s} next search (nothing to redo):   {_ms(fresh[name])}")


if __name__ == "__main__":
    main()
