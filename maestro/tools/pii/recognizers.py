"""Maestro's Presidio recognizers: thin adapters from the pure detectors to Presidio's interface.

* :class:`SecretRecognizer` - the secret formats of :mod:`maestro.tools.pii.secrets`.
* :class:`NumberRecognizer` - phone and payment-card numbers (:mod:`maestro.tools.pii.numbers`),
  replacing Presidio's ``PhoneRecognizer`` and ``CreditCardRecognizer``.
* :class:`PersonRecognizer` - spaCy's PERSON entities cleaned and completed by
  :mod:`maestro.tools.pii.person`, replacing PERSON from Presidio's ``SpacyRecognizer``.
* :class:`OfflineEmailRecognizer` - Presidio's email recognizer with an offline public-suffix list
  (the stock one makes ``tldextract`` fetch the list from the internet on first use).
* :class:`VersionAwareIpRecognizer` - Presidio's IP recognizer, minus version strings
  (``version 10.0.0.1``, ``pkg==1.2.3.4``, ``10.0.0.1-beta``) and addresses that identify no host
  (loopback ``127.0.0.1``/``::1``, unspecified ``0.0.0.0``, broadcast, multicast).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from presidio_analyzer import LocalRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts
from presidio_analyzer.predefined_recognizers import EmailRecognizer, IpRecognizer

from maestro.tools.pii.entities import SECRET_ENTITIES, Span
from maestro.tools.pii.numbers import find_cards, find_phones
from maestro.tools.pii.person import find_persons
from maestro.tools.pii.secrets import find_secrets

__all__ = [
    "NumberRecognizer",
    "OfflineEmailRecognizer",
    "PersonRecognizer",
    "SecretRecognizer",
    "VersionAwareIpRecognizer",
    "offline_suffix_extractor",
]


def offline_suffix_extractor() -> Any:
    """A ``tldextract`` extractor that only uses the public-suffix snapshot shipped in the package."""
    import tldextract

    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)


def _results(recognizer: LocalRecognizer, spans: list[Span], entities: list[str]) -> list[RecognizerResult]:
    wanted = set(entities)
    return [
        RecognizerResult(
            entity_type=span.entity,
            start=span.start,
            end=span.end,
            score=span.score,
            recognition_metadata={
                RecognizerResult.RECOGNIZER_NAME_KEY: getattr(recognizer, "name", type(recognizer).__name__),
                RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: recognizer.id,
            },
        )
        for span in spans
        if span.entity in wanted
    ]


class SecretRecognizer(LocalRecognizer):
    """API keys, tokens, private keys, JWTs and connection-string passwords."""

    def __init__(self) -> None:
        super().__init__(supported_entities=sorted(SECRET_ENTITIES), supported_language="en")

    def load(self) -> None:
        """Nothing to load: the rules are compiled at import."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        """Run every secret rule over ``text``."""
        return _results(self, find_secrets(text), entities)


class NumberRecognizer(LocalRecognizer):
    """Phone numbers and payment card numbers, decided by shape and nearby words."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["PHONE_NUMBER", "CREDIT_CARD"], supported_language="en")

    def load(self) -> None:
        """Nothing to load."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        """Find phones and cards that the caller asked for."""
        spans: list[Span] = []
        if "PHONE_NUMBER" in entities:
            spans += find_phones(text)
        if "CREDIT_CARD" in entities:
            spans += find_cards(text)
        return _results(self, spans, entities)


class PersonRecognizer(LocalRecognizer):
    """PERSON from spaCy's NER, cleaned (no digits, no street names) and completed by name cues."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["PERSON"], supported_language="en")

    def load(self) -> None:
        """Nothing to load: the spaCy pipeline runs in the NLP engine."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        """Find names in ``text`` using the spaCy doc the NLP engine produced."""
        if nlp_artifacts is None or nlp_artifacts.tokens is None:
            return []
        return _results(self, find_persons(text, nlp_artifacts.tokens, nlp_artifacts.entities), entities)


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's email recognizer, validating the domain against the bundled public-suffix list."""

    def __init__(self, extractor: Any) -> None:
        super().__init__()
        self._extractor = extractor

    def validate_result(self, pattern_text: str) -> bool:
        """The domain must end in a known public suffix (offline snapshot)."""
        return bool(self._extractor(pattern_text).fqdn != "")


_VERSION_BEFORE = re.compile(
    r"(?:\b(?:v|ver|version|release|build|rev|revision)\s*[:#]?\s*|[=<>~!^@]=?\s*|\bv)$", re.IGNORECASE
)


_VERSION_AFTER = re.compile(
    r"^(?:-(?:alpha|beta|rc|dev|pre|post|snapshot|final)|\+[0-9A-Za-z])", re.IGNORECASE
)


def _identifies_no_host(value: str) -> bool:
    try:
        ip = ipaddress.ip_address(value.split("/", 1)[0].split("%", 1)[0])
    except ValueError:
        return False
    broadcast = ip.version == 4 and int(ip) == 0xFFFFFFFF
    return ip.is_loopback or ip.is_unspecified or ip.is_multicast or broadcast


class VersionAwareIpRecognizer(IpRecognizer):
    """Presidio's IPv4/IPv6 recognizer, skipping version strings and non-identifying addresses."""

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        """Drop matches right after ``v``, ``version``, ``==``, ``@`` and the like."""
        results: list[RecognizerResult] = super().analyze(text, entities, nlp_artifacts, regex_flags)
        return [
            r
            for r in results
            if not _VERSION_BEFORE.search(text[max(0, r.start - 12) : r.start])
            and not _VERSION_AFTER.match(text[r.end : r.end + 10])
            and not _identifies_no_host(text[r.start : r.end])
        ]
