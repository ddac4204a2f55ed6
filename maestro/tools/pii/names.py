"""A gazetteer of given names and surnames: the US Census 1990 name lists (public domain).

The lists ship in the ``names`` package (treyhunner/names, MIT): ``dist.male.first`` (1,219 given
names), ``dist.female.first`` (4,275) and ``dist.all.last`` (88,799 surnames), one upper-case name per
line with its frequency. They are read once, on first use (~0.1 s), and kept as lower-case sets.

Many of these names are also English words (``Will``, ``May``, ``Grace``, ``Brown``, ``Station``), so
the person rules (:mod:`maestro.tools.pii.person`) never trust a gazetteer hit alone: they combine it with
the shape of the text (capitalised, a proper noun, next to another name) and veto common words
(:data:`maestro.tools.pii.person_words.COMMON_WORDS`). Without the package the gazetteer is empty and the
rules that need it simply find nothing.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from importlib import resources

__all__ = ["Gazetteer", "fold", "gazetteer"]


def fold(word: str) -> str:
    """Lower case without accents (``Miklós`` -> ``miklos``), as the census lists spell names."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


class Gazetteer:
    """Given names and surnames, lower case and accent-folded."""

    __slots__ = ("first", "last", "rank")

    def __init__(self, rank: dict[str, int], last: frozenset[str]) -> None:
        self.rank = rank  # given name -> best rank in the male or female list (1 = most common)
        self.first = frozenset(rank)
        self.last = last

    def is_first(self, word: str) -> bool:
        """A given name (``Rebecca``, ``miklos``)."""
        return fold(word) in self.first

    def is_common_first(self, word: str, top: int = 1000) -> bool:
        """A given name among the ``top`` most frequent of either list (``Rebecca``, not ``Soon``)."""
        return self.rank.get(fold(word), top + 1) <= top

    def is_last(self, word: str) -> bool:
        """A surname; a double-barrelled one counts if any part is (``Ramsey-Johnson``)."""
        folded = fold(word)
        return folded in self.last or any(p in self.last for p in folded.split("-") if len(p) > 1)

    def is_name(self, word: str) -> bool:
        return self.is_first(word) or self.is_last(word)


def _read(resource: str) -> list[str]:
    """The names of one list, most frequent first (empty without the package)."""
    try:
        text = resources.files("names").joinpath(resource).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        return []
    return [line.split(None, 1)[0].lower() for line in text.splitlines() if line.strip()]


@lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    """The census gazetteer, loaded once (empty if the ``names`` package is not installed)."""
    rank: dict[str, int] = {}
    for resource in ("dist.male.first", "dist.female.first"):
        for position, name in enumerate(_read(resource), start=1):
            rank[name] = min(position, rank.get(name, position))
    return Gazetteer(rank, frozenset(_read("dist.all.last")))
