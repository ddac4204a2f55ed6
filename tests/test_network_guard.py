"""The suite's network guard really blocks non-loopback connections ("no telemetry" tests rely on it)."""

from __future__ import annotations

import socket

import pytest


def test_non_loopback_connect_is_blocked() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
        pytest.raises(ConnectionRefusedError, match="blocked"),
    ):
        sock.connect(("93.184.216.34", 443))


def test_loopback_is_allowed() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
            client.connect(server.getsockname())
