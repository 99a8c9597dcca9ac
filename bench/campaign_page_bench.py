"""Time the campaign page on the demo data: the page itself and, where the app loads it after
the page, the similar-case analysis (GET /campaigns/<id>/similar?fragment=1).

Run: .venv/bin/python bench/campaign_page_bench.py [--models fake|default] [--rounds 2]
Run it from another checkout (PYTHONPATH=that/checkout) to time that code on the same data.
Wall times of one process on a shared machine: compare figures of one run, not across runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa

from kb import create_app
from kb.demo import load_demo
from kb.extensions import db
from kb.models import Campaign


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered) * 1000:7.0f} ms  p95 {p95 * 1000:7.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="fake", help="EMBEDDING_MODELS: fake or default")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = {
            "DATA_DIR": str(Path(tmp) / "data"),
            "INDEX_SYNC": True,
            "PUBLIC_READ": True,
            "RATELIMIT_ENABLED": False,
            "TESTING": True,
        }
        if args.models != "default":
            config["EMBEDDING_MODELS"] = args.models
        app = create_app(config)
        with app.app_context():
            load_demo()
            ids = list(db.session.scalars(sa.select(Campaign.id).order_by(Campaign.id)))
        deferred = any(
            r.rule == "/campaigns/<int:campaign_id>/similar" for r in app.url_map.iter_rules()
        )
        client = app.test_client()
        client.get(f"/campaigns/{ids[0]}")  # warm up: models, indexes, templates
        if deferred:
            client.get(f"/campaigns/{ids[0]}/similar?fragment=1")
        page: list[float] = []
        similar: list[float] = []
        for _ in range(args.rounds):
            for campaign_id in ids:
                started = time.perf_counter()
                answer = client.get(f"/campaigns/{campaign_id}")
                page.append(time.perf_counter() - started)
                assert answer.status_code == 200, (campaign_id, answer.status_code)
                if deferred:
                    started = time.perf_counter()
                    answer = client.get(f"/campaigns/{campaign_id}/similar?fragment=1")
                    similar.append(time.perf_counter() - started)
                    assert answer.status_code == 200
        print(f"models={args.models} campaigns={len(ids)} rounds={args.rounds}")
        print(f"campaign page            {_ms(page)}")
        if deferred:
            print(f"similar (after the page) {_ms(similar)}")
        else:
            print("similar: computed inside the page request")


if __name__ == "__main__":
    main()
