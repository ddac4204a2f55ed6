"""Reading what a sandboxed run printed: the tail of each stream, with secrets taken out.

Streams go to files (no pipes, no reader threads: a chatty process cannot block and start-up stays
cheap); only the last ``limit`` bytes are read back. Redaction removes the parent's secret values
literally and anything ``maestro.tools.pii`` recognises as a secret (provider keys, tokens, private
keys), so a canary never reaches logs, PR bodies or the ledger through a result (RELIABILITY #16).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import BinaryIO

__all__ = ["read_tail", "redact"]

REDACTED = "[REDACTED]"


def read_tail(stream: BinaryIO, limit: int) -> tuple[str, bool]:
    """The last ``limit`` bytes of ``stream`` decoded leniently, and whether earlier bytes were cut."""
    size = stream.seek(0, os.SEEK_END)
    start = max(0, size - limit)
    stream.seek(start)
    data = stream.read(limit)
    return data.decode("utf-8", errors="replace"), start > 0


def redact(text: str, known: Sequence[str]) -> str:
    """``text`` with every value in ``known`` and every detected secret replaced by ``[REDACTED]``."""
    for value in known:
        if value in text:
            text = text.replace(value, REDACTED)
    from maestro.tools.pii.secrets import find_secrets  # lazy: the pii package imports the router

    merged: list[list[int]] = []
    for span in sorted(find_secrets(text), key=lambda s: s.start):
        if merged and span.start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], span.end)
        else:
            merged.append([span.start, span.end])
    for start, end in reversed(merged):
        text = text[:start] + REDACTED + text[end:]
    return text
