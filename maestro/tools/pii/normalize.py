"""Unicode normalisation before scanning, with a map back to the original text (RELIABILITY #8).

Guards must see through obfuscation: ``jo\u200bhn@exаmple.com`` (a zero-width space and a Cyrillic
``а``) is still an email address. :func:`normalize` returns the text a detector should scan plus an offset
map, so a span found in the normalised text is mapped back to the *original* text and redaction removes
the obfuscated original, invisible characters included.

What happens, in order:

1. Invisible characters are dropped: every format character (Unicode category ``Cf``: zero-width
   U+200B..U+200D, word joiner U+2060, BOM U+FEFF, soft hyphen, bidi controls, ...) and the Unicode tag
   characters U+E0000..U+E007F ("ASCII smuggling"). The tag characters are not lost: :func:`hidden_runs`
   decodes runs of them so the caller can scan the hidden ASCII text too.
2. NFKC per grapheme-ish cluster (a base character and the combining marks after it), so fullwidth
   ``ｊｏｈｎ``, mathematical alphanumerics and ligatures fold to plain letters; every output character
   remembers the cluster of the original it came from.
3. Homoglyph folding: Cyrillic and Greek look-alikes of Latin letters are replaced one-for-one, but only
   inside a word that also contains a Latin letter, or whose letters are *all* look-alikes. Genuine Greek
   or Russian words (``ΑΓΛΑΝΤΖΙΑ``, ``Москва``) stay as they are.

Length is NOT preserved (step 1 drops characters, step 2 may expand); :meth:`NormalizedText.to_original`
maps any ``[start, end)`` span of the normalised text to the smallest original span covering it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["NormalizedText", "hidden_runs", "is_invisible", "normalize"]

# Cyrillic and Greek letters that render like a Latin letter in common fonts (Unicode confusables,
# restricted to the unambiguous ones).
_CONFUSABLES: dict[str, str] = {
    # Cyrillic lower case
    "а": "a", "е": "e", "ё": "e", "к": "k", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "ѕ": "s",
    "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l", "һ": "h", "ɡ": "g",
    # Cyrillic upper case
    "А": "A", "В": "B", "Е": "E", "Ё": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ї": "I", "Ј": "J", "Ԛ": "Q", "Ԝ": "W", "Ӏ": "I",
    # Greek lower case
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u",
    "χ": "x", "γ": "y",
    # Greek upper case
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
}  # fmt: skip

_TAG_START, _TAG_END = 0xE0000, 0xE007F
_TAG_RUN = re.compile("[\U000e0000-\U000e007f]+")
_WORD = re.compile(r"\w+")
_LATIN = re.compile(r"[A-Za-z]")
# Anything that may need work: non-ASCII at all. Pure-ASCII text is returned unchanged (fast path).
_NEEDS_WORK = re.compile(r"[^\x00-\x7f]")


def is_invisible(ch: str) -> bool:
    """True for characters removed before scanning: format characters (Cf) and Unicode tag characters."""
    code = ord(ch)
    return _TAG_START <= code <= _TAG_END or unicodedata.category(ch) == "Cf"


@lru_cache(maxsize=4096)
def _nfkc(cluster: str) -> str:
    return unicodedata.normalize("NFKC", cluster)


@dataclass(frozen=True, slots=True)
class NormalizedText:
    """The text to scan and, per character, the original span ``[starts[i], ends[i])`` it came from.

    ``starts`` is empty when the text needed no change (the map is the identity).
    """

    original: str
    text: str
    starts: tuple[int, ...] = ()
    ends: tuple[int, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether normalisation changed anything (the offset map is not the identity)."""
        return bool(self.starts)

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map ``[start, end)`` of the normalised text to the original span that produced it."""
        if not self.starts:
            return start, end
        if end <= start:
            pos = self.starts[start] if start < len(self.starts) else len(self.original)
            return pos, pos
        return self.starts[start], self.ends[end - 1]


def normalize(text: str) -> NormalizedText:
    """Normalise ``text`` for scanning (see the module docstring); pure ASCII is returned as is."""
    if not _NEEDS_WORK.search(text):
        return NormalizedText(original=text, text=text)
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if is_invisible(ch):
            i += 1
            continue
        j = i + 1
        while j < n and unicodedata.combining(text[j]):
            j += 1
        cluster = ch if j == i + 1 else text[i:j]
        folded = cluster if cluster.isascii() else _nfkc(cluster)
        for c in folded:
            if is_invisible(c):
                continue
            out.append(c)
            starts.append(i)
            ends.append(j)
        i = j
    normalized = _fold_homoglyphs("".join(out))
    if normalized == text:
        return NormalizedText(original=text, text=text)
    return NormalizedText(original=text, text=normalized, starts=tuple(starts), ends=tuple(ends))


def _fold_homoglyphs(text: str) -> str:
    """Replace look-alike letters one-for-one inside mixed-script or all-look-alike words."""
    if not any(c in _CONFUSABLES for c in text):
        return text
    pieces: list[str] = []
    last = 0
    for match in _WORD.finditer(text):
        word = match.group()
        if not any(c in _CONFUSABLES for c in word):
            continue
        letters = [c for c in word if c.isalpha()]
        mixed = bool(_LATIN.search(word))
        all_lookalike = all(c in _CONFUSABLES or c.isascii() for c in letters)
        if mixed or all_lookalike:
            pieces.append(text[last : match.start()])
            pieces.append("".join(_CONFUSABLES.get(c, c) for c in word))
            last = match.end()
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def hidden_runs(text: str) -> list[tuple[int, int, str]]:
    """Runs of Unicode tag characters decoded to the ASCII they smuggle: ``(start, end, decoded)``.

    Tag characters U+E0020..U+E007E mirror printable ASCII; they render as nothing, so a prompt can carry
    instructions or secrets a reader never sees. The caller scans ``decoded`` and reports ``[start, end)``.
    """
    runs: list[tuple[int, int, str]] = []
    for match in _TAG_RUN.finditer(text):
        decoded = "".join(
            chr(ord(c) - _TAG_START) for c in match.group() if 0x20 <= ord(c) - _TAG_START <= 0x7E
        )
        if decoded:
            runs.append((match.start(), match.end(), decoded))
    return runs
