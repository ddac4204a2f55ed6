"""Entity type names, the default redaction set, and the raw span type the detectors share.

The default set (:data:`DEFAULT_ENTITIES`) is what Maestro redacts when the caller names nothing. It was
chosen from what ``maestro bench pii`` shows the guard detects (see docs in ``maestro/bench/pii.py``):

* Contact and financial identifiers with a checkable shape: ``EMAIL_ADDRESS``, ``PHONE_NUMBER``,
  ``CREDIT_CARD`` (Luhn), ``IBAN_CODE`` (checksum), ``US_SSN``, ``IP_ADDRESS``; plus the US identifiers
  Presidio recognises with context (``US_ITIN``, ``US_PASSPORT``, ``US_DRIVER_LICENSE``), ``UK_NHS``
  (checksum) and ``CRYPTO`` wallet addresses (checksum).
* ``PERSON``: kept in the default set although the small spaCy model misses names a larger model would
  find (the benchmark reports its recall honestly); dropping names would leave the most common PII
  unredacted.
* Every secret type (:data:`SECRET_ENTITIES`): high-precision formats, recall 1.0 on the fixture.

Not in the default set, but detectable on request: ``LOCATION`` (street addresses and places: the small
model finds a minority of them), ``DATE_TIME``, ``NRP``, ``ORGANIZATION``, ``URL``, ``MEDICAL_LICENSE``.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "ALL_ENTITIES",
    "DEFAULT_ENTITIES",
    "PII_ENTITIES",
    "SECRET_ENTITIES",
    "Span",
]

SECRET_ENTITIES: frozenset[str] = frozenset(
    {
        "AWS_ACCESS_KEY",
        "AWS_SECRET_KEY",
        "GITHUB_TOKEN",
        "GITLAB_TOKEN",
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "SLACK_TOKEN",
        "SLACK_WEBHOOK",
        "PRIVATE_KEY",
        "JWT",
        "CONNECTION_STRING_PASSWORD",
        "GOOGLE_API_KEY",
        "STRIPE_KEY",
        "NPM_TOKEN",
        "PYPI_TOKEN",
        "HUGGINGFACE_TOKEN",
        "SENDGRID_API_KEY",
        "GENERIC_SECRET",
    }
)

DEFAULT_PII: frozenset[str] = frozenset(
    {
        "PERSON",
        "EMAIL_ADDRESS",
        "PHONE_NUMBER",
        "CREDIT_CARD",
        "US_SSN",
        "IBAN_CODE",
        "IP_ADDRESS",
        "US_ITIN",
        "US_PASSPORT",
        "US_DRIVER_LICENSE",
        "UK_NHS",
        "CRYPTO",
    }
)

OPTIONAL_PII: frozenset[str] = frozenset(
    {"LOCATION", "DATE_TIME", "NRP", "ORGANIZATION", "URL", "MEDICAL_LICENSE"}
)

PII_ENTITIES: frozenset[str] = DEFAULT_PII | OPTIONAL_PII
DEFAULT_ENTITIES: frozenset[str] = DEFAULT_PII | SECRET_ENTITIES
ALL_ENTITIES: frozenset[str] = PII_ENTITIES | SECRET_ENTITIES


class Span(NamedTuple):
    """A raw detection: entity type, ``[start, end)`` offsets into the scanned text, and a score."""

    entity: str
    start: int
    end: int
    score: float
