"""Benchmark search at scale: index build, HTTP latency per mode, embedding share, server RSS.

Run: .venv/bin/python bench/search_bench.py --sizes 1000,10000 [--real-embeddings-up-to 1000]
     [--queries 100]

Per size N: a fresh SQLite data directory gets N campaigns varied from the 55 demo records
(inserted with SQLAlchemy Core, 500 per transaction, no outbox), their passage embeddings (real
ones up to --real-embeddings-up-to campaigns; above, synthetic ones with the real passage counts
and sha1s: by default "noisy-real", the real vectors of one variant of each demo record, mixed
with peers' and noised, see embed_synthetic; --synthetic random for random unit vectors), a
keyword index built from the database, the vector file with its approximate graphs (their
recall@100 against the exact scan printed, for sampled rows and for the real queries) and the
relevance floor's vectors a host keeps (kb/prefork.py, kb/searching/floor.py). "Ready" is
the first semantic search answered, counted from starting gunicorn's process. Then gunicorn serves it (one
worker, four threads, one torch thread) and every query is timed through
``GET /api/v1/search`` in keyword, semantic and hybrid mode over one keep-alive connection.
The query embedding alone (e5 + USE, one torch thread) is timed in this process between the
requests, the server idle, for the hybrid / embedding ratio. Progress goes to stderr, the report
to stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import platform
import random
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import selectinload

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kb import create_app, prefork  # noqa: E402  # after the sys.path line above
from kb.accounts import services as accounts  # noqa: E402
from kb.campaigns import metrics as metric_catalog  # noqa: E402
from kb.campaigns.schemas import CampaignIn, validate_campaign  # noqa: E402
from kb.database import write_transaction  # noqa: E402
from kb.demo import demo_records  # noqa: E402
from kb.extensions import db  # noqa: E402
from kb.models import (  # noqa: E402
    Campaign,
    Document,
    Hypothesis,
    Metric,
    PassageEmbedding,
    Reward,
)
from kb.searching import floor, vector_file  # noqa: E402
from kb.searching.documents import campaign_text  # noqa: E402
from kb.searching.indexer import get_indexes, store_embeddings  # noqa: E402
from search import ann  # noqa: E402
from search.documents import passages  # noqa: E402
from search.embedder import (  # noqa: E402
    Embedder,
    SentenceTransformerEmbedder,
    cpu_has_bf16,
    load_embedders,
)
from search.relevance import contrast_texts  # noqa: E402

MODELS = "e5,use"
INSERT_BATCH = 500  # campaigns per write transaction
LOAD_BATCH = 100  # campaigns read per step, as the app's indexer reads them
MODES = ("keyword", "semantic", "hybrid")
WARMUP = 5
# noisy-real vectors (embed_synthetic): a passage is its demo record's real vector with a share
# U(0, MIX) of a peer record's (same goal type), plus noise of length NOISE, renormalised: the
# noise alone leaves a cosine of ≈ 0.98 to the source passage, so no two variants are equal.
NOISE = 0.2
MIX = 0.5
LIMIT = 20  # the API's default page size
GOALS = {
    "hybrid_p95_ms": 150.0,
    "keyword_p95_ms": 30.0,
    "rss_mb": 1536.0,
    "similar_p95_ms": 200.0,
    # Issue 15: against the query-embedding p95 measured in the same run.
    "hybrid_per_embedding_p95": 1.5,
    "similar_per_embedding_p95": 2.0,
    "at": 10_000,
}
# KB_ANN_MIN_ROWS above any size here: no approximate graph is built.
NO_GRAPHS = 10**12
SERVER_START_TIMEOUT_S = 120
WARM_TIMEOUT_S = 900  # first semantic request: vector load, torch import, e5 conversion
REQUEST_TIMEOUT_S = 120


@dataclass(frozen=True, slots=True)
class Query:
    """A search as sent to the API: its kind (for the breakdown), text and filters."""

    kind: str
    text: str
    filters: dict[str, str]


# Realistic queries as planners type them: Chinese keywords, questions in plain words,
# English, Traditional script, outcome conditions and filtered searches.
QUERIES = [
    Query("zh", "拼团 宝妈", {}),
    Query("zh", "双十一 满减券 叠加", {}),
    Query("zh", "直播带货 退货率", {}),
    Query("zh", "沉睡用户召回 短信", {}),
    Query("zh", "新客首单券 获客成本", {}),
    Query("zh", "会员积分 核销率", {}),
    Query("zh", "年卡续费 教练", {}),
    Query("zh", "完课率 打卡 督学", {}),
    Query("zh", "任务宝 邀请有礼 作弊", {}),
    Query("zh", "618 预售 定金膨胀 尾款", {}),
    Query("zh", "企微社群 私域拉新", {}),
    Query("zh", "羊毛党 风控", {}),
    Query("meaning", "好几个月没再买过东西的顾客，怎么把他们拉回来", {}),
    Query("meaning", "怎么让报了课的人坚持学到最后", {}),
    Query("meaning", "人气很旺但是没卖出去多少东西", {}),
    Query("meaning", "促销期间卖得越多亏得越多，利润被优惠吃掉", {}),
    Query("meaning", "刚装上应用的人，隔天就不见了", {}),
    Query("meaning", "花大价钱请网红，最后钱打了水漂", {}),
    Query("en", "coupon stacking abuse", {}),
    Query("en", "livestream sales with low ROI", {}),
    Query("en", "win back lapsed customers", {}),
    Query("en", "gym annual membership renewal", {}),
    Query("en", "online course completion rate", {}),
    Query("en", "referral rewards went to fake accounts", {}),
    Query("en", "CAC went up", {}),
    Query("trad", "雙十一 優惠券 疊加", {}),
    Query("trad", "會員積分 兌換 核銷", {}),
    Query("trad", "雙11 直播 退貨率", {}),
    Query("trad", "沉睡會員 喚醒", {}),
    Query("outcome", "ROI 低于预期的直播活动", {}),
    Query("outcome", "留存提升明显的会员活动", {}),
    Query("outcome", "获客成本上涨的拉新活动", {}),
    Query("outcome", "没有达成目标的召回活动", {}),
    Query("outcome", "复购率提升的活动", {}),
    Query("outcome", "GMV 达标但 ROI 没达标的活动", {}),
    Query("filtered", "续费", {"industry": "健身"}),
    Query("filtered", "直播", {"industry": "美妆", "status": "completed"}),
    Query("filtered", "短信触达效果", {"goal_type": "reactivation"}),
    Query("filtered", "优惠叠加", {"metric_range": "roi.actual<2"}),
    Query("filtered", "拉新", {"missed": "true"}),
    Query("filtered", "社群 裂变", {"channel": "企业微信社群"}),
    Query("filtered", "大促", {"date_from": "2024-01-01", "date_to": "2024-12-31"}),
]

REGIONS = ("华东", "华南", "华北", "华中", "西南", "西北", "东北", "全国")
_SENTENCE_END = re.compile(r"(?<=[。！？；])")
_YEAR = re.compile(r"20[2-3]\d")
_LIST_SECTIONS = ("went_well", "problems", "lessons", "recommendations")


def log(message: str) -> None:
    """Print progress to stderr, so stdout stays the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# Data generation


class Generator:
    """Make realistic campaigns by recombining demo records of the same goal type."""

    def __init__(self, records: list[dict[str, Any]], seed: int) -> None:
        self.records = records
        self.rng = random.Random(seed)
        by_goal: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for record in records:
            by_goal[record["goal_type"]].append(record)
        # Pools of lines, sentences and hypotheses per goal type: a variant borrows from peers
        # that pursued the same goal, so its text stays coherent.
        self.lines = {
            (goal, name): [line for r in peers for line in _lines(r[name])]
            for goal, peers in by_goal.items()
            for name in _LIST_SECTIONS
        }
        self.sentences = {
            goal: [s for r in peers for s in _sentences(r["summary"])[1:]]
            for goal, peers in by_goal.items()
        }
        self.hypotheses = {
            goal: [h for r in peers for h in r["hypotheses"]] for goal, peers in by_goal.items()
        }

    def make(self, number: int) -> CampaignIn:
        """Return the validated variant number ``number`` (1-based) of a demo record."""
        rng = self.rng
        base = self.records[(number - 1) % len(self.records)]
        goal = base["goal_type"]
        years = rng.choice((-2, -1, 0, 0, 1))
        shift = timedelta(days=365 * years + rng.randint(-45, 45))
        start = datetime.fromisoformat(base["start_date"]).date() + shift
        end = datetime.fromisoformat(base["end_date"]).date() + shift
        title = _YEAR.sub(lambda m: str(int(m.group(0)) + years), base["title"])
        record = {
            **base,
            "external_id": f"bench-{number:06d}",
            "title": f"{title}（{rng.choice(REGIONS)}·第 {number // len(self.records) + 1} 期）",
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "budget_cny": _jitter(rng, base["budget_cny"], 0.5, 1.5, -3),
            "summary": self._summary(base, goal),
            "metrics": [self._metric(m) for m in base["metrics"]],
            "hypotheses": self._hypotheses(base, goal),
        }
        for name in _LIST_SECTIONS:
            record[name] = self._list(base[name], self.lines[(goal, name)])
        return validate_campaign(record)

    def _summary(self, base: dict[str, Any], goal: str) -> str:
        first, *rest = _sentences(base["summary"]) or [""]
        # The first sentence names the campaign; the rest mixes with peers' findings.
        borrowed = self.rng.sample(self.sentences[goal], min(len(rest), len(self.sentences[goal])))
        mixed = [s if self.rng.random() < 0.6 else b for s, b in zip(rest, borrowed, strict=False)]
        self.rng.shuffle(mixed)
        return "".join([first, *mixed])

    def _list(self, text: str, pool: list[str]) -> str:
        own = _lines(text)
        if not own:
            return text
        picked = [line if self.rng.random() < 0.6 else self.rng.choice(pool) for line in own]
        if self.rng.random() < 0.3:
            picked.append(self.rng.choice(pool))
        self.rng.shuffle(picked)
        unique = list(dict.fromkeys(picked))
        if re.match(r"\d+[.、] ", unique[0]):  # a numbered list stays numbered in order
            unique = [
                re.sub(r"^\d+([.、]) ", f"{i}\\1 ", line, count=1)
                for i, line in enumerate(unique, 1)
            ]
        return "\n".join(unique)

    def _metric(self, metric: dict[str, Any]) -> dict[str, Any]:
        rng = self.rng
        unit = metric.get("unit", "")
        out = {
            **metric,
            "baseline": _jitter(rng, metric.get("baseline"), 0.85, 1.15),
            "target": _jitter(rng, metric.get("target"), 0.9, 1.1),
            # Wider: a variant may hit a target its original missed, and the reverse.
            "actual": _jitter(rng, metric.get("actual"), 0.7, 1.3),
        }
        if unit == "%":
            out = {
                k: min(v, 100.0) if k in ("baseline", "target", "actual") and v else v
                for k, v in out.items()
            }
        return out

    def _hypotheses(self, base: dict[str, Any], goal: str) -> list[dict[str, Any]]:
        pool = self.hypotheses[goal]
        own = list(base["hypotheses"])
        if pool and self.rng.random() < 0.5:
            own.append(self.rng.choice(pool))
        return list({h["statement"]: h for h in own}.values())


def _lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.strip()]


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text) if s.strip()]


def _jitter(
    rng: random.Random, value: float | None, low: float, high: float, digits: int | None = None
) -> float | None:
    if value is None:
        return None
    x = value * rng.uniform(low, high)
    if digits is None:
        digits = 2 if abs(value) < 100 else 0
    return float(round(x, digits))


# Loading the database and the indexes


CAMPAIGN_FIELDS = {
    "title", "industry", "department", "business_line", "goal_type", "goal", "audience",
    "products", "channels", "tags", "start_date", "end_date", "status", "budget_cny",
    "summary", "went_well", "problems", "lessons", "recommendations", "external_id",
}  # fmt: skip


def insert_campaigns(records: Sequence[CampaignIn]) -> None:
    """Insert campaigns and child rows with Core, ids 1..N, INSERT_BATCH per transaction."""
    now = datetime.now(UTC)
    tables = (Reward, Metric, Hypothesis, Document)
    for start in range(0, len(records), INSERT_BATCH):
        campaigns: list[dict[str, Any]] = []
        children: dict[type, list[dict[str, Any]]] = {table: [] for table in tables}
        for cid, data in enumerate(records[start : start + INSERT_BATCH], start=start + 1):
            campaigns.append(
                {
                    **data.model_dump(include=CAMPAIGN_FIELDS),
                    "id": cid,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            for table, items in zip(
                tables, (data.rewards, data.metrics, data.hypotheses, data.documents), strict=True
            ):
                for position, item in enumerate(items):
                    row = {"campaign_id": cid, "position": position, **item.model_dump()}
                    if table is Metric:
                        entry = metric_catalog.lookup(item.name)  # as services._apply does
                        row["catalog_key"] = entry.key if entry else None
                    children[table].append(row)
        with write_transaction() as session:
            session.execute(Campaign.__table__.insert(), campaigns)
            for table, rows in children.items():
                if rows:
                    session.execute(table.__table__.insert(), rows)


def iter_campaigns(ids: Sequence[int]) -> Iterator[list[Campaign]]:
    """Yield the campaigns with their child rows, LOAD_BATCH at a time."""
    for start in range(0, len(ids), LOAD_BATCH):
        yield list(
            db.session.scalars(
                sa.select(Campaign)
                .where(Campaign.id.in_(ids[start : start + LOAD_BATCH]))
                .order_by(Campaign.id)
                .options(
                    selectinload(Campaign.rewards),
                    selectinload(Campaign.metrics),
                    selectinload(Campaign.hypotheses),
                    selectinload(Campaign.documents),
                )
            )
        )
        db.session.expunge_all()  # bounded memory over 10k+ campaigns


@dataclass
class EmbedStats:
    """What storing the passage embeddings cost."""

    synthetic: bool
    passages: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    kind: str = "real"  # "real", or the synthetic kind: "noisy-real" or "random"
    noise: float = 0.0  # noisy-real: the noise's length (a unit vector's is 1)
    mix: float = 0.0  # noisy-real: the largest share of a peer record's passage vector
    real_passages: int = 0  # noisy-real: passages embedded with the real models
    source_cosines: list[float] = field(default_factory=list)  # noisy-real: mean per campaign


def embed_real(embedders: Sequence[Embedder], ids: Sequence[int], threads: int) -> EmbedStats:
    """Encode and store every passage with each model through kb.searching.indexer.store_embeddings."""
    import torch

    stats = EmbedStats(synthetic=False, seconds=dict.fromkeys((e.name for e in embedders), 0.0))
    for embedder in embedders:  # load outside the timing
        embedder.encode_passages(["预热"])
    torch.set_num_threads(threads)
    for batch in iter_campaigns(ids):
        texts = [campaign_text(c) for c in batch]
        stats.passages += sum(len(passages(t)) for t in texts)
        for embedder in embedders:
            started = time.perf_counter()
            store_embeddings([embedder], texts)
            stats.seconds[embedder.name] += time.perf_counter() - started
        log(f"  embedded {batch[-1].id}/{len(ids)} campaigns ({stats.passages} passages)")
    torch.set_num_threads(1)
    return stats


def _passage_rows(
    campaign_id: int, embedder: Embedder, found: Sequence[Any], vectors: Any
) -> list[dict[str, Any]]:
    """Return the passage_embedding rows of one campaign's passages and their vectors."""
    return [
        {
            "campaign_id": campaign_id,
            "model": embedder.name,
            "dim": embedder.dim,
            "position": position,
            "section": passage.section[:200],
            # Named as kb.searching.indexer names them, so the server's reconcile keeps them.
            "text_sha1": hashlib.sha1(
                passage.cache_key.encode(), usedforsecurity=False
            ).hexdigest(),
            "vector": np.ascontiguousarray(vector, dtype=np.float32).tobytes(),
        }
        for position, (passage, vector) in enumerate(zip(found, vectors, strict=True))
    ]


def embed_synthetic(
    embedders: Sequence[Embedder],
    ids: Sequence[int],
    *,
    seed: int,
    kind: str,
    noise: float,
    mix: float,
    goals: Sequence[str],
) -> EmbedStats:
    """Store synthetic vectors for the real passages (count, section, sha1) of each campaign.

    Campaign ``id`` is a variant of demo record ``(id - 1) % len(goals)`` (Generator.make),
    whose goal type is ``goals[...]``. ``kind`` "noisy-real": the first ``len(goals)``
    campaigns (one variant of each demo record) are embedded with the real models; in every
    later campaign, a passage's vector is its source's real vector of the same section, mixed
    with a share w ~ U(0, ``mix``) of a real passage vector (same section where it has one) of
    another demo record with the same goal type (as Generator mixes in peers' sentences), plus
    Gaussian noise of length ``noise`` (half shared by the campaign's passages, half per
    passage), renormalised. So the vectors are clustered as real embeddings are (topics,
    similar campaigns that are never identical) and real query vectors find their neighbours.
    Without the peer share, the ~1,800 variants of each record at 100k were one isotropic
    cloud around it: every one about as near a query as every other, which no graph ranks.
    ``kind`` "random": random unit vectors (no neighbourhoods: the worst case for a graph).
    """
    rng = np.random.default_rng(seed)
    stats = EmbedStats(synthetic=True, seconds={"all": 0.0}, kind=kind, noise=noise, mix=mix)
    started = time.perf_counter()
    table = PassageEmbedding.__table__
    period = len(goals)
    peers_of = {
        source: [p for p in range(1, period + 1) if goals[p - 1] == goal and p != source]
        or [p for p in range(1, period + 1) if p != source]
        for source, goal in enumerate(goals, 1)
    }
    # Per source campaign: its passages' sections and, per model, their real vectors.
    sources: dict[int, tuple[list[str], dict[str, Any]]] = {}
    # Each half of the noise: a Gaussian vector of length noise / sqrt(2) in expectation.
    half = noise / np.sqrt(2.0)
    for batch in iter_campaigns(ids):
        rows: list[dict[str, Any]] = []
        for campaign in batch:
            found = passages(campaign_text(campaign))
            stats.passages += len(found)
            source = (campaign.id - 1) % period + 1
            if kind == "random":
                for embedder in embedders:
                    vectors = rng.standard_normal((len(found), embedder.dim), dtype=np.float32)
                    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                    rows += _passage_rows(campaign.id, embedder, found, vectors)
                continue
            if campaign.id == source:  # one variant of each demo record: real embeddings
                real = {e.name: e.encode_passages([p.text for p in found]) for e in embedders}
                sources[source] = ([p.section for p in found], real)
                stats.real_passages += len(found)
                for embedder in embedders:
                    rows += _passage_rows(campaign.id, embedder, found, real[embedder.name])
                continue
            sections = [p.section for p in found]
            own_sections, own = sources[source]
            picks = _source_passages(sections, own_sections)
            # Per passage: a peer record and its passage of the same section (or any).
            peer_ids = rng.choice(peers_of[source], size=len(found))
            peer_picks = [
                _source_passages([section], sources[int(peer)][0])[0]
                if section in sources[int(peer)][0]
                else int(rng.integers(len(sources[int(peer)][0])))
                for section, peer in zip(sections, peer_ids, strict=True)
            ]
            shares = rng.uniform(0.0, mix, size=(len(found), 1)).astype(np.float32)
            for embedder in embedders:
                name, dim = embedder.name, embedder.dim
                base = np.asarray(own[name], dtype=np.float32)[picks]
                peer = np.stack(
                    [
                        np.asarray(sources[int(p)][1][name][i], dtype=np.float32)
                        for p, i in zip(peer_ids, peer_picks, strict=True)
                    ]
                )
                shared = rng.standard_normal(dim, dtype=np.float32) * (half / np.sqrt(dim))
                alone = rng.standard_normal(base.shape, dtype=np.float32) * (half / np.sqrt(dim))
                vectors = (1 - shares) * base + shares * peer + shared + alone
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                stats.source_cosines.append(float(np.mean(np.sum(vectors * base, axis=1))))
                rows += _passage_rows(campaign.id, embedder, found, vectors)
        with write_transaction() as session:
            session.execute(table.insert(), rows)
    stats.seconds["all"] = time.perf_counter() - started
    return stats


def _source_passages(sections: Sequence[str], source_sections: Sequence[str]) -> list[int]:
    """Return, for each passage, the source passage it takes its vector from.

    The k-th passage of a section takes the source's k-th passage of that section (cycling);
    a section the source lacks takes the source passage at the same position (cycling).
    """
    by_section: dict[str, list[int]] = defaultdict(list)
    for i, section in enumerate(source_sections):
        by_section[section].append(i)
    seen: dict[str, int] = defaultdict(int)
    picks = []
    for position, section in enumerate(sections):
        same = by_section.get(section)
        if same:
            picks.append(same[seen[section] % len(same)])
            seen[section] += 1
        else:
            picks.append(position % len(source_sections))
    return picks


def build_keyword(ids: Sequence[int]) -> float:
    """Rebuild the keyword index from the database (campaign_text per campaign); return seconds."""
    indexes = get_indexes()
    started = time.perf_counter()
    indexes.keyword.rebuild(
        (campaign_text(c) for batch in iter_campaigns(ids) for c in batch), total=len(ids)
    )
    return time.perf_counter() - started


def load_vectors() -> tuple[float, dict[str, int], float, dict[str, int]]:
    """Load every stored vector into this process's vector indexes, as a worker does at start.

    Then write the relevance floor's library vectors to the data directory, as a host's first
    search does once (kb/searching/floor.py: up to 1,500 of the library's short texts embedded
    by each model, ≈ a minute with e5 on this box): the server then starts as a host that has
    served before. Returns (load seconds, rows per model, library seconds, texts per model).
    """
    indexes = get_indexes()
    started = time.perf_counter()
    indexes.sync_vectors()
    seconds = time.perf_counter() - started
    rows = {name: len(vectors) for name, vectors in indexes.vectors.items()}
    started = time.perf_counter()
    floor.calibration(indexes)
    library_s = time.perf_counter() - started
    library = floor.library_sizes(indexes)
    for vectors in indexes.vectors.values():  # free the memory: the server holds its own copy
        vectors.remove(vectors.campaigns())
    return seconds, rows, library_s, library


def query_recall(embedders: Sequence[Embedder], limit: int = 100) -> dict[str, dict[str, Any]]:
    """Recall@``limit`` of each model's graph against the exact scan, for the real queries.

    The calibration (search.ann) measures the graph with stored rows plus noise; this asks both
    paths the bench's own queries, encoded by the real models: the campaigns the exact scan
    ranks in its top ``limit`` that the graph path also returns. Models without a graph in
    use are left out. Also the CPU milliseconds per query of each path (this thread).
    """
    import dataclasses

    from search.vector import VectorIndex

    folder = vector_file.directory(get_indexes())
    models = json.loads((folder / vector_file.POINTER).read_text("utf-8"))["models"]
    texts = list(dict.fromkeys(q.text for q in QUERIES))
    found: dict[str, dict[str, Any]] = {}
    for embedder in embedders:
        meta = models.get(embedder.name)
        if meta is None:
            continue
        graph_index = VectorIndex(embedder.name, embedder.dim)
        graph_index.open_file(folder / meta["prefix"])
        if graph_index.graph_calibration() is None:
            continue
        exact_index = VectorIndex(embedder.name, embedder.dim)
        exact_index.open_file(folder / meta["prefix"])
        # The same mapped rows without the graph: every search of this one scans (the graph
        # is not looked for again until its calibration file changes).
        exact_index._publish(dataclasses.replace(exact_index._snapshot(), graph=None))
        vectors = embedder.encode_queries(texts)
        truth, approx, exact_ms, ann_ms = [], [], [], []
        for vector in vectors:
            for index, out, times in (
                (exact_index, truth, exact_ms),
                (graph_index, approx, ann_ms),
            ):
                started = time.thread_time()
                out.append([c for c, _ in index.search(vector, limit=limit)])
                times.append((time.thread_time() - started) * 1000)
        found[embedder.name] = {
            "recall": ann.recall_at(truth, approx),
            "queries": len(texts),
            "exact_ms": float(np.median(exact_ms)),
            "ann_ms": float(np.median(ann_ms)),
        }
    return found


# The server


def free_port() -> int:
    """Return a loopback port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Client:
    """GET JSON over one keep-alive HTTP connection to the server on loopback, with a token."""

    def __init__(self, port: int, timeout: float, token: str) -> None:
        self.port = port
        self.timeout = timeout
        self.headers = {"Authorization": f"Bearer {token}"}
        self.conn: http.client.HTTPConnection | None = None

    def get(self, path: str) -> tuple[float, Any]:
        """Return (milliseconds, decoded JSON body) of a GET."""
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> tuple[float, Any]:
        """Return (milliseconds, decoded JSON body) of a POST of ``body`` as JSON."""
        return self.request("POST", path, body)

    def request(self, method: str, path: str, body: Any = None) -> tuple[float, Any]:
        """Return (milliseconds, decoded JSON body); reconnect once if the server closed."""
        payload = None if body is None else json.dumps(body).encode()
        headers = (
            self.headers if body is None else {**self.headers, "Content-Type": "application/json"}
        )
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                started = time.perf_counter()
                self.conn.request(method, path, body=payload, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                elapsed = (time.perf_counter() - started) * 1000
            except (http.client.HTTPException, ConnectionError):
                # gunicorn closes idle keep-alive connections after 2 s: time a fresh one.
                self.close()
                if attempt:
                    raise
                continue
            if response.status != 200:
                raise RuntimeError(f"{method} {path}: HTTP {response.status}: {data[:300]!r}")
            return elapsed, json.loads(data)
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the connection."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def search_path(query: str, mode: str, filters: dict[str, str]) -> str:
    """Return the API path of one search."""
    return "/api/v1/search?" + urlencode({"q": query, "mode": mode, "limit": LIMIT, **filters})


@dataclass
class Server:
    """A gunicorn process serving one data directory."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def worker_pid(self) -> int:
        """Return the pid of the (single) worker, the master's child."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if len(children) != 1:
            raise RuntimeError(f"expected one gunicorn worker, found {children}")
        return int(children[0])

    def log_tail(self, lines: int = 30) -> str:
        """Return the end of the server's log."""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def uncached_app() -> Any:
    """Return the app with the query-vector cache off (gunicorn's app factory for --query-cache off)."""
    import search.embedder

    search.embedder.QUERY_CACHE_SIZE = 0
    return create_app()


@contextmanager
def serve(
    data_dir: Path,
    models_dir: Path,
    *,
    query_cache: bool = True,
    workers: int = 1,
    access_log: Path | None = None,
) -> Iterator[Server]:
    """Run gunicorn on a free loopback port; always stop it.

    ``access_log``: gunicorn writes a line per request there: "<worker pid> <status> <path>".
    """
    port = free_port()
    env = {
        **os.environ,
        "KB_DATA_DIR": str(data_dir),
        "KB_MODELS_DIR": str(models_dir),
        "KB_EMBEDDING_MODELS": MODELS,
        "KB_INDEX_SYNC": "false",
        "KB_TORCH_THREADS": "1",
        # 3 × (WARMUP + --queries) requests within a minute or two exceed the default 300 per
        # minute: keep the limiter on the request path, but never let it answer 429.
        "KB_RATELIMIT_API": "1000000 per minute",
        "HF_HUB_OFFLINE": "1",
    }
    gunicorn = Path(sys.executable).parent / "gunicorn"
    command = [
        str(gunicorn), "--workers", str(workers), "--threads", "4",
        "--bind", f"127.0.0.1:{port}",
        *(
            ["--access-logfile", str(access_log), "--access-logformat", "%(p)s %(s)s %(U)s"]
            if access_log else []
        ),
        "kb:create_app()" if query_cache else "bench.search_bench:uncached_app()",
    ]  # fmt: skip
    log_path = data_dir / "gunicorn.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: S603  # fixed command, our own venv
            command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    server = Server(process, port, log_path)
    try:
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def wait_until_up(server: Server, token: str) -> None:
    """Wait until the server answers on its port."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    client = Client(server.port, timeout=10, token=token)
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{server.log_tail()}")
        try:
            client.get("/api/v1/openapi.json")
            return
        except (OSError, http.client.HTTPException):
            time.sleep(0.5)
        finally:
            client.close()
    raise TimeoutError(f"gunicorn did not answer in {SERVER_START_TIMEOUT_S} s")


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system) a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def outbox_size(db_path: Path) -> int:
    """Return the change-feed entries some host has still to apply or embed.

    The feed keeps applied entries until every host has passed them (pruned about once a minute).
    """
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10) as conn:
        todo = (
            "SELECT count(*) FROM index_outbox WHERE embedded_at IS NULL"
            " OR id > (SELECT coalesce(min(last_seq), 0) FROM index_host)"
        )
        return int(conn.execute(todo).fetchone()[0])


def wait_settled(pid: int, db_path: Path, timeout: float = 600) -> float:
    """Wait until the outbox is empty and the worker idles (< 5% CPU over 2 s); return seconds."""
    started = time.monotonic()
    before = cpu_seconds(pid)
    while time.monotonic() - started < timeout:
        time.sleep(2)
        now = cpu_seconds(pid)
        # The background indexer reconciles and loads the models after the first request:
        # timing during that would measure it, not search.
        if now - before < 0.1 and outbox_size(db_path) == 0:
            return time.monotonic() - started
        before = now
    raise TimeoutError("the server did not settle")


def memory_mb(pid: int) -> dict[str, float]:
    """Return VmRSS, VmHWM (peak RSS) and Pss (shared pages divided among their users) in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key == "Pss":
            values[key] = int(rest.split()[0]) / 1024
    return values


def worker_pids(server: Server) -> list[int]:
    """Return the pids of the server's workers (the master's children)."""
    pid = server.process.pid
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def time_workers(data_dir: Path, models_dir: Path, token: str, workers: int) -> dict[str, Any]:
    """Start ``workers`` workers on the data directory; time until every one has searched.

    Semantic searches go out over ``2 × workers`` connections at once, round after round, until
    the access log shows a semantic search answered (200) by every worker. Returns the seconds
    to that point and the memory of each process then. (Was: until every worker's RSS reached
    0.8 × the single worker's, which workers that share the master's models and the mapped
    vectors may never do.)
    """
    import threading

    access_log = data_dir / f"access-{workers}.log"
    access_log.unlink(missing_ok=True)
    started = time.monotonic()
    with serve(data_dir, models_dir, workers=workers, access_log=access_log) as server:
        wait_until_up(server, token)
        up_s = time.monotonic() - started
        deadline = time.monotonic() + WARM_TIMEOUT_S
        errors: list[str] = []  # of the requests below
        while True:
            pids = set(worker_pids(server))
            if len(pids) == workers and pids <= searched_by_meaning(access_log):
                break
            if time.monotonic() > deadline:
                raise TimeoutError("not every worker answered a semantic search")

            def one(i: int) -> None:
                client = Client(server.port, timeout=WARM_TIMEOUT_S, token=token)
                try:
                    client.get(search_path(f"预热 {i}", "semantic", {}))
                except (OSError, RuntimeError, http.client.HTTPException) as error:
                    errors.append(repr(error))
                finally:
                    client.close()

            threads = [threading.Thread(target=one, args=(i,)) for i in range(2 * workers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if errors:  # a failing server would only fail again until the timeout
                raise RuntimeError(f"{errors[0]}\n{server.log_tail()}")
            time.sleep(0.2)  # gunicorn writes the access line after the response
        ready_s = time.monotonic() - started
        time.sleep(2)  # let the background indexers settle before reading memory
        mem = {pid: memory_mb(pid) for pid in worker_pids(server)}
        master = memory_mb(server.process.pid)
    return {"workers": workers, "up_s": up_s, "ready_s": ready_s, "mem": mem, "master": master}


def searched_by_meaning(access_log: Path) -> set[int]:
    """Return the pids of the workers that answered a semantic search (200), by the access log."""
    pids = set()
    if access_log.exists():
        for line in access_log.read_text("utf-8", errors="replace").splitlines():
            parts = line.split()
            # The path without its query: every search of time_workers is semantic.
            if len(parts) == 3 and parts[1] == "200" and parts[2] == "/api/v1/search":
                pids.add(int(parts[0].strip("<>")))
    return pids


# Timing


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """Return p50, p95 and max of a sample."""
    array = np.asarray(values, dtype=np.float64)
    return {
        "p50": float(np.percentile(array, 50)),
        "p95": float(np.percentile(array, 95)),
        "max": float(array.max()),
    }


def encode_ms(embedders: Sequence[Embedder], text: str) -> dict[str, float]:
    """Return the milliseconds each model takes to encode one query."""
    times = {}
    for embedder in embedders:
        started = time.perf_counter()
        embedder.encode_queries([text])
        times[embedder.name] = (time.perf_counter() - started) * 1000
    return times


def time_queries(
    client: Client, embedders: Sequence[Embedder], queries: Sequence[Query]
) -> dict[str, Any]:
    """Time each query in every mode through the API, and its embedding alone in this process.

    Round-robin per query (the mode order rotating) rather than mode after mode: on a shared
    machine a burst of someone else's load then hits every mode and the embedding alike, so the
    ratios hold even when the absolute figures move. Requests are sequential, so the server is
    idle while this process encodes.
    """
    import torch

    torch.set_num_threads(1)  # as the server's worker: KB_TORCH_THREADS=1
    for query in queries[:WARMUP]:
        for mode in MODES:
            client.get(search_path(query.text, mode, query.filters))
        encode_ms(embedders, query.text)
    wall: dict[str, list[float]] = defaultdict(list)
    took: dict[str, list[float]] = defaultdict(list)
    empty: dict[str, int] = defaultdict(int)
    per_model: dict[str, list[float]] = defaultdict(list)
    embedding: list[float] = []
    for i, query in enumerate(queries):
        for mode in MODES[i % len(MODES) :] + MODES[: i % len(MODES)]:
            elapsed, body = client.get(search_path(query.text, mode, query.filters))
            wall[mode].append(elapsed)
            took[mode].append(float(body["took_ms"]))
            empty[mode] += not body["results"]
        times = encode_ms(embedders, query.text)
        for name, ms in times.items():
            per_model[name].append(ms)
        embedding.append(sum(times.values()))
    modes = {}
    for mode in MODES:
        by_kind: dict[str, list[float]] = defaultdict(list)
        for query, ms in zip(queries, wall[mode], strict=True):
            by_kind[query.kind].append(ms)
        slowest = sorted(zip(wall[mode], queries, strict=True), key=lambda pair: -pair[0])[:3]
        modes[mode] = {
            **percentiles(wall[mode]),
            "took_p50": float(np.median(took[mode])),
            "empty": empty[mode],
            "kind_p50": {kind: float(np.median(ms)) for kind, ms in by_kind.items()},
            "slowest": [(ms, q.text) for ms, q in slowest],
        }
    return {
        "modes": modes,
        "embedding": {
            **percentiles(embedding),
            "per_model": {name: float(np.median(ms)) for name, ms in per_model.items()},
        },
    }


def time_drafts(client: Client, count: int) -> dict[str, float]:
    """Time ``POST /api/v1/similar`` with the labelled drafts (bench/data), cycled to ``count``."""
    devset = json.loads((ROOT / "bench" / "data" / "drafts_devset.json").read_text("utf-8"))
    drafts = [item["draft"] for item in (*devset["drafts"], *devset["collision_cases"])]
    for draft in drafts[:WARMUP]:
        client.post("/api/v1/similar", draft)
    wall = [client.post("/api/v1/similar", drafts[i % len(drafts)])[0] for i in range(count)]
    return percentiles(wall)


# One size


def run_size(
    n: int,
    args: argparse.Namespace,
    demo: list[dict[str, Any]],
    embedders: Sequence[Embedder],
    models_dir: Path,
    workdir: Path,
) -> dict[str, Any]:
    """Build a data directory of ``n`` campaigns, serve it, time it; return the figures."""
    data_dir = workdir / f"data-{n}"
    data_dir.mkdir()
    result: dict[str, Any] = {"n": n}
    app = create_app(
        {
            "DATA_DIR": str(data_dir),
            "MODELS_DIR": str(models_dir),
            "INDEX_SYNC": True,
            "EMBEDDING_MODELS": MODELS,
            # --build-only: no approximate graphs (≈ 10 min at 100k, and unused at that size).
            **({"ANN_MIN_ROWS": NO_GRAPHS} if args.build_only else {}),
        }
    )
    log(f"{n} campaigns: generating")
    # A generator per size: the N campaigns are the same whatever other sizes run before.
    generator = Generator(demo, args.seed)
    records = [generator.make(i) for i in range(1, n + 1)]
    with app.app_context():
        started = time.perf_counter()
        insert_campaigns(records)
        result["insert_s"] = time.perf_counter() - started
        del records
        ids = list(range(1, n + 1))
        log(f"  inserted in {result['insert_s']:.1f} s; embeddings")
        if n <= args.real_embeddings_up_to:
            result["embed"] = embed_real(embedders, ids, args.embed_threads)
        else:
            result["embed"] = embed_synthetic(
                embedders,
                ids,
                seed=n,
                kind=args.synthetic,
                noise=args.noise,
                mix=args.mix,
                goals=[record["goal_type"] for record in demo],
            )
        log("  keyword index")
        result["keyword_s"] = build_keyword(ids)
        result["keyword_mb"] = _dir_mb(data_dir / "index")
        log(f"  keyword index built in {result['keyword_s']:.1f} s; loading vectors")
        # The graphs are built (in this process's background thread) while nothing else runs:
        # on every core. A host builds them beside serving, on one (search.ann.BUILD_THREADS).
        ann.BUILD_THREADS = os.cpu_count() or 1
        (
            result["vector_load_s"],
            result["vector_rows"],
            result["library_s"],
            result["library_texts"],
        ) = load_vectors()
        if args.build_only:
            # A data set kept for start-up and memory measurements (serve it with
            # KB_ANN_MIN_ROWS=NO_GRAPHS, or its workers build the graphs in the background).
            token = accounts.create_token("search-bench", "viewer").secret
            (data_dir / "bench-token.txt").write_text(token + "\n", "utf-8")
            db.session.remove()
            db.engine.dispose()
            log(f"  kept {data_dir} (models {models_dir}); the API token in bench-token.txt")
            return result
        # The approximate vector index, built in the background after the vector file was
        # written: wait, so the timed queries use it where its calibration chose to.
        log("  approximate vector index (built once per host; printed with its recall)")
        result["graphs"] = vector_file.wait_for_graphs(get_indexes(), timeout_s=1800)
        log("  recall@100 of the graphs for the real queries")
        result["query_recall"] = query_recall(embedders)
        # The API answers signed-in users and tokens only: time it as a client with a token.
        token = accounts.create_token("search-bench", "viewer").secret
        db.session.remove()
        db.engine.dispose()  # leave the database to the server
    result["db_mb"] = _dir_mb(data_dir, "kb.sqlite3*")

    queries = [QUERIES[i % len(QUERIES)] for i in range(args.queries)]
    log("  starting gunicorn")
    started = time.monotonic()
    with serve(data_dir, models_dir, query_cache=args.query_cache == "on") as server:
        wait_until_up(server, token)
        result["up_s"] = time.monotonic() - started
        warm = Client(server.port, timeout=WARM_TIMEOUT_S, token=token)
        # The first semantic search loads the vectors and both models in the worker.
        result["first_semantic_ms"], _ = warm.get(search_path("预热", "semantic", {}))
        # "Ready": the first semantic search answered (HTTP 200), counted from just before
        # gunicorn's process was started (the master's preload, a worker's boot, the app,
        # the vector file, the models and the request itself all inside it).
        result["first_semantic_s"] = time.monotonic() - started
        warm.close()
        worker = server.worker_pid()
        wait_settled(worker, data_dir / "kb.sqlite3")
        result["ready_s"] = time.monotonic() - started
        log(f"  server ready in {result['ready_s']:.1f} s; timing {args.queries} queries per mode")
        client = Client(server.port, timeout=REQUEST_TIMEOUT_S, token=token)
        load_before = os.getloadavg()[0]
        try:
            result.update(time_queries(client, embedders, queries))
            result["similar"] = time_drafts(client, args.queries)
        finally:
            client.close()
        # Other users of this shared machine show up here: read the figures with it.
        result["load_avg"] = (load_before, os.getloadavg()[0])
        result["worker_mem"] = memory_mb(worker)
        result["master_mem"] = memory_mb(server.process.pid)
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn died:\n{server.log_tail()}")
    if args.workers > 1:
        log(f"  starting {args.workers} workers")
        try:
            result["multi"] = time_workers(data_dir, models_dir, token, args.workers)
        except (RuntimeError, TimeoutError, OSError) as error:
            # The figures measured so far are still printed, with what went wrong.
            log(f"  {args.workers} workers failed: {error}")
            result["multi_error"] = str(error).splitlines()[0]
    if not args.keep:
        shutil.rmtree(data_dir, ignore_errors=True)
    return result


def _dir_mb(path: Path, pattern: str = "**/*") -> float:
    return sum(p.stat().st_size for p in path.glob(pattern) if p.is_file()) / 2**20


# Report


def cpu_model() -> str:
    """Return the CPU's model name from /proc/cpuinfo."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def cpu_flags() -> list[str]:
    """Return the CPU's AVX-512 and AMX flags (bf16 matters for e5's precision)."""
    flags: set[str] = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags.update(
                f for f in line.split(":", 1)[1].split() if f.startswith(("avx512", "amx"))
            )
    return sorted(flags)


def report(result: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """Return the table of one size."""
    n = result["n"]
    embed: EmbedStats = result["embed"]
    rows = result["vector_rows"]
    lines = [
        "",
        f"== {n:,} campaigns: {embed.passages:,} passages per model, "
        + (
            "REAL embeddings"
            if not embed.synthetic
            else "SYNTHETIC random unit vectors"
            if embed.kind == "random"
            else "SYNTHETIC noisy-real vectors (demo records' real passage vectors, mixed, + noise)"
        )
        + f"; database {result['db_mb']:,.0f} MB ==",
        f"insert (Core, {INSERT_BATCH}/txn)      {result['insert_s']:8.1f} s  "
        f"{n / result['insert_s']:8,.0f} campaigns/s",
    ]
    if embed.synthetic:
        lines.append(
            f"embeddings (synthetic)         {embed.seconds['all']:8.1f} s  "
            f"{embed.passages / embed.seconds['all']:8,.0f} passages/s (sha1 + vector + insert)"
        )
    if embed.kind == "noisy-real":
        cosines = embed.source_cosines or [float("nan")]
        lines.append(
            f"  noisy-real: {embed.real_passages:,} passages of the first variant of each demo "
            f"record embedded by e5 and USE; the others: those vectors mixed with a share "
            f"U(0, {embed.mix:g}) of a peer record's (same goal type) + Gaussian noise of length "
            f"{embed.noise:g} (half per campaign, half per passage), renormalised; cosine to the "
            f"source passage mean {np.mean(cosines):.3f} (min campaign {np.min(cosines):.3f})"
        )
    else:
        for name, seconds in embed.seconds.items():
            threads = args.embed_threads if name == "e5" else 1
            lines.append(
                f"embeddings {name:<4} (real, {threads} thr)  {seconds:8.1f} s  "
                f"{embed.passages / seconds:8,.1f} passages/s"
            )
    lines += [
        f"keyword index build (DB→Whoosh) {result['keyword_s']:7.1f} s  "
        f"{n / result['keyword_s']:8,.0f} docs/s   ({result['keyword_mb']:,.0f} MB on disk)",
        f"vector load (DB→memory→file)   {result['vector_load_s']:8.1f} s  "
        f"{sum(rows.values()):8,} rows ("
        + ", ".join(f"{name} {count:,}" for name, count in rows.items())
        + ")",
        f"floor's library vectors (a host's first search; kept in KB_DATA_DIR) "
        f"{result['library_s']:6.1f} s  "
        + ", ".join(f"{name} {count:,} texts" for name, count in result["library_texts"].items()),
        *(
            f"approximate index {name}: "
            + (
                "none (below KB_ANN_MIN_ROWS, or not built within 30 min: searches exact)"
                if c is None
                else f"built in {c.build_s:.0f} s ({os.cpu_count()} threads); recall@100 vs exact {c.recall:.3f} "
                f"({c.queries} queries), {c.ann_ms:.2f} vs {c.exact_ms:.2f} ms exact: "
                + (f"IN USE, expansion {c.expansion}" if c.used else "not used (exact)")
            )
            for name, c in result["graphs"].items()
        ),
        *(
            f"  {name} with the bench's {r['queries']} real queries (their e5/USE vectors): "
            f"recall@100 vs exact {r['recall']:.3f}; CPU p50 {r['ann_ms']:.2f} ms graph vs "
            f"{r['exact_ms']:.2f} ms exact (bench process)"
            for name, r in result["query_recall"].items()
        ),
        f"server (times from starting gunicorn's process): answering after "
        f"{result['up_s']:.1f} s; READY (first semantic search answered) after "
        f"{result['first_semantic_s']:.1f} s, that request {result['first_semantic_ms'] / 1000:.1f} s;"
        f" settled (background indexer idle) after {result['ready_s']:.1f} s",
        "",
        f"{'latency ms (' + str(args.queries) + ' queries)':<28}{'p50':>8}{'p95':>8}{'max':>8}"
        f"{'took p50':>10}{'empty':>7}",
    ]
    for mode, t in result["modes"].items():
        lines.append(
            f"{mode:<28}{t['p50']:8.1f}{t['p95']:8.1f}{t['max']:8.1f}{t['took_p50']:10.1f}"
            f"{t['empty']:7d}"
        )
    emb = result["embedding"]
    models = ", ".join(f"{name} p50 {ms:.1f}" for name, ms in emb["per_model"].items())
    lines.append(
        f"{'query embedding alone':<28}{emb['p50']:8.1f}{emb['p95']:8.1f}{emb['max']:8.1f}"
        f"   ({models}; bench process, 1 torch thread)"
    )
    hybrid = result["modes"]["hybrid"]
    kinds = list(dict.fromkeys(q.kind for q in QUERIES))
    lines += [
        f"hybrid / embedding: p50 {hybrid['p50'] / emb['p50']:.2f}×, "
        f"p95 {hybrid['p95'] / emb['p95']:.2f}×; similar / embedding p95 "
        f"{result['similar']['p95'] / emb['p95']:.2f}×",
        "",
        f"{'p50 ms by query kind':<28}" + "".join(f"{kind:>10}" for kind in kinds),
    ]
    for mode, t in result["modes"].items():
        lines.append(
            f"{mode:<28}"
            + "".join(f"{t['kind_p50'].get(kind, float('nan')):10.1f}" for kind in kinds)
        )
    lines += [
        "slowest hybrid: " + "; ".join(f"{ms:.0f} ms {text!r}" for ms, text in hybrid["slowest"]),
        f"load average (1 min) before / after timing: {result['load_avg'][0]:.2f} / "
        f"{result['load_avg'][1]:.2f}",
        f"POST /api/v1/similar (labelled drafts): p50 {result['similar']['p50']:.1f}, "
        f"p95 {result['similar']['p95']:.1f}, max {result['similar']['max']:.1f} ms",
        f"server memory: worker RSS {result['worker_mem']['VmRSS']:,.0f} MB "
        f"(peak {result['worker_mem']['VmHWM']:,.0f}), master {result['master_mem']['VmRSS']:,.0f} MB;"
        f" PSS worker {result['worker_mem']['Pss']:,.0f} + master {result['master_mem']['Pss']:,.0f} MB",
    ]
    if "multi_error" in result:
        lines.append(f"{args.workers} workers: FAILED: {result['multi_error']}")
    multi = result.get("multi")
    if multi:
        rss = sum(m["VmRSS"] for m in multi["mem"].values()) + multi["master"]["VmRSS"]
        pss = sum(m["Pss"] for m in multi["mem"].values()) + multi["master"]["Pss"]
        lines += [
            f"{multi['workers']} workers (same data directory, vector file present): answering "
            f"after {multi['up_s']:.1f} s, every worker searched by meaning after "
            f"{multi['ready_s']:.1f} s",
            "  worker RSS / PSS MB: "
            + ", ".join(f"{m['VmRSS']:,.0f} / {m['Pss']:,.0f}" for m in multi["mem"].values())
            + f"; total RSS {rss:,.0f} MB, total PSS {pss:,.0f} MB (PSS counts shared pages once)",
        ]
    return lines


def summary(results: list[dict[str, Any]]) -> list[str]:
    """Return one PASS/MISS line per goal, judged at GOALS["at"] campaigns (or the largest size)."""
    at = next((r for r in results if r["n"] == GOALS["at"]), max(results, key=lambda r: r["n"]))
    note = "" if at["n"] == GOALS["at"] else f" (no {GOALS['at']:,} run: judged at {at['n']:,})"
    hybrid = at["modes"]["hybrid"]["p95"]
    keyword = at["modes"]["keyword"]["p95"]
    # PSS, not RSS: the workers share the master's preloaded libraries and models (gunicorn.conf.py)
    # and the mapped files, which a sum of RSS would count once per process.
    server_mb = at["worker_mem"]["Pss"] + at["master_mem"]["Pss"]
    similar = at["similar"]["p95"]
    embedding = at["embedding"]["p95"]
    hybrid_ratio, similar_ratio = hybrid / embedding, similar / embedding

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    lines = []
    for big in (r for r in results if r["n"] >= 100_000):
        ratio = big["modes"]["hybrid"]["p95"] / big["embedding"]["p95"]
        docs_s = big["n"] / big["keyword_s"]
        lines += [
            "",
            f"issue 17 goals at {big['n']:,} campaigns:",
            f"  hybrid p95 ≤ 2.5× embedding p95: {ratio:5.2f}×  {verdict(ratio <= 2.5)}",
            f"  keyword index build ≥ 4 × 58 docs/s: {docs_s:,.0f} docs/s  "
            f"{verdict(docs_s >= 4 * 58)}",
            f"  a worker ready ≤ 20 s (first semantic search answered, from starting "
            f"gunicorn, 1 worker): {big['first_semantic_s']:.1f} s  "
            f"{verdict(big['first_semantic_s'] <= 20)}",
        ]
        for name, c in big["graphs"].items():
            if c is None or not c.used:
                lines.append(f"  approximate index {name}: not used (exact scan, recall 1.0)  PASS")
                continue
            real = big["query_recall"].get(name)
            worst = min(c.recall, real["recall"] if real else c.recall)
            lines.append(
                f"  approximate index {name} recall@100 ≥ 0.98: calibration {c.recall:.3f}"
                + (f", real queries {real['recall']:.3f}" if real else "")
                + f"  {verdict(worst >= 0.98)}"
            )
        if "multi_error" in big:
            lines.append(
                "  total memory (PSS) with several workers ≤ 2.5 GB: not measured "
                f"(the workers failed: {big['multi_error']})  MISS"
            )
        if multi := big.get("multi"):
            pss = sum(m["Pss"] for m in multi["mem"].values()) + multi["master"]["Pss"]
            lines.append(
                f"  total memory (PSS) with {multi['workers']} workers ≤ 2.5 GB: {pss:,.0f} MB  "
                f"{verdict(pss <= 2560)}; every worker ready after {multi['ready_s']:.1f} s"
            )
    return [
        "",
        f"goals at {at['n']:,} campaigns{note}:",
        f"  hybrid p95 ≤ {GOALS['hybrid_p95_ms']:.0f} ms:  {hybrid:7.1f} ms  "
        f"{verdict(hybrid <= GOALS['hybrid_p95_ms'])}",
        f"  keyword p95 ≤ {GOALS['keyword_p95_ms']:.0f} ms:   {keyword:7.1f} ms  "
        f"{verdict(keyword <= GOALS['keyword_p95_ms'])}",
        f"  server memory ≤ 1.5 GB: {server_mb:7.0f} MB  {verdict(server_mb <= GOALS['rss_mb'])} "
        "(PSS of worker + master, both models loaded)",
        f"  similar p95 ≤ {GOALS['similar_p95_ms']:.0f} ms:  {similar:7.1f} ms  "
        f"{verdict(similar <= GOALS['similar_p95_ms'])}  (POST /api/v1/similar, issue 4)",
        f"  hybrid p95 ≤ {GOALS['hybrid_per_embedding_p95']}× embedding p95 ({embedding:.1f} ms): "
        f"{hybrid_ratio:5.2f}×  {verdict(hybrid_ratio <= GOALS['hybrid_per_embedding_p95'])}"
        "  (issue 15)",
        f"  similar p95 ≤ {GOALS['similar_per_embedding_p95']}× embedding p95: "
        f"{similar_ratio:5.2f}×  {verdict(similar_ratio <= GOALS['similar_per_embedding_p95'])}"
        "  (issue 15)",
        *lines,
    ]


def main() -> None:
    """Parse the options, run each size and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated campaign counts")
    parser.add_argument(
        "--real-embeddings-up-to",
        type=int,
        default=1000,
        help="embed with the real models up to this many campaigns, synthetic vectors above",
    )
    parser.add_argument(
        "--synthetic",
        choices=("noisy-real", "random"),
        default="noisy-real",
        help="vectors above --real-embeddings-up-to: the real vectors of each campaign's demo "
        "record plus noise (clustered as real embeddings are), or random unit vectors",
    )
    parser.add_argument(
        "--noise",
        type=float,
        default=NOISE,
        help="noisy-real: length of the noise added to a unit vector before renormalising",
    )
    parser.add_argument(
        "--mix",
        type=float,
        default=MIX,
        help="noisy-real: a passage takes a share U(0, MIX) of a peer record's passage vector",
    )
    parser.add_argument("--queries", type=int, default=100, help="timed requests per mode")
    parser.add_argument(
        "--embed-threads",
        type=int,
        default=1,
        # Two threads were slower (16 vs 24 passages/s) with another process busy on the box.
        help="torch threads for the bulk e5 encoding (no server runs meanwhile)",
    )
    parser.add_argument(
        "--query-cache",
        choices=("on", "off"),
        default="off",
        # The timed queries repeat (QUERIES cycled): with the cache on, hybrid and semantic
        # would time cache hits, not the query embedding the ratios are about.
        help="the server's query-vector cache (default off: every query is encoded)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=4,
        help="after the timing, start this many workers and report start-up and memory (1: skip)",
    )
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--keep", action="store_true", help="keep the data directories")
    parser.add_argument(
        "--build-only",
        action="store_true",
        help="build and keep the data directories (no approximate graphs), then stop: nothing is served or timed",
    )
    args = parser.parse_args()
    args.keep = args.keep or args.build_only
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    workdir = Path(tempfile.mkdtemp(prefix="kb-search-bench-"))
    models_dir = workdir / "models"  # converted e5, shared by this process and every server
    started = time.monotonic()
    results = []
    try:
        embedders = load_embedders(MODELS, models_dir, num_threads=1)
        # Convert e5 here, once, as `flask models prepare` does on a deployment: the servers
        # then load a prepared model and their RSS is that of serving, not of the conversion.
        for embedder in embedders:
            embedder.encode_queries(["预热"])
        # And keep the relevance floor's texts' vectors there, as the master's first start
        # does (kb/prefork.py): the servers below start as on a host that has started before.
        texts = contrast_texts()
        for embedder in embedders:
            if isinstance(embedder, SentenceTransformerEmbedder):
                log(
                    f"floor texts, {prefork._pin(embedder, texts, models_dir / prefork.PINNED_DIR)}"
                )
        demo = demo_records()
        for n in sizes:
            results.append(run_size(n, args, demo, embedders, models_dir, workdir))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    if args.build_only:
        log(f"kept in {workdir} ({(time.monotonic() - started) / 60:.1f} min)")
        return

    import torch

    print(
        f"search_bench {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs "
        f"(load avg at end {os.getloadavg()[0]:.2f}); Python {platform.python_version()}, "
        f"torch {torch.__version__}, e5 in {'bf16' if cpu_has_bf16() else 'fp32'}; "
        f"models {MODELS}; gunicorn 1 worker × 4 threads, KB_TORCH_THREADS=1; "
        f"query-vector cache {args.query_cache}; vectors float16"
    )
    print(f"CPU: {cpu_model()}; flags: {' '.join(cpu_flags()) or 'no AVX-512'}")
    print(
        f"queries: {len(QUERIES)} distinct ({', '.join(dict.fromkeys(q.kind for q in QUERIES))}) "
        f"cycled to "
        f"{args.queries} per mode, limit {LIMIT}, sequential over one keep-alive connection, "
        "modes and the embedding alone round-robin per query; "
        f"real embeddings up to {args.real_embeddings_up_to:,} campaigns"
    )
    for result in results:
        print("\n".join(report(result, args)))
    print("\n".join(summary(results)))
    print(f"\ntotal run time {(time.monotonic() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
