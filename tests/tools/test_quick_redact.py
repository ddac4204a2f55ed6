"""The hot-path redactor: secrets, cards, phones, e-mails, IPs; nothing heavy imported."""

from __future__ import annotations

import subprocess
import sys

from maestro.tools.pii.quick import QuickRedactor


def test_redacts_contact_data_and_secrets_but_not_look_alikes() -> None:
    redactor = QuickRedactor(hash_key=b"k" * 32)
    text = (
        "mail bob.jones@example.com or call +1 415 555 0134 from 10.2.3.4; card 4111 1111 1111 1111; "
        "token ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8; version 1.2.3, sha 3f2a9c1d, id dec_01m80b3n"
    )
    out = redactor.redact(text)
    for value in ("bob.jones@example.com", "415 555 0134", "10.2.3.4", "4111 1111 1111 1111", "a1B2c3D4e5F6"):
        assert value not in out
    assert "version 1.2.3, sha 3f2a9c1d, id dec_01m80b3n" in out
    assert redactor.redact("bob.jones@example.com") == redactor.redact("bob.jones@example.com")
    assert QuickRedactor().redact("x bob@example.org").startswith("x <EMAIL_ADDRESS")


def test_importing_it_loads_no_nlp_stack() -> None:
    code = (
        "import sys; import maestro.tools.pii.quick\n"
        "print([m for m in ('presidio_analyzer', 'spacy', 'torch', 'transformers') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr
