"""Names of people: spaCy's PERSON entities, cleaned and completed with rules that hold for any text.

The small English spaCy model finds about two thirds of the names in the benchmark and labels many others
as ORG or GPE. These rules recover names from what surrounds them, from a gazetteer of given names and
surnames (US Census 1990 lists, :mod:`maestro.tools.pii.names`), and remove what cannot be a name (word
lists in :mod:`maestro.tools.pii.person_words`):

* **Gazetteer**: a census given name followed by capitalised words (``Zoe Young``, even where spaCy says
  ORG), a given name and a census surname, an unknown proper noun and a surname (not in a place); a lone
  frequent given name tagged a proper noun (``Rebecca``); in lower-case text, a given name (and a surname
  right after). Never a word that is also common English (``Will``, ``Grace``, ``Brown``), nor a word
  glued into an email address, a handle or code (``rebecca.moore@``, ``get_name(``).

* **Cues before a name**: honorifics (``Mr``, ``Dr.``), greetings and sign-offs (``Dear``, ``Regards,``),
  labels (``Name:``, ``my name is``, ``named``, ``called``), kinship (``my son``), ``I'm``/``this is``,
  verbs of address (``speak to``, ``ask for``) and of speech or credit (``said``, ``starring``,
  ``directed by``). After a label a lower-case name is accepted too (``my name is eva kleist``).
* **Cues after a name**: a capitalised proper noun followed by a verb that takes a person as subject
  (``Sofie lives ...``, ``Zak shouted at ...``) or by kinship (``Asya's kid``); a name addressed at the
  start of a sentence (``Danial, can I ...``); speaker labels in a dialogue (``Sara: "..."``).
* **Shape**: ``First M Last`` (a middle initial between two capitalised words).
* **Completion**: a name grows over the initials and capitalised words next to it on its line
  (``Ryan`` -> ``Ryan P Costa``); names joined by ``,``/``and`` to a name are names; a name, or a word
  of a name used as a proper noun, is found everywhere it recurs.
* **Contact blocks**: the first line of a signature or address card, if it is only two to four
  name-shaped words.
* **Removal**: lower-case spans in a text that is otherwise properly cased; digits, ``@`` or all-caps
  words inside; street names (a street word or a house number right after, ``rue``/``ul.``/``on`` right
  before); towns in addresses (``, CO``, ``, Denmark 56905`` right after); organisation suffixes (``Inc``,
  ``GmbH``, ``Sons``); place prefixes (``St Georges``); a span crossing a line break is cut at the break;
  single common nouns (``Salesperson``, ``User:``); firms named after partners (``Clark, Romero and Hall
  Orchestra``).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from typing import Any

from maestro.tools.pii import person_words as W
from maestro.tools.pii.entities import Span
from maestro.tools.pii.names import Gazetteer, fold, gazetteer

__all__ = ["find_persons"]

Candidate = tuple[int, int, float]  # (start char, end char, score)

_NAME_TOKEN = re.compile(r"^[^\W\d_]+(?:['’\-][^\W\d_]+)*\.?$")
_INITIAL = re.compile(r"^[^\W\d_]\.?$")
_BAD_CHARS = re.compile(r"[\d@/\\:_#<>=]")
_TOWN_AFTER = re.compile(
    r"\s*\n\s*,\s*[A-Z]{2}\b|,\s*[A-Z]{2}\s+\d|,\s*[A-Z][^\W\d_]+(?:\s[A-Z][^\W\d_]+)?,?\s+\d{3,}"
)
# "Danial, can I ...", "Aloisia, please ...": a name addressed at the start of a sentence
_VOCATIVE_NEXT = frozenset("can could would will please do did are is have thanks thank i you we".split())
_SKIP_PUNCT = frozenset({",", ":", "-", "?", "—", "–"})


def _lower(token: Any) -> str:
    return str(token.text).lower().rstrip(".")


def _is_initial(token: Any) -> bool:
    return bool(_INITIAL.match(token.text)) and str(token.text)[0].isupper()


def _is_name_token(token: Any, *, lowercase_ok: bool) -> bool:
    text = str(token.text)
    low = _lower(token)
    if not _NAME_TOKEN.match(text) or low in W.TITLES or low in W.CALENDAR or low in W.ADDRESS_UNITS:
        return False
    if text[0].isupper():
        return not (len(text) >= 3 and text.rstrip(".").isupper())
    return lowercase_ok and not token.is_stop and len(text) > 1


def _name_run(
    doc: Any, start: int, *, lowercase_ok: bool = False, max_words: int = 4
) -> tuple[int, int] | None:
    """Token range ``[start, end)`` of the name-shaped words starting at ``start``, on one line."""
    i, n, words, last = start, len(doc), 0, -1
    while i < n and words < max_words:
        tok = doc[i]
        if tok.is_space:
            if "\n" in tok.text:
                break
        elif _is_initial(tok) and words > 0:
            words += 1
            last = i
        elif _lower(tok) in W.PARTICLES and words > 0 and i + 1 < n and str(doc[i + 1].text)[:1].isupper():
            pass
        elif _is_name_token(tok, lowercase_ok=lowercase_ok):
            if words == 0 and tok.is_stop and not lowercase_ok:
                return None
            words += 1
            last = i
        else:
            break
        i += 1
    return (start, last + 1) if last >= start else None


def _neighbours(doc: Any, index: int, count: int, step: int) -> list[str]:
    """Lower-case texts of up to ``count`` non-space tokens before (step -1) or after (step 1) ``index``."""
    out: list[str] = []
    i = index + step
    while 0 <= i < len(doc) and len(out) < count:
        if not doc[i].is_space:
            out.append(_lower(doc[i]))
        i += step
    return out


def _cue(prev: list[str]) -> str | None:
    """The cue ending right before a token: 'label' (lower-case names allowed), 'cue', 'weak' or None."""
    colon = bool(prev) and prev[0] in {":", "?"}
    words = [t for t in prev if t and t not in _SKIP_PUNCT]
    first, second = (words + ["", ""])[:2]
    if (colon and first in W.LABELS) or first in {"named", "called"}:
        return "label"
    if first == "name":
        return "cue"
    if (first in {"is", "was"} and second in {"name", "surname", "names"}) or (first, second) == (
        "me",
        "call",
    ):
        return "label"
    if first in W.TITLES or first in W.GREETINGS or first in W.RELATIONS or first in W.SPEECH_VERBS:
        return "cue"
    if first == "at" and second in W.SPEECH_VERBS:
        return "cue"
    if (first in {"'m", "am"} and second == "i") or (first, second) == ("is", "this"):
        return "cue"
    if (first in {"to", "with", "for"} and second in W.ADDRESS_VERBS) or first in W.ADDRESS_VERBS:
        return "weak"
    if first == "by":
        return "weak"
    return None


def _char_span(doc: Any, start: int, end: int) -> tuple[int, int]:
    return int(doc[start].idx), int(doc[end - 1].idx + len(doc[end - 1].text))


def _all_propn(doc: Any, start: int, end: int) -> bool:
    return all(doc[i].pos_ == "PROPN" or doc[i].is_space or _is_initial(doc[i]) for i in range(start, end))


def _cued_spans(doc: Any) -> list[Candidate]:
    spans: list[Candidate] = []
    for i, tok in enumerate(doc):
        if tok.is_space or not str(tok.text)[:1].isalpha():
            continue
        kind = _cue(_neighbours(doc, i, 4, -1))
        if kind is None:
            continue
        run = _name_run(doc, i, lowercase_ok=kind == "label", max_words=4 if kind == "label" else 3)
        if run is None or (kind == "weak" and not _all_propn(doc, *run)):
            continue
        spans.append((*_char_span(doc, *run), 0.8 if kind == "label" else 0.75))
    return spans


def _followed_by_person_word(doc: Any, run: tuple[int, int]) -> bool:
    """``X lives``, ``X is from``, ``X had given``, ``X's daughter``, ``X, can you ...`` (at a start)."""
    first, second, third = (_neighbours(doc, run[1] - 1, 3, 1) + ["", "", ""])[:3]
    if first in W.HUMAN_VERBS or (first in {"is", "was"} and second == "from"):
        return True
    if first in {"had", "has", "will"} and (second in W.HUMAN_VERBS or second in {"given", "be"}):
        return True
    if first == "'s" and second in W.RELATIONS:
        return True
    before = _neighbours(doc, run[0], 1, -1)
    at_start = not before or before[0] in {"", "!", "?", '"', "“"} or "\n" in doc[run[0] - 1].text
    return at_start and first == "," and (second in _VOCATIVE_NEXT or third in {"you", "i", "we"})


def _verb_after_spans(doc: Any) -> list[Candidate]:
    """``Sofie lives on ...``, ``Zak shouted at ...``: a proper noun followed by a person's verb."""
    spans: list[Candidate] = []
    i = 0
    while i < len(doc):
        tok = doc[i]
        if tok.is_space or tok.pos_ != "PROPN" or not str(tok.text)[:1].isupper():
            i += 1
            continue
        run = _name_run(doc, i, max_words=3)
        if run is None:
            i += 1
            continue
        if _followed_by_person_word(doc, run) and _all_propn(doc, *run):
            spans.append((*_char_span(doc, *run), 0.7))
        i = run[1]
    return spans


def _dialogue_spans(text: str) -> list[Candidate]:
    """Speaker labels at line starts (``Sara: "Who are you?"``) in a text with two or more of them."""
    pattern = re.compile(r"^[ \t>]*([A-Z][^\W\d_]+(?:[ \t][A-Z][^\W\d_]+)?)[ \t]*:[ \t]*\S", re.MULTILINE)
    matches = [m for m in pattern.finditer(text) if m.group(1).split()[0].lower() not in W.FIELD_LABELS]
    if len(matches) < 2 and not any(text[m.end() - 1] in "\"“'" for m in matches):
        return []
    return [(m.start(1), m.end(1), 0.7) for m in matches]


def _initial_shape_spans(text: str) -> list[Candidate]:
    """``Nikolaj N Møller``, ``codey m ross``: a single-letter middle initial between two words."""
    pattern = re.compile(r"(?<![\w.])([^\W\d_]{2,}) ([^\W\d_])\.? ([^\W\d_]{2,})(?![\w])")
    spans: list[Candidate] = []
    for m in pattern.finditer(text):
        words = [m.group(1), m.group(2), m.group(3)]
        same_case = all(w[0].isupper() for w in words) or all(w.islower() for w in words)
        if same_case and words[1].lower() not in {"a", "i"} and words[0].lower() not in W.PARTICLES:
            spans.append((m.start(), m.end(), 0.7))
    return spans


def _token_at(doc: Any, char: int) -> int | None:
    """Index of the token containing character ``char`` (None in whitespace between tokens)."""
    starts: list[int] | None = doc.user_data.get("maestro_token_starts")
    if starts is None:
        starts = doc.user_data["maestro_token_starts"] = [t.idx for t in doc]
    i = bisect_right(starts, char) - 1
    if i < 0 or char >= starts[i] + len(doc[i].text):
        return None
    return i


def _tidy(doc: Any, text: str, start: int, end: int) -> tuple[int, int] | None:
    """Cut at a line break, drop a trailing ``'s`` and leading lower-case words, grow over initials."""
    piece = text[start:end]
    if "\n" in piece:
        end = start + piece.index("\n")
    while end > start and not text[end - 1].isalpha() and text[end - 1] != ".":
        end -= 1
    if text[start:end].endswith(("'s", "’s")):
        end -= 2
    while True:
        words = text[start:end].split(" ")
        if (
            len(words) > 1
            and words[0][:1].islower()
            and words[1][:1].isupper()
            and words[0] not in W.PARTICLES
        ):
            start += len(words[0]) + 1
        else:
            break
    if end <= start:
        return None
    first, last = _token_at(doc, start), _token_at(doc, end - 1)
    if first is not None and last is not None:
        run = _name_run(doc, first, max_words=5)
        if run is not None and run[1] > last + 1:
            end = _char_span(doc, *run)[1]
    return start, end


def _plausible(text: str, start: int, end: int) -> bool:
    value = text[start:end]
    if len(value) < 2 or _BAD_CHARS.search(value) or not any(c.isalpha() for c in value):
        return False
    words = value.lower().replace(",", " ").split()
    if len(words) == 1 and _common_noun(words[0], text[end : end + 1]):
        return False
    if any(w in W.ORG_WORDS for w in words) or (words[0] in W.PLACE_PREFIXES and len(words) > 1):
        return False
    if any(w in W.ORG_SUFFIXES for w in value.replace(",", " ").split()):
        return False
    if words[-1].rstrip(".") in W.STREET_WORDS or any(len(w) >= 3 and w.isupper() for w in value.split()):
        return False
    after_raw = text[end : end + 30].split("\n", 1)[0].replace(",", " ").split()
    after = [w.lower().rstrip(".") for w in after_raw]
    if after and (after[0] in W.STREET_WORDS or after[0] in W.ORG_WORDS or after[0].isdigit()):
        return False
    if after_raw and after_raw[0] in W.ORG_SUFFIXES:
        return False
    if _TOWN_AFTER.match(text[end : end + 40]):
        return False  # "Artilleros\n, CO" / "Springfield, IL 62701" / "Beder, Denmark 56905": a town
    before = text[max(0, start - 30) : start].split("\n")[-1].lower().replace(".", " ").split()
    return not (before and (before[-1] in W.STREET_BEFORE or before[-1].isdigit()))


def _common_noun(word: str, after: str) -> bool:
    """``Salesperson``, ``Cinematographer``, ``User:``: a single word that is a common noun, not a name."""
    word = word.rstrip(".")
    if gazetteer().is_name(word):
        return False
    return word.endswith(W.COMMON_SUFFIXES) or (after == ":" and word in W.FIELD_LABELS)


_FIRM = re.compile(
    r"(?<![\w-])[A-Z][^\W\d_]+(?:-[A-Z][^\W\d_]+)?(?:,\s*[A-Z][^\W\d_]+(?:-[A-Z][^\W\d_]+)?)+,?\s+(?:and|&)\s+"
    r"[A-Z][^\W\d_]+(?:-[A-Z][^\W\d_]+)?[ \t]+([A-Z][\w.]*)"
)


def _firm_names(text: str) -> list[tuple[int, int]]:
    """``Clark, Romero and Hall Orchestra``, ``Baker, Fox & Lee LLP``: surnames naming a firm."""
    out: list[tuple[int, int]] = []
    for m in _FIRM.finditer(text):
        last = m.group(1)
        if last in W.ORG_SUFFIXES or last.lower().rstrip(".") in W.ORG_WORDS:
            out.append((m.start(), m.end()))
    return out


def _coordinated(doc: Any, spans: list[Candidate]) -> list[Candidate]:
    """Names joined to a known name by ``,`` / ``and`` / ``&`` / ``or`` are names too."""
    extra: list[Candidate] = []
    for _start, end, _score in spans:
        last = _token_at(doc, end - 1)
        i = (last + 1) if last is not None else len(doc)
        while i + 1 < len(doc) and doc[i].text in {",", "and", "&", "or"}:
            j = i + 2 if doc[i].text == "," and doc[i + 1].text == "and" else i + 1
            run = _name_run(doc, j, max_words=4) if j < len(doc) else None
            if run is None:
                break
            extra.append((*_char_span(doc, *run), 0.7))
            i = run[1]
    return extra


def _contact_block(doc: Any, text: str) -> list[Candidate]:
    """The first line of a block like a signature or address card, if it is only a name."""
    stripped = text.lstrip(" \t>?*-\n")
    if "\n" not in stripped or not re.search(r"[\d@]", stripped):
        return []
    offset = len(text) - len(stripped)
    line = stripped.split("\n", 1)[0].rstrip()
    words = line.split()
    if not 2 <= len(words) <= 4 or re.search(r"[^\w\s.'’\-]", line):
        return []
    if not all(w[0].isupper() or w.lower() in W.PARTICLES for w in words):
        return []
    first = _token_at(doc, offset)
    run = _name_run(doc, first) if first is not None else None
    if run is None or _char_span(doc, *run)[1] != offset + len(line):
        return []
    return [(offset, offset + len(line), 0.7)]


def _recurrences(doc: Any, text: str, spans: Iterable[Candidate]) -> list[Candidate]:
    """Other occurrences of a found name; single words of a name only where spaCy tags a proper noun."""
    names = {text[s:e] for s, e, _ in spans if e - s >= 3}
    words = {w for n in names for w in n.split() if len(w) >= 3 and w[0].isupper()} - names
    extra: list[Candidate] = []
    for name in names | words:
        for m in re.finditer(r"(?<!\w)" + re.escape(name) + r"(?!\w)", text):
            if name in words:
                i = _token_at(doc, m.start())
                if i is None or doc[i].pos_ != "PROPN" or doc[i].text != name:
                    continue
            extra.append((m.start(), m.end(), 0.7))
    return extra


_PLACE_LABELS = frozenset({"GPE", "LOC", "FAC"})
_NOT_NAME_POS = frozenset({"AUX", "VERB", "DET", "ADP", "PRON", "CCONJ", "SCONJ", "PART", "NUM", "ADV"})
# a word glued to these is part of an address, a handle or code (``john.smith@``, ``user_name``, ``f(x)``)
_GLUE_BEFORE = frozenset("@._/\\#$<=:-")
_GLUE_AFTER = frozenset("@_/\\(=<")


def _glued(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start > 0 else " "
    after = text[end : end + 2]
    if before in _GLUE_BEFORE and start > 1 and not text[start - 2].isspace():
        return True
    return bool(after) and (after[0] in _GLUE_AFTER or (after[0] in ".-" and after[1:2].isalnum()))


def _given(g: Gazetteer, token: Any) -> bool:
    """A given name from the census lists that is not also a common English word."""
    low = fold(str(token.text))
    return low in g.first and low not in W.COMMON_WORDS and not token.is_stop


def _surname(g: Gazetteer, token: Any) -> bool:
    low = fold(str(token.text))
    return g.is_last(str(token.text)) and low not in W.COMMON_WORDS and not token.is_stop


def _lowercase_name(g: Gazetteer, doc: Any, i: int) -> int | None:
    """End token of a name at ``i`` in a lower-case text: a given name, and a surname right after it."""
    tok = doc[i]
    if len(tok.text) < 3 or not _given(g, tok) or not _is_name_token(tok, lowercase_ok=True):
        return None
    nxt = doc[i + 1] if i + 1 < len(doc) else None
    if nxt is not None and str(nxt.text).isalpha() and _surname(g, nxt):
        return i + 2
    if g.is_common_first(str(tok.text)) and tok.pos_ == "PROPN":
        return i + 1
    return None


def _entity_labels(doc: Any) -> dict[int, str]:
    return {i: str(ent.label_) for ent in doc.ents for i in range(ent.start, ent.end)}


def _gazetteer_spans(doc: Any, text: str, *, lowercase_text: bool) -> list[Candidate]:
    """Runs of capitalised words that start with a census given name or end in a census surname.

    ``Zoe Young``, ``Calquín Cazares``, ``Hanna Ukkonen``: a given name followed by capitalised words, or a
    capitalised proper noun followed by a surname, is a full name even where spaCy says ORG. A lone given
    name counts where spaCy tags it a proper noun and it is not also a common word (``Rebecca``, not
    ``Will`` or ``Grace``). In a text written in lower case, a given name (and a surname after it) counts.
    """
    g = gazetteer()
    if not g.first:
        return []
    labels = _entity_labels(doc)
    spans: list[Candidate] = []
    i, n = 0, len(doc)
    while i < n:
        tok = doc[i]
        word = str(tok.text)
        if tok.is_space or not word[:1].isalpha() or _glued(text, tok.idx, tok.idx + len(word)):
            i += 1
            continue
        if lowercase_text and word.islower():
            end = _lowercase_name(g, doc, i)
            if end is not None:
                spans.append((*_char_span(doc, i, end), 0.6))
                i = end
            else:
                i += 1
            continue
        if not word[0].isupper():
            i += 1
            continue
        run = _name_run(doc, i, max_words=4)
        if run is None:
            i += 1
            continue
        words = [j for j in range(*run) if not doc[j].is_space and not _is_initial(doc[j])]
        # drop leading words that are neither a name nor a proper noun ("Ask Rebecca Moore")
        while words and not (g.is_name(str(doc[words[0]].text)) or doc[words[0]].pos_ == "PROPN"):
            words.pop(0)
        if words and doc[words[0]].pos_ not in _NOT_NAME_POS:
            head, last = doc[words[0]], doc[run[1] - 1]
            pair = len(words) >= 2 and (_given(g, head) or (g.is_first(str(head.text)) and _surname(g, last)))
            # "Calquín Cazares": an unknown proper noun and a surname, where spaCy sees no place
            pair = pair or (
                len(words) == 2
                and _surname(g, last)
                and head.pos_ == "PROPN"
                and last.pos_ == "PROPN"
                and fold(str(head.text)) not in W.COMMON_WORDS
                and not any(labels.get(j) in _PLACE_LABELS for j in words)
            )
            alone = (
                len(words) == 1
                and _given(g, head)
                and g.is_common_first(str(head.text))
                and head.pos_ == "PROPN"
            )
            if pair or alone:
                spans.append((*_char_span(doc, words[0], run[1]), 0.65 if pair else 0.6))
        i = run[1]
    return spans


def _mostly_lowercase(text: str) -> bool:
    """A text written in lower case (chat style), where a lower-case name is still a name."""
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and sum(c.isupper() for c in letters) < 0.02 * len(letters)


def find_persons(text: str, doc: Any, entities: Sequence[Any]) -> list[Span]:
    """PERSON spans in ``text`` from the spaCy ``doc`` and its (Presidio-mapped) entities."""
    lowercase_text = _mostly_lowercase(text)
    raw = [
        (int(e.start_char), int(e.end_char), 0.85)
        for e in entities
        if e.label_ == "PERSON" and (lowercase_text or any(c.isupper() for c in e.text))
    ]
    raw += _cued_spans(doc) + _verb_after_spans(doc) + _dialogue_spans(text) + _initial_shape_spans(text)
    raw += _contact_block(doc, text) + _gazetteer_spans(doc, text, lowercase_text=lowercase_text)
    found: list[Candidate] = []
    for start, end, score in raw:
        tidy = _tidy(doc, text, start, end)
        if tidy is not None and _plausible(text, *tidy):
            found.append((*tidy, score))
    found += [c for c in _coordinated(doc, found) if _plausible(text, c[0], c[1])]
    found += [c for c in _recurrences(doc, text, found) if _plausible(text, c[0], c[1])]
    firms = _firm_names(text)
    if firms:
        found = [c for c in found if not any(s <= c[0] and c[1] <= e for s, e in firms)]
    return [Span("PERSON", s, e, score) for s, e, score in found]
