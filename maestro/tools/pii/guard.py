"""The PII guard: find PII and secrets in text, and redact, mask, hash or pseudonymise them.

    guard = PIIGuard()                                # cheap: nothing is loaded yet
    guard.scan("mail jo\u200bhn@exаmple.com")         # first call loads spaCy (~1 s), later calls reuse it
    guard.redact(text, "pseudonymize", vault=vault)   # "<PERSON_1> wrote to <EMAIL_ADDRESS_1>"

How a scan works:

1. The text is normalised (:mod:`maestro.tools.pii.normalize`): NFKC, invisible characters removed,
   homoglyphs folded, with an offset map back to the original.
2. One Presidio ``AnalyzerEngine`` (spaCy model + Presidio's predefined recognizers + Maestro's) analyses
   the normalised text; every span is mapped back, so findings always index the ORIGINAL text and a
   redaction removes the obfuscated original (zero-width characters inside it included).
3. Hidden channels are decoded and scanned in turn (at most ``max_depth`` levels): runs of Unicode tag
   characters and base64 tokens that decode to readable text. A finding inside them is reported on the
   encoded span, with ``source`` saying where it was hidden.
4. :meth:`PIIGuard.scan` resolves overlaps (secrets beat identifiers, identifiers beat names, names beat
   optional types; then score, then length). :meth:`PIIGuard.redact` replaces the union of all
   overlapping spans, so nothing detected is left half-visible.

Thread safety: the analyzer is built once under a lock on first use (or by :meth:`PIIGuard.warm_up`);
analyses run one at a time per guard (spaCy pipelines are not documented as thread-safe).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from maestro.core.errors import InvalidRequest
from maestro.tools.pii.encoded import base64_payloads
from maestro.tools.pii.entities import ALL_ENTITIES, DEFAULT_ENTITIES, SECRET_ENTITIES
from maestro.tools.pii.normalize import hidden_runs, normalize
from maestro.tools.pii.vault import Vault

__all__ = ["Finding", "PIIGuard", "Redaction", "RedactionMode"]

RedactionMode = Literal["redact", "mask", "hash", "pseudonymize"]
REDACTION_MODES: tuple[str, ...] = ("redact", "mask", "hash", "pseudonymize")
Source = Literal["text", "base64", "unicode_tags"]

CHUNK_CHARS = 100_000
_OPTIONAL = frozenset({"LOCATION", "DATE_TIME", "NRP", "ORGANIZATION", "URL"})
_CASE_INSENSITIVE = frozenset({"EMAIL_ADDRESS", "URL", "IBAN_CODE"})


def _priority(entity: str) -> int:
    if entity in SECRET_ENTITIES:
        return 3
    if entity == "PERSON":
        return 1
    if entity in _OPTIONAL:
        return 0
    return 2


@dataclass(frozen=True, slots=True)
class Finding:
    """One detection: ``[start, end)`` of the original text. ``text`` is only filled on request."""

    type: str
    start: int
    end: int
    score: float
    text: str | None = field(default=None, repr=False, compare=False)
    source: Source = "text"

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``maestro pii scan --json``: type, start, end, score (never the value)."""
        return {"type": self.type, "start": self.start, "end": self.end, "score": round(self.score, 4)}


@dataclass(frozen=True, slots=True)
class Redaction:
    """The redacted text, what was found (offsets into the ORIGINAL text) and, if any, the vault."""

    text: str
    findings: list[Finding]
    vault: Vault | None = None


def _resolve(findings: Iterable[Finding]) -> list[Finding]:
    """Non-overlapping findings: the best of each overlapping group wins."""
    ranked = sorted(findings, key=lambda f: (-_priority(f.type), -f.score, -(f.end - f.start), f.start))
    kept: list[Finding] = []
    for f in ranked:
        if all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    return sorted(kept, key=lambda f: f.start)


def _merge(findings: Sequence[Finding]) -> list[Finding]:
    """Union of overlapping spans, labelled with the winning type of each group."""
    groups: list[list[Finding]] = []
    for f in sorted(findings, key=lambda f: (f.start, -f.end)):
        if groups and f.start < max(g.end for g in groups[-1]):
            groups[-1].append(f)
        else:
            groups.append([f])
    merged: list[Finding] = []
    for group in groups:
        best = min(group, key=lambda f: (-_priority(f.type), -f.score, -(f.end - f.start)))
        end = max(f.end for f in group)
        merged.append(Finding(best.type, group[0].start, end, best.score, None, best.source))
    return merged


class PIIGuard:
    """Scans and redacts PII and secrets. Build once and reuse: the spaCy model loads on first use.

    ``entities``: the types to look for by default (:data:`DEFAULT_ENTITIES`); ``hash_key``: the HMAC
    key for ``hash`` mode - pass the deployment's key so tags are stable across processes (default: a
    random key per guard, stable only within the process); ``max_depth``: how many levels of hidden
    encodings (base64 inside base64, ...) are decoded; ``ner=False``: patterns only, no spaCy model
    (several times faster; names only after explicit cues, no LOCATION/DATE_TIME/NRP/ORGANIZATION).
    """

    def __init__(
        self,
        *,
        entities: Collection[str] | None = None,
        score_threshold: float = 0.4,
        hash_key: bytes | None = None,
        max_depth: int = 2,
        model: str | None = None,
        ner: bool = True,
    ) -> None:
        self.entities = self._check_entities(entities) if entities is not None else DEFAULT_ENTITIES
        self.score_threshold = score_threshold
        self.max_depth = max_depth
        self._model = model
        self.ner = ner
        self._hash_key = hash_key if hash_key is not None else secrets.token_bytes(32)
        self._analyzer: Any = None
        self._build_lock = threading.Lock()
        self._analyze_lock = threading.Lock()

    # -- building -------------------------------------------------------------------------------------

    @staticmethod
    def _check_entities(entities: Collection[str]) -> frozenset[str]:
        unknown = set(entities) - ALL_ENTITIES
        if unknown:
            raise InvalidRequest(
                f"unknown PII entity type(s) {sorted(unknown)}: choose from {', '.join(sorted(ALL_ENTITIES))}"
            )
        return frozenset(entities)

    def warm_up(self) -> None:
        """Build the analyzer now (loads spaCy) instead of on the first scan."""
        self._engine()

    def _engine(self) -> Any:
        if self._analyzer is None:
            with self._build_lock:
                if self._analyzer is None:
                    from maestro.tools.pii.analyzer import DEFAULT_MODEL, build_maestro_analyzer

                    self._analyzer = build_maestro_analyzer(self._model or DEFAULT_MODEL, ner=self.ner)
        return self._analyzer

    # -- scanning -------------------------------------------------------------------------------------

    def scan(
        self, text: str, *, entities: Collection[str] | None = None, with_text: bool = False
    ) -> list[Finding]:
        """PII and secrets in ``text``, non-overlapping, sorted by position, offsets into ``text``."""
        wanted = self.entities if entities is None else self._check_entities(entities)
        found = _resolve(self._detect(text, wanted, 0))
        if with_text:
            found = [Finding(f.type, f.start, f.end, f.score, text[f.start : f.end], f.source) for f in found]
        return found

    def scan_many(
        self, texts: Sequence[str], *, entities: Collection[str] | None = None
    ) -> list[list[Finding]]:
        """:meth:`scan` for several texts, running spaCy over them as one batch."""
        wanted = self.entities if entities is None else self._check_entities(entities)
        engine = self._engine()
        normalized = [normalize(t) for t in texts]
        with self._analyze_lock:
            artifacts = list(engine.nlp_engine.process_batch([n.text for n in normalized], language="en"))
        out: list[list[Finding]] = []
        for text, norm, (_, nlp_artifacts) in zip(texts, normalized, artifacts, strict=True):
            out.append(_resolve(self._detect(text, wanted, 0, norm=norm, nlp_artifacts=nlp_artifacts)))
        return out

    def _analyze(
        self, text: str, wanted: frozenset[str], nlp_artifacts: Any = None
    ) -> list[tuple[str, int, int, float]]:
        """Analyse ``text`` in chunks of at most :data:`CHUNK_CHARS` (spaCy's limit is 1M characters)."""
        engine = self._engine()
        out: list[tuple[str, int, int, float]] = []
        for offset, chunk in _chunks(text, CHUNK_CHARS):
            with self._analyze_lock:
                results = engine.analyze(
                    chunk,
                    language="en",
                    entities=sorted(wanted),
                    score_threshold=self.score_threshold,
                    nlp_artifacts=nlp_artifacts if offset == 0 and len(chunk) == len(text) else None,
                )
            out += [(r.entity_type, r.start + offset, r.end + offset, float(r.score)) for r in results]
        return out

    def _detect(
        self, text: str, wanted: frozenset[str], depth: int, *, norm: Any = None, nlp_artifacts: Any = None
    ) -> list[Finding]:
        norm = norm if norm is not None else normalize(text)
        found: list[Finding] = []
        if norm.text.strip():
            for entity, nstart, nend, score in self._analyze(norm.text, wanted, nlp_artifacts):
                if entity in wanted:
                    start, end = norm.to_original(nstart, nend)
                    found.append(Finding(entity, start, end, score))
        if depth >= self.max_depth:
            return found
        for start, end, decoded in hidden_runs(text):
            found += [
                Finding(f.type, start, end, f.score, None, "unicode_tags")
                for f in self._detect(decoded, wanted, depth + 1)
            ]
        for nstart, nend, decoded in base64_payloads(norm.text):
            start, end = norm.to_original(nstart, nend)
            found += [
                Finding(f.type, start, end, f.score, None, "base64")
                for f in self._detect(decoded, wanted, depth + 1)
            ]
        return found

    # -- redacting ------------------------------------------------------------------------------------

    def redact(
        self,
        text: str,
        mode: RedactionMode = "redact",
        *,
        entities: Collection[str] | None = None,
        vault: Vault | None = None,
    ) -> Redaction:
        """Replace every finding in ``text``.

        ``redact``: ``<EMAIL_ADDRESS>``; ``mask``: ``*`` for every character (cards keep their last four
        digits); ``hash``: ``<EMAIL_ADDRESS:1a2b3c4d>``, a keyed HMAC of the normalised value, so one value
        gets one tag per deployment key; ``pseudonymize``: ``<PERSON_1>`` consistent per value within
        ``vault`` (a new vault is made and returned when none is given).
        """
        if mode not in REDACTION_MODES:
            raise InvalidRequest(
                f"unknown redaction mode '{mode}': choose one of {', '.join(REDACTION_MODES)}"
            )
        wanted = self.entities if entities is None else self._check_entities(entities)
        raw = self._detect(text, wanted, 0)
        if mode == "pseudonymize" and vault is None:
            vault = Vault()
        pieces: list[str] = []
        last = 0
        for f in _merge(raw):
            value = text[f.start : f.end]
            pieces.append(text[last : f.start])
            pieces.append(self._replacement(f.type, value, mode, vault))
            last = f.end
        pieces.append(text[last:])
        findings = [Finding(f.type, f.start, f.end, f.score, None, f.source) for f in _resolve(raw)]
        return Redaction("".join(pieces), findings, vault if mode == "pseudonymize" else None)

    def tag(self, entity: str, value: str) -> str:
        """The ``hash``-mode tag of ``value``: first 8 hex digits of HMAC-SHA256(key, type + value)."""
        digest = hmac.new(self._hash_key, f"{entity}\x00{_canonical(entity, value)}".encode(), hashlib.sha256)
        return digest.hexdigest()[:8]

    def _replacement(self, entity: str, value: str, mode: str, vault: Vault | None) -> str:
        if mode == "redact":
            return f"<{entity}>"
        if mode == "mask":
            return _mask(entity, value)
        if mode == "hash":
            return f"<{entity}:{self.tag(entity, value)}>"
        assert vault is not None  # pseudonymize always has a vault (made in redact)
        return vault.placeholder(entity, value, key=_canonical(entity, value))


def _chunks(text: str, size: int) -> list[tuple[int, str]]:
    """``(offset, chunk)`` pieces of at most ``size`` characters, cut at a line break or space if any."""
    if len(text) <= size:
        return [(0, text)]
    pieces: list[tuple[int, str]] = []
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            cut = max(text.rfind("\n", start + size // 2, end), text.rfind(" ", start + size // 2, end))
            end = cut + 1 if cut > start else end
        pieces.append((start, text[start:end]))
        start = end
    return pieces


def _canonical(entity: str, value: str) -> str:
    """The form two spellings of one value share: normalised, whitespace-collapsed, case-folded if safe."""
    canon = " ".join(normalize(value).text.split())
    return canon.casefold() if entity in _CASE_INSENSITIVE else canon


def _mask(entity: str, value: str) -> str:
    if entity != "CREDIT_CARD":
        return "*" * len(value)
    keep = 4
    out: list[str] = []
    for ch in reversed(value):
        if ch.isdigit():
            out.append(ch if keep > 0 else "*")
            keep -= 1
        else:
            out.append(ch)
    return "".join(reversed(out))
