"""Fuse the rankings of several sources (keyword, each embedding model) into one.

Raw scores of different sources are never added (BM25 and cosine live on different scales):
fusion uses ranks (RRF) or per-query z-scores.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Ranking = Sequence[tuple[int, float]]

# The constant from the RRF paper (Cormack et al. 2009), also the BEIR comparison's.
RRF_K = 60
# z-score fusion: a campaign a source did not return scores this far below the weakest one it
# did. Not returned means "below this list's cut", so below its minimum, but by an unknown
# amount: half a standard deviation keeps a miss costly without letting one source veto.
MISSING_Z_MARGIN = 0.5


@dataclass(frozen=True, slots=True)
class FusedHit:
    """A fused result: the campaign, its fused score and what each source added.

    ``contributions`` holds the sources that returned the campaign. For RRF they sum to
    ``score``; for z-score fusion ``score`` also includes each missing source's penalty
    (weight × (that list's minimum z − MISSING_Z_MARGIN)).
    """

    campaign_id: int
    score: float
    contributions: dict[str, float]


def fuse_rankings(
    rankings: Mapping[str, Ranking],
    *,
    weights: Mapping[str, float] | None = None,
    method: Literal["rrf", "zscore"] = "rrf",
    k: int = RRF_K,
) -> list[FusedHit]:
    """Fuse best-first rankings by reciprocal rank or z-score; ties go to the lower id.

    RRF adds ``weight / (k + rank)`` per source (rank 1 = first). Z-score fusion adds
    ``weight × z`` per source, z computed over the scores that source returned; a list of one,
    or of equal scores, has no spread and gives everyone z = 0. A source without a weight gets
    1; weight 0 ignores it. Repeated ids in one ranking count once, at their best place.
    """
    if method not in ("rrf", "zscore"):
        raise ValueError(f"unknown fusion method {method!r}")
    if k < 0:
        raise ValueError("k must not be negative")
    weights = weights or {}
    if any(w < 0 or not math.isfinite(w) for w in weights.values()):
        raise ValueError("weights must be finite and not negative")
    contributions: dict[int, dict[str, float]] = {}
    penalties: dict[str, float] = {}  # per source: what a campaign it missed gets
    for source, ranking in rankings.items():
        weight = weights.get(source, 1.0)
        first = _first_places(ranking)
        if weight == 0 or not first:
            continue
        if method == "rrf":
            values = {cid: weight / (k + rank) for rank, cid in enumerate(first, start=1)}
        else:
            z = _zscores(list(first.values()))
            values = {cid: weight * zi for cid, zi in zip(first, z, strict=True)}
            penalties[source] = weight * (min(z) - MISSING_Z_MARGIN)
        for cid, value in values.items():
            contributions.setdefault(cid, {})[source] = value
    hits = []
    for cid, parts in contributions.items():
        missed = sum(p for source, p in penalties.items() if source not in parts)
        hits.append(FusedHit(cid, sum(parts.values()) + missed, parts))
    hits.sort(key=lambda hit: (-hit.score, hit.campaign_id))
    return hits


def combine_semantic(
    rankings: Mapping[str, Ranking], weights: Mapping[str, float] | None = None
) -> list[tuple[int, float]]:
    """Fuse several embedding models' cosine rankings: per-query z-scores, weighted (default 1).

    On the team's check (68 zh/en queries) e5 + USE fused this way with equal weights reached
    acc@1 0.96 against 0.87 and 0.90 alone. A stronger model may be given more weight.
    """
    fused = fuse_rankings(rankings, weights=weights, method="zscore")
    return [(hit.campaign_id, hit.score) for hit in fused]


def _first_places(ranking: Ranking) -> dict[int, float]:
    """Return id → score in ranking order, keeping each id's first (best) place."""
    first: dict[int, float] = {}
    for cid, score in ranking:
        if not math.isfinite(score):
            raise ValueError(f"score of campaign {cid} is not finite")
        first.setdefault(cid, score)
    return first


def _zscores(scores: list[float]) -> list[float]:
    mean = math.fsum(scores) / len(scores)
    std = math.sqrt(math.fsum((s - mean) ** 2 for s in scores) / len(scores))
    if std <= 1e-12 * max(1.0, abs(mean)):  # no spread: no evidence of better or worse
        return [0.0] * len(scores)
    return [(s - mean) / std for s in scores]
