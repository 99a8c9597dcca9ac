"""Concept cues: plain-language situations in a query mapped to the words retros use for them.

A planner asks "好几个月没买东西的顾客怎么拉回来"; the retro that answers says 沉睡用户召回. Neither the
analyzer's synonyms (same word, other spelling) nor the embedding models (small ones) bridge that
gap reliably, so ``search/data/concepts.txt`` lists, per concept, cues (regular expressions over the
normalized query) and the domain terms to add when one matches. Queries only: the index is untouched.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from search.normalize import normalize

CONCEPTS_PATH = Path(__file__).resolve().parent / "data" / "concepts.txt"


@dataclass(frozen=True, slots=True)
class Concept:
    """Domain terms and the cues that call for them."""

    terms: tuple[str, ...]
    cues: re.Pattern[str]


def load(path: Path = CONCEPTS_PATH) -> tuple[Concept, ...]:
    """Read a concepts file; raise ValueError naming the line of a malformed entry."""
    concepts = []
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        terms_part, arrow, cues_part = line.partition("<-")
        terms = tuple(terms_part.split())
        cues = [cue.strip() for cue in cues_part.split(" | ") if cue.strip()]
        if not arrow or not terms or not cues:
            raise ValueError(f"{path}:{lineno}: expected 'term term <- cue | cue'")
        try:
            pattern = re.compile("|".join(f"(?:{normalize(cue)[0]})" for cue in cues))
        except re.error as exc:
            raise ValueError(f"{path}:{lineno}: bad cue: {exc}") from None
        concepts.append(Concept(terms, pattern))
    return tuple(concepts)


@functools.cache
def current() -> tuple[Concept, ...]:
    return load()


def expand(query: str, concepts: tuple[Concept, ...] | None = None) -> tuple[str, ...]:
    """Return the domain terms the query's situation calls for (none already in the query)."""
    text = normalize(query)[0].lower()
    added: list[str] = []
    for concept in current() if concepts is None else concepts:
        if concept.cues.search(text):
            added.extend(t for t in concept.terms if t.lower() not in text and t not in added)
    return tuple(added)
