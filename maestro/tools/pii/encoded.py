"""Text hidden in base64: find tokens that decode to readable text, so the guard can scan what they hide.

A secret or an email address wrapped in base64 (``QUtJQUlPU0ZPRE5ON0VYQU1QTEU=``) passes every pattern.
:func:`base64_payloads` returns each base64-looking token (standard or URL-safe alphabet, 16+ characters)
whose decoded bytes are UTF-8 text that is at least 95% printable; random keys, git SHAs and digests
decode to binary noise and are skipped. The guard scans the decoded text and reports findings on the
*encoded* span of the original text.
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = ["base64_payloads"]

_TOKEN = re.compile(r"(?<![A-Za-z0-9+/=_\-])([A-Za-z0-9+/_\-]{16,}={0,2})(?![A-Za-z0-9+/=_\-])")
_MAX_TOKEN = 64 * 1024


def _decode(token: str) -> str | None:
    body = token.rstrip("=")
    if len(body) % 4 == 1 or len(body) > _MAX_TOKEN:
        return None
    urlsafe = "-" in body or "_" in body
    if urlsafe and ("+" in body or "/" in body):
        return None
    padded = body + "=" * (-len(body) % 4)
    try:
        raw = base64.urlsafe_b64decode(padded) if urlsafe else base64.b64decode(padded, validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    if len(text) < 6:
        return None
    readable = sum(1 for c in text if c.isprintable() or c in "\n\r\t")
    if readable < 0.95 * len(text) or not any(c.isalpha() for c in text):
        return None
    return text


def base64_payloads(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, decoded)`` for every base64 token in ``text`` that decodes to readable text."""
    payloads: list[tuple[int, int, str]] = []
    for match in _TOKEN.finditer(text):
        token = match.group(1)
        if token.isalpha() and (token.islower() or token.isupper()):
            continue  # a long word, not base64
        decoded = _decode(token)
        if decoded is not None:
            payloads.append((match.start(1), match.end(1), decoded))
    return payloads
