"""The pseudonym vault: ``<PERSON_1>`` <-> ``Ada Lovelace`` for one run, in memory only.

Pseudonymisation replaces each distinct value with a numbered placeholder per entity type, the same
placeholder every time the value recurs, so a model can still reason about "who is who". The vault keeps
the mapping so that :meth:`Vault.restore` can put the originals back into the model's answer.

**The originals never leave process memory.** A vault cannot be pickled, copied or deep-copied (each
raises ``TypeError``), its ``repr`` shows only counts, and it has no method that exports the mapping.
Persist the redacted text and, if a run must survive a restart, re-run the pseudonymisation on the
original input instead of storing the vault. :meth:`restore` is for an *authorised* caller: the guard
does not check authority, the caller must (e.g. only the principal that sent the prompt sees the
restored answer).
"""

from __future__ import annotations

import re
import threading
from typing import Any, NoReturn, SupportsIndex

__all__ = ["Vault"]

_NO_COPY = "a PII Vault keeps originals in process memory only: it cannot be pickled or copied"
_PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*?)_(\d+)>|\b([A-Z][A-Z0-9_]*?)_(\d+)\b")


class Vault:
    """Consistent placeholders per (entity type, value) within a run; restores them on request."""

    __slots__ = ("_by_placeholder", "_by_value", "_counters", "_lock")

    def __init__(self) -> None:
        self._by_value: dict[tuple[str, str], str] = {}
        self._by_placeholder: dict[str, str] = {}
        self._counters: dict[str, int] = {}
        self._lock = threading.Lock()

    def placeholder(self, entity: str, value: str, *, key: str | None = None) -> str:
        """The placeholder for ``value`` of type ``entity``; ``key`` (default ``value``) decides identity.

        Pass a normalised ``key`` so that obfuscated and plain spellings of one value share a placeholder.
        """
        ident = (entity, value if key is None else key)
        with self._lock:
            token = self._by_value.get(ident)
            if token is None:
                number = self._counters.get(entity, 0) + 1
                self._counters[entity] = number
                token = f"{entity}_{number}"
                self._by_value[ident] = token
                self._by_placeholder[token] = value
            return f"<{token}>"

    def __len__(self) -> int:
        return len(self._by_placeholder)

    def __contains__(self, placeholder: object) -> bool:
        return isinstance(placeholder, str) and placeholder.strip("<>") in self._by_placeholder

    def restore(self, text: str) -> str:
        """Put the originals back: ``<PERSON_1>`` (and a bare ``PERSON_1`` a model may write) -> value.

        Placeholders this vault did not issue are left untouched.
        """
        if not self._by_placeholder:
            return text

        def substitute(match: re.Match[str]) -> str:
            entity = match.group(1) or match.group(3)
            number = match.group(2) or match.group(4)
            return self._by_placeholder.get(f"{entity}_{number}", match.group(0))

        with self._lock:
            return _PLACEHOLDER.sub(substitute, text)

    def clear(self) -> None:
        """Forget every mapping (the end of a run)."""
        with self._lock:
            self._by_value.clear()
            self._by_placeholder.clear()
            self._counters.clear()

    def __repr__(self) -> str:
        return f"Vault({len(self)} placeholders)"

    def __reduce__(self) -> NoReturn:
        raise TypeError(_NO_COPY)

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError(_NO_COPY)

    def __getstate__(self) -> NoReturn:
        raise TypeError(_NO_COPY)

    def __copy__(self) -> NoReturn:
        raise TypeError(_NO_COPY)

    def __deepcopy__(self, memo: dict[int, Any]) -> NoReturn:
        raise TypeError(_NO_COPY)
