"""Errors the sandbox raises on purpose."""

from __future__ import annotations

from typing import ClassVar

from maestro.core.errors import MaestroError

__all__ = ["SandboxUnavailable"]


class SandboxUnavailable(MaestroError):
    """No isolation mode works on this machine, so untrusted code is not run at all."""

    code: ClassVar[str] = "sandbox_unavailable"
    exit_code: ClassVar[int] = 1
