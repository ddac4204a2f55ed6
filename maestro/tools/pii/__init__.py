"""PII and secret detection, redaction and pseudonymisation (RELIABILITY #8, #16, #31).

``PIIGuard`` scans text (Unicode-normalised, hidden base64 / tag-character payloads decoded) with one
Presidio analyzer - the small spaCy model, Presidio's predefined recognizers and Maestro's recognizers
for secrets, phones, cards and names - and redacts in four modes. ``Vault`` holds pseudonyms in memory
only. Importing this package loads nothing: the spaCy model loads on a guard's first scan.
"""

from maestro.tools.pii.entities import ALL_ENTITIES, DEFAULT_ENTITIES, PII_ENTITIES, SECRET_ENTITIES
from maestro.tools.pii.guard import Finding, PIIGuard, Redaction, RedactionMode
from maestro.tools.pii.normalize import NormalizedText, normalize
from maestro.tools.pii.prompt import PIIPromptGuard
from maestro.tools.pii.secrets import find_secrets
from maestro.tools.pii.vault import Vault

__all__ = [
    "ALL_ENTITIES",
    "DEFAULT_ENTITIES",
    "PII_ENTITIES",
    "SECRET_ENTITIES",
    "Finding",
    "NormalizedText",
    "PIIGuard",
    "PIIPromptGuard",
    "Redaction",
    "RedactionMode",
    "Vault",
    "find_secrets",
    "normalize",
]
