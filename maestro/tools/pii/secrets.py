"""Secret detectors: provider API keys, tokens, private keys, JWTs and passwords in connection strings.

Pure regular expressions plus validators (no spaCy, no Presidio), so the same rules serve the PII guard
(wrapped as a Presidio recognizer) and cheap checks such as the structured-output ``NoSecrets`` validator.

Each rule names an entity type, a pattern and the group holding the secret. Formats with a fixed prefix
(``AKIA``, ``ghp_``, ``sk-ant-``, ``xoxb-``, ``AIza``, ...) fire on the pattern alone. Formats without one
need more evidence: an AWS secret key needs AWS context nearby and enough entropy; a generic
``password=...`` / ``api_key: ...`` assignment needs a credential-like key name and, for tokens, entropy.
Placeholders (``${DB_PASSWORD}``, ``<password>``, ``****``, ``changeme``) are not secrets.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from maestro.tools.pii.entities import Span

__all__ = ["SECRET_RULES", "SecretRule", "entropy", "find_secrets"]


def entropy(value: str) -> float:
    """Shannon entropy of ``value`` in bits per character."""
    if not value:
        return 0.0
    counts = Counter(value)
    total = len(value)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


_PLACEHOLDER = re.compile(
    r"""^(?:
        \*+ | x+ | X+ | \.{3,} | -+ | _+          # masked
      | \$\{[^}]*\}? | \$[A-Za-z_][A-Za-z0-9_]*     # ${VAR} / $VAR
      | \{\{?[^}]*\}?\}? | <[^>]*>? | \[[^\]]*\]?    # {var}, {{var}}, <password>, [token]
      | %\(?[a-z_]*\)?s                             # %s / %(password)s
      | (?:your|my|the)[\w\-]* | changeme | change[_-]me | redacted | null | none | true | false
      | password | passwd | secret | token | example | placeholder | dummy
    )$""",
    re.IGNORECASE | re.VERBOSE,
)


def _not_placeholder(value: str, _text: str, _start: int) -> bool:
    return not _PLACEHOLDER.match(value.strip("'\""))


def _high_entropy(min_bits: float) -> Callable[[str, str, int], bool]:
    def check(value: str, text: str, start: int) -> bool:
        return _not_placeholder(value, text, start) and entropy(value) >= min_bits

    return check


_AWS_CONTEXT = re.compile(r"aws|secret[_ -]?access|secretaccesskey|\bAKIA|\bASIA", re.IGNORECASE)
_HEX = re.compile(r"^[0-9a-fA-F]+$")


def _aws_secret(value: str, text: str, start: int) -> bool:
    """40 base64 characters are also git SHAs or digests: demand AWS context, mixed classes, entropy."""
    if _HEX.match(value):
        return False
    classes = sum(bool(re.search(p, value)) for p in ("[a-z]", "[A-Z]", "[0-9]"))
    if classes < 2 or entropy(value) < 4.0:
        return False
    window = text[max(0, start - 160) : start + 200]
    return bool(_AWS_CONTEXT.search(window))


def _jwt(value: str, _text: str, _start: int) -> bool:
    """The first segment must decode to a JSON header with ``alg`` or ``typ``."""
    header = value.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        obj = json.loads(decoded)
    except (binascii.Error, ValueError):
        return False
    return isinstance(obj, dict) and ("alg" in obj or "typ" in obj)


def _connection_password(value: str, text: str, start: int) -> bool:
    """``host:8080@...`` has a port, not a password, where the user part is a host name."""
    return _not_placeholder(value, text, start) and not re.fullmatch(r"\d{1,5}", value)


_GENERIC_KEY_PASSWORD = re.compile(
    r"(?:pass(?:word|wd)?|pwd)[\"']?\s*(?::=|=>|[:=])\s*[\"']?$", re.IGNORECASE
)


def _generic_assignment(value: str, text: str, start: int) -> bool:
    """A password value only has to be a real value; a token/key value must also look random."""
    if not _not_placeholder(value, text, start):
        return False
    if _GENERIC_KEY_PASSWORD.search(text[max(0, start - 40) : start]):
        return len(value) >= 4
    if len(value) < 12 or not re.search(r"\d", value) or not re.search(r"[A-Za-z]", value):
        return False
    return entropy(value) >= 3.0


@dataclass(frozen=True, slots=True)
class SecretRule:
    """One secret format: ``pattern``'s ``group`` is the secret; ``check`` may veto a match."""

    entity: str
    pattern: re.Pattern[str]
    group: int = 0
    score: float = 0.95
    check: Callable[[str, str, int], bool] | None = None


def _rule(
    entity: str,
    pattern: str,
    *,
    group: int = 0,
    score: float = 0.95,
    check: Callable[[str, str, int], bool] | None = None,
    flags: int = 0,
) -> SecretRule:
    return SecretRule(entity, re.compile(pattern, flags), group, score, check)


_END = r"(?![A-Za-z0-9_\-])"  # a token ends where its alphabet ends
_START = r"(?<![A-Za-z0-9_\-])"

SECRET_RULES: tuple[SecretRule, ...] = (
    _rule(
        "AWS_ACCESS_KEY", r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[A-Z0-9]{16}\b"
    ),
    _rule(
        "AWS_SECRET_KEY",
        r"(?<![A-Za-z0-9/+])([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])",
        group=1,
        score=0.85,
        check=_aws_secret,
    ),
    _rule("GITHUB_TOKEN", _START + r"gh[pousr]_[A-Za-z0-9]{36,255}" + _END),
    _rule("GITHUB_TOKEN", _START + r"github_pat_[A-Za-z0-9_]{22,255}" + _END),
    _rule(
        "GITLAB_TOKEN", _START + r"gl(?:pat|dt|rt|ptt|ft|soat|cbt)-[A-Za-z0-9_\-]{20,}(?:\.[A-Za-z0-9.]+)?"
    ),
    _rule("ANTHROPIC_API_KEY", _START + r"sk-ant-[a-z]{2,8}\d{0,3}-[A-Za-z0-9_\-]{20,}" + _END),
    _rule(
        "OPENAI_API_KEY",
        _START + r"sk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_\-]{20,}" + _END,
        check=_high_entropy(3.0),
    ),
    _rule("OPENAI_API_KEY", _START + r"sk-[A-Za-z0-9]{32,}" + _END, check=_high_entropy(3.5)),
    _rule("SLACK_TOKEN", _START + r"xox[abposrce]-(?:[A-Za-z0-9]+-){1,}[A-Za-z0-9]{6,}" + _END),
    _rule("SLACK_TOKEN", _START + r"xapp-\d-[A-Z0-9]+-\d+-[A-Za-z0-9]{16,}" + _END),
    _rule(
        "SLACK_WEBHOOK",
        r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_\-]+/[A-Za-z0-9_\-/]+",
    ),
    _rule(
        "JWT",
        r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*" + _END,
        check=_jwt,
    ),
    _rule("GOOGLE_API_KEY", _START + r"AIza[0-9A-Za-z_\-]{35}" + _END),
    _rule("STRIPE_KEY", _START + r"(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}" + _END),
    _rule("STRIPE_KEY", _START + r"whsec_[A-Za-z0-9]{24,}" + _END),
    _rule("NPM_TOKEN", _START + r"npm_[A-Za-z0-9]{36}" + _END),
    _rule("PYPI_TOKEN", _START + r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}" + _END),
    _rule("HUGGINGFACE_TOKEN", _START + r"hf_[A-Za-z0-9]{34,}" + _END, check=_high_entropy(3.5)),
    _rule("SENDGRID_API_KEY", _START + r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}" + _END),
    _rule(
        "CONNECTION_STRING_PASSWORD",
        r"\b[A-Za-z][A-Za-z0-9+.\-]{1,30}://[^\s:/@?#\"']*:([^\s@/?#\"']+)@[^\s/@\"']+",
        group=1,
        score=0.9,
        check=_connection_password,
    ),
    _rule(
        "GENERIC_SECRET",
        r"(?:(?-i:(?<![a-z]))|(?-i:(?=[A-Z])))"
        r"(?:pass(?:word|wd)?|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key|auth[_\-]?token"
        r"|client[_\-]?secret|secret[_\-]?key|private[_\-]?key|_authToken|accountkey)"
        r"[\"']?\s*(?::=|=>|[:=])\s*[\"']?([^\s\"',;<>]{4,})",
        group=1,
        score=0.7,
        check=_generic_assignment,
        flags=re.IGNORECASE,
    ),
    _rule(
        "GENERIC_SECRET",
        r"\b[Bb]earer\s+([A-Za-z0-9_\-.=~+/]{16,})",
        group=1,
        score=0.7,
        check=_high_entropy(3.0),
    ),
)


_KEY_BEGIN = re.compile(r"-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----")
_KEY_END = re.compile(r"-----END[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----")
# the body of a key whose END line is missing (truncated paste): base64 lines and "Header: value" lines
_KEY_BODY = re.compile(r"(?:\s*+(?:[A-Za-z0-9+/=]{16,}+|[A-Za-z\-]{1,40}+:[^\n]*+))*+")
_MAX_KEY_CHARS = 64_000


def _private_keys(text: str) -> list[Span]:
    """PEM/OpenSSH/PGP private key blocks, BEGIN line to END line (or to the end of the body)."""
    if "PRIVATE KEY" not in text:
        return []
    ends = [m.end() for m in _KEY_END.finditer(text)]
    begins = list(_KEY_BEGIN.finditer(text))
    found: list[Span] = []
    for i, begin in enumerate(begins):
        limit = begins[i + 1].start() if i + 1 < len(begins) else len(text)
        j = bisect_left(ends, begin.end())
        if j < len(ends) and ends[j] <= limit and ends[j] - begin.start() <= _MAX_KEY_CHARS:
            end = ends[j]
        else:
            body = _KEY_BODY.match(text, begin.end(), min(limit, begin.end() + _MAX_KEY_CHARS))
            end = body.end() if body else begin.end()
        found.append(Span("PRIVATE_KEY", begin.start(), end, 1.0))
    return found


def find_secrets(text: str, rules: tuple[SecretRule, ...] = SECRET_RULES) -> list[Span]:
    """Every secret in ``text`` as raw spans (overlaps between rules are left to the caller)."""
    found: list[Span] = _private_keys(text)
    for rule in rules:
        for match in rule.pattern.finditer(text):
            value = match.group(rule.group)
            if not value:
                continue
            start, end = match.span(rule.group)
            if rule.check is not None and not rule.check(value, text, start):
                continue
            found.append(Span(rule.entity, start, end, rule.score))
    return found
