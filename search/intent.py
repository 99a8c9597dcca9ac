"""The query's intent: is it looking for a past campaign, a lesson or a result, or is it a
general-knowledge, how-to, buying or admin question that only reuses a word of the corpus?

Near misses (双十一的由来, 小龙虾怎么洗, 纸尿裤尺码, 企业微信管理员) sit as close to a marketing
library as an in-scope question does by every corpus-relative number of search/relevance.py: they
share its products, platforms and festivals. What sets them apart is the question they ask. A
class-balanced L2 logistic regression on the query's own embedding, per combination of models
(the models' unit vectors side by side), learns that from labelled queries: every labelled set
in bench/data plus bench/data/search_intent_train.json, fitted by bench/fit_floor.py, which also
cross-validates it (nested: the floor model sees only out-of-fold intent scores). Its logit is
one feature of the floor's learned decision (``relevance.FEATURES``: ``intent``).

At serving time it is one dot product per model: the standardization the fit used is folded
into the stored weights (search/data/intent_model.json), loaded once.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

INTENT_PATH = Path(__file__).resolve().parent / "data" / "intent_model.json"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IntentModel:
    """A linear intent classifier over the query's unit vector under each of its models."""

    weights: Mapping[str, npt.NDArray[np.float64]]  # per model name, one weight per dimension
    intercept: float
    # The classifier over the query's characters fitted beside it (the floor's ``intent_text``).
    text: TextModel | None = None

    def logit(self, vectors: Mapping[str, npt.NDArray[np.floating] | None]) -> float:
        """Return the log-odds that the query is in scope; NaN when a model's vector is missing
        or has another dimension than the fit (a model swapped for another of the same name)."""
        total = self.intercept
        for name, weights in self.weights.items():
            vector = vectors.get(name)
            if vector is None or vector.shape != weights.shape:
                return math.nan
            total += float(weights @ vector.astype(np.float64))
        return total


@dataclass(frozen=True, slots=True)
class TextModel:
    """A linear intent classifier over the query text's character 1-3-grams, TF-IDF weighted.

    The question form carries intent (由来, 怎么洗, 哪个好, 尺码, 管理员, 怎么设置) in a few
    characters; they are fitted, not listed by hand. Computes what scikit-learn's
    ``TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)`` does, so
    serving needs no scikit-learn: n-grams within each word padded by a space, 1 + log(count)
    times the n-gram's IDF, the vector scaled to unit length, then the weights.
    """

    idf: Mapping[str, float]
    weights: Mapping[str, float]
    intercept: float

    def logit(self, text: str) -> float:
        """Return the log-odds that the query is in scope from its characters."""
        counts: dict[str, int] = {}
        for gram in char_ngrams(text):
            if gram in self.idf:
                counts[gram] = counts.get(gram, 0) + 1
        values = {g: (1.0 + math.log(n)) * self.idf[g] for g, n in counts.items()}
        norm = math.sqrt(math.fsum(v * v for v in values.values()))
        if norm == 0.0:
            return self.intercept
        return self.intercept + math.fsum(
            self.weights.get(g, 0.0) * v / norm for g, v in values.items()
        )


NGRAMS = (1, 3)


def char_ngrams(text: str, low: int = NGRAMS[0], high: int = NGRAMS[1]) -> list[str]:
    """Return the character n-grams of each whitespace-separated word padded by a space, as
    scikit-learn's "char_wb" analyzer (lowercased) gives them: a word shorter than n once."""
    grams = []
    for word in text.lower().split():
        padded = f" {word} "
        for n in range(low, high + 1):
            grams.append(padded[:n])
            grams.extend(padded[i : i + n] for i in range(1, len(padded) - n + 1))
            if len(padded) <= n:
                break
    return grams


def load_intent(path: Path = INTENT_PATH) -> dict[str, IntentModel]:
    """Return the intent classifiers of ``path`` by combination of models (``relevance.
    combination``); none when the file is missing or broken (the floor then uses its rule)."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        found = {}
        for key, fit in stored["fits"].items():
            weights = {
                name: np.asarray(values, dtype=np.float64)
                for name, values in fit["weights"].items()
            }
            if sorted(weights) != key.split("+") or any(w.ndim != 1 for w in weights.values()):
                raise ValueError(f"{key}: 权重的模型与组合名不一致")
            text = fit.get("text")
            found[key] = IntentModel(
                weights=weights,
                intercept=float(fit["intercept"]),
                text=None
                if text is None
                else TextModel(
                    idf={g: float(v) for g, v in text["idf"].items()},
                    weights={g: float(v) for g, v in text["weights"].items()},
                    intercept=float(text["intercept"]),
                ),
            )
        return found
    except (OSError, KeyError, TypeError, ValueError) as error:
        log.warning("查询意图模型 %s 读不出，相关性门槛改用规则判断：%s", path, error)
        return {}


@lru_cache(maxsize=1)
def shipped() -> dict[str, IntentModel]:
    """The classifiers in search/data/intent_model.json, read once per process."""
    return load_intent()
