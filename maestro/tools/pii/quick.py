"""Fast, dependency-free redaction for hot paths (ledger payload strings, log lines).

Regular expressions and checksums only — Maestro's secret rules, Luhn-checked cards, phone numbers,
e-mail and IP addresses — so it costs microseconds and imports nothing heavy (the full ``PIIGuard``
loads Presidio, which imports transformers when that is installed). It does not find names: strings
that may hold free text about people belong in ``PIIGuard``.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from maestro.tools.pii.entities import Span
from maestro.tools.pii.numbers import find_cards, find_phones
from maestro.tools.pii.secrets import find_secrets

_EMAIL = re.compile(
    r"(?<![\w.+-])[\w.+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}\b"
)
_IPV4 = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])")


def quick_spans(text: str) -> list[Span]:
    """Non-overlapping detections, leftmost first (the longer one wins an overlap)."""
    found = [*find_secrets(text), *find_cards(text), *find_phones(text)]
    found += [Span("EMAIL_ADDRESS", m.start(), m.end(), 1.0) for m in _EMAIL.finditer(text)]
    found += [Span("IP_ADDRESS", m.start(), m.end(), 0.9) for m in _IPV4.finditer(text)]
    chosen: list[Span] = []
    for span in sorted(found, key=lambda s: (s.start, -(s.end - s.start))):
        if chosen and span.start < chosen[-1].end:
            continue
        chosen.append(span)
    return chosen


class QuickRedactor:
    """``redact(text)`` replaces each detection with ``<TYPE>`` or, with a key, ``<TYPE:hmac8>``."""

    def __init__(self, hash_key: bytes | None = None) -> None:
        self._key = hash_key

    def redact(self, text: str) -> str:
        spans = quick_spans(text)
        if not spans:
            return text
        pieces: list[str] = []
        last = 0
        for span in spans:
            pieces.append(text[last : span.start])
            pieces.append(self._tag(span.entity, text[span.start : span.end]))
            last = span.end
        pieces.append(text[last:])
        return "".join(pieces)

    def _tag(self, entity: str, value: str) -> str:
        if self._key is None:
            return f"<{entity}>"
        digest = hmac.new(self._key, f"{entity}\0{value}".encode(), hashlib.sha256).hexdigest()[:8]
        return f"<{entity}:{digest}>"
