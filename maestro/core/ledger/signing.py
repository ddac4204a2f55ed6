"""The ledger's Ed25519 key: where it comes from, its id, and its public form.

``MAESTRO_LEDGER_KEY`` holds the private key (PEM, or base64 of the 32 raw bytes). Without it, outside
production, a key is generated once in ``data_dir/keys/ledger_ed25519.pem`` (mode 0600). Creation is
race-safe across processes: each writer fills a private temporary file and hard-links it into place,
which succeeds for exactly one of them; everyone then reads the file that won.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from maestro.core.errors import ConfigurationError
from maestro.core.settings import Settings

KEY_FILE = Path("keys") / "ledger_ed25519.pem"
"""Where a development key lives, relative to ``data_dir``."""

_HOW_TO = (
    "generate one with `openssl genpkey -algorithm ed25519` and set MAESTRO_LEDGER_KEY to the PEM "
    "(or to the base64 of the 32-byte raw private key)"
)


def load_signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The ledger signing key for these settings.

    ``MAESTRO_LEDGER_KEY`` wins; otherwise, outside ``env="prod"``, the key file in ``data_dir`` (created
    on first use). Production without ``MAESTRO_LEDGER_KEY`` raises ``ConfigurationError``: a key that
    lives next to the data it vouches for proves little, and a lost key orphans every signed head.
    """
    if settings.ledger_key is not None:
        return parse_private_key(settings.ledger_key.get_secret_value())
    if settings.env == "prod":
        raise ConfigurationError(f"MAESTRO_LEDGER_KEY is not set and MAESTRO_ENV is prod: {_HOW_TO}")
    return load_or_create_key_file(settings.data_dir / KEY_FILE)


def parse_private_key(text: str) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM (PKCS#8) or from base64 of the 32-byte raw key."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                f"MAESTRO_LEDGER_KEY is not a readable unencrypted PEM key: {_HOW_TO}"
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigurationError(f"MAESTRO_LEDGER_KEY is a {type(key).__name__}, not Ed25519: {_HOW_TO}")
        return key
    try:
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigurationError(f"MAESTRO_LEDGER_KEY is neither PEM nor base64: {_HOW_TO}") from exc
    if len(raw) != 32:
        raise ConfigurationError(f"MAESTRO_LEDGER_KEY decodes to {len(raw)} bytes, not 32: {_HOW_TO}")
    return Ed25519PrivateKey.from_private_bytes(raw)


def load_or_create_key_file(path: Path) -> Ed25519PrivateKey:
    """Read the PEM key at ``path``, generating it first (mode 0600, race-safe) when it is missing."""
    if not path.exists():
        _create_key_file(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the ledger key {path}: {exc.strerror}; fix its permissions"
        ) from exc
    try:
        return parse_private_key(text)
    except ConfigurationError as exc:
        raise ConfigurationError(
            f"the ledger key file {path} is not an Ed25519 PEM key: restore it from a backup "
            "(deleting it orphans every head signed so far)"
        ) from exc


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temp, path)  # atomic, never overwrites: exactly one concurrent creator wins
        except FileExistsError:
            pass
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create the ledger key {path} ({exc.strerror}): set MAESTRO_LEDGER_KEY instead; "
                f"{_HOW_TO}"
            ) from exc
    finally:
        temp.unlink(missing_ok=True)


def key_id(public_key: Ed25519PublicKey) -> str:
    """The key's id: the first 16 hex digits of SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(public_raw(public_key)).hexdigest()[:16]


def public_raw(public_key: Ed25519PublicKey) -> bytes:
    """The raw 32-byte public key."""
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_from_b64(text: str) -> Ed25519PublicKey:
    """A public key from base64 of its 32 raw bytes; ``ValueError`` when malformed."""
    raw = base64.b64decode(text, validate=True)
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key has 32 bytes, not {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)
