"""Logs pass through the same redaction as prompts (RELIABILITY #31)."""

from __future__ import annotations

import io
import logging

from maestro.tools.pii.logredact import install_log_redaction
from maestro.tools.pii.quick import QuickRedactor


def test_log_lines_and_exception_text_are_redacted() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("maestro.test.redaction")
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        install_log_redaction(logger, QuickRedactor())
        install_log_redaction(logger)  # idempotent: one filter
        assert len(handler.filters) == 1
        logger.warning("user %s sent key %s", "carol@example.org", "sk-ant-api03-" + "x" * 40)
        try:
            raise ValueError("bad card 4111 1111 1111 1111")
        except ValueError:
            logger.exception("failed for dave@example.net")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert "carol@example.org" not in output and "sk-ant-api03" not in output
    assert "4111 1111 1111 1111" not in output and "dave@example.net" not in output
    assert "<EMAIL_ADDRESS>" in output and "ValueError" in output
