"""Concept cues: plain-language situations in a query mapped to the words retros use for them.

A planner asks "好几个月没买东西的顾客怎么拉回来"; the retro that answers says 沉睡用户召回. Neither the
analyzer's synonyms (same word, other spelling) nor the embedding models (small ones) bridge that
gap reliably, so ``search/data/concepts.txt`` lists, per concept, cues (regular expressions over the
normalized query) and the domain terms to add when one matches. Queries only: the index is untouched.

A cue counts only where it matches words of the query, not a piece of another word: the query is
segmented into the words of the dictionary (search.lexicon), and a match inside a longer word that is
not one of ours (积分 in 微积分, 天气 across 今天|气温) is ignored. A match at the start of a word
still counts (English stems: "renew" in "renewal"; 毕业 in 毕业生), and so does one inside a domain
word of the dictionary (积分 in 会员积分).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from search import lexicon
from search.normalize import normalize

CONCEPTS_PATH = Path(__file__).resolve().parent / "data" / "concepts.txt"
GLOSSARY_PATH = Path(__file__).resolve().parent / "data" / "glossary.txt"


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


def load_glossary(path: Path = GLOSSARY_PATH) -> tuple[Concept, ...]:
    """Read the English -> Chinese glossary as concepts whose cues are whole English words.

    Each English term matches case-insensitively as whole words (hyphen or space between them
    alike), a plural "s"/"es" allowed; raise ValueError naming a malformed line.
    """
    entries = []
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        terms_part, arrow, english_part = line.partition("<-")
        terms = tuple(terms_part.split())
        english = [e.strip().lower() for e in english_part.split("|") if e.strip()]
        if not arrow or not terms or not english or not all(e.isascii() for e in english):
            raise ValueError(f"{path}:{lineno}: expected 'term term <- english | english'")
        words = (r"[\s-]+".join(map(re.escape, re.split(r"[\s-]+", e))) for e in english)
        pattern = re.compile("|".join(rf"(?<![a-z0-9])(?:{w})(?:e?s)?(?![a-z0-9])" for w in words))
        entries.append(Concept(terms, pattern))
    return tuple(entries)


@functools.cache
def current() -> tuple[Concept, ...]:
    return load() + load_glossary()


def expand(query: str, concepts: tuple[Concept, ...] | None = None) -> tuple[str, ...]:
    """Return the domain terms the query's situation calls for (none already in the query)."""
    text = normalize(query)[0].lower()
    words: _Words | None = None
    added: list[str] = []
    for concept in current() if concepts is None else concepts:
        for match in concept.cues.finditer(text):
            words = words or _Words.of(text)
            if words.holds(match.start(), match.end()):
                added.extend(t for t in concept.terms if t.lower() not in text and t not in added)
                break
    return tuple(added)


@dataclass(frozen=True, slots=True)
class _Words:
    """The words of a normalized query: the dictionary's words only.

    No HMM guesses: rjieba's HMM glues unknown runs into one "word" (请大博主), and a cue inside
    such a guess is a real match.
    """

    text: str
    spans: tuple[tuple[int, int], ...]
    starts: frozenset[int]
    ends: frozenset[int]

    @classmethod
    def of(cls, text: str) -> _Words:
        spans = tuple(
            (start, end) for _, start, end in lexicon.current().segmenter.tokenize(text, hmm=False)
        )
        return cls(text, spans, frozenset(s for s, _ in spans), frozenset(e for _, e in spans))

    def holds(self, start: int, end: int) -> bool:
        """Return whether text[start:end] is made of words rather than a piece of another word."""
        if start == end:
            return False  # an empty match (a cue of optional parts only) says nothing
        starts_a_word, ends_a_word = start in self.starts, end in self.ends
        if starts_a_word and ends_a_word:
            return True
        for s, e in self.spans:
            if s <= start and end <= e:  # inside one longer word
                return starts_a_word or self.text[s:e] in lexicon.current().words
        return starts_a_word or ends_a_word  # across words: one edge must be a word's
