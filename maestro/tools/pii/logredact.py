"""A logging filter that redacts PII and secrets from every record before any handler sees it.

Installed by the entry points (``maestro serve`` and the CLI) on the root logger's handlers, so logs of
every library pass through the same guard as prompts. It uses the regex redactor (``quick.py``): fast enough
for every log line, and it catches secrets, e-mail addresses, phone and card numbers, IP addresses.
"""

from __future__ import annotations

import logging

from maestro.tools.pii.quick import QuickRedactor


class RedactingFilter(logging.Filter):
    """Replaces a record's message with its redacted form (``<EMAIL_ADDRESS>``...)."""

    def __init__(self, redactor: QuickRedactor | None = None) -> None:
        super().__init__()
        self._redact = (redactor or QuickRedactor()).redact

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._redact(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            text = str(record.exc_info[1])
            if self._redact(text) != text:
                # exception text carries PII: keep the type and the redacted message, drop the traceback
                record.msg = f"{record.msg} ({type(record.exc_info[1]).__name__}: "
                record.msg += f"{self._redact(text)})"
                record.exc_info = None
                record.exc_text = None
        return True


def install_log_redaction(
    logger: logging.Logger | None = None, redactor: QuickRedactor | None = None
) -> RedactingFilter:
    """Attach one ``RedactingFilter`` to every handler of ``logger`` (root by default); idempotent."""
    target = logger or logging.getLogger()
    existing = next((f for h in target.handlers for f in h.filters if isinstance(f, RedactingFilter)), None)
    shared = existing or RedactingFilter(redactor)
    for handler in target.handlers:
        if shared not in handler.filters:
            handler.addFilter(shared)
    return shared
