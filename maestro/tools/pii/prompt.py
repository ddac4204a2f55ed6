"""``PromptGuard`` for the router: protect the text of chat messages with a ``PIIGuard``.

One vault per protected prompt (one run's request), so placeholders are consistent across its messages
and can be restored in the answer for a caller cleared for PII.
"""

from __future__ import annotations

from typing import Any

from maestro.router.types import Message, ProtectedPrompt
from maestro.tools.pii.guard import PIIGuard
from maestro.tools.pii.vault import Vault


class PIIPromptGuard:
    """Implements ``maestro.router.types.PromptGuard``."""

    def __init__(self, guard: PIIGuard) -> None:
        self.guard = guard

    def protect(self, messages: list[Message], *, mode: str) -> ProtectedPrompt:
        vault = Vault() if mode == "pseudonymize" else None
        found: list[str] = []
        protected: list[Message] = []
        for message in messages:
            content = message.get("content")
            if isinstance(content, str):
                protected.append({**message, "content": self._protect(content, mode, vault, found)})
            elif isinstance(content, list):
                parts = [self._protect_part(part, mode, vault, found) for part in content]
                protected.append({**message, "content": parts})
            else:
                protected.append(dict(message))
        types = tuple(sorted(set(found)))
        restore = vault.restore if vault is not None else _unchanged
        return ProtectedPrompt(messages=protected if types else messages, entity_types=types, restore=restore)

    def _protect(self, text: str, mode: str, vault: Vault | None, found: list[str]) -> str:
        result = self.guard.redact(text, "pseudonymize" if mode == "pseudonymize" else "redact", vault=vault)
        found.extend(f.type for f in result.findings)
        return result.text

    def _protect_part(self, part: Any, mode: str, vault: Vault | None, found: list[str]) -> Any:
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            return {**part, "text": self._protect(part["text"], mode, vault, found)}
        return part


def _unchanged(text: str) -> str:
    return text
