"""Deployment health: which deployments are cooling down after failures (per process).

Retryable failures (429, 5xx, timeouts) count against a deployment; after ``allowed_fails`` in a row
it cools down for ``cooldown_s``. A 429 with Retry-After cools it down for at least that long at once.
Non-retryable errors (400, 401, ...) say nothing about the deployment's health and are not counted, so
a bad request never cools down a healthy deployment (RELIABILITY.md #23).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from maestro.core.errors import ModelCallFailed, ModelRateLimited


@dataclass
class _State:
    failures: int = 0
    cooldown_until: float = 0.0


class HealthTracker:
    """Thread-safe failure counts and cooldowns, keyed by deployment name."""

    def __init__(
        self, *, allowed_fails: int = 3, cooldown_s: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._allowed_fails = allowed_fails
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._states: dict[str, _State] = {}
        self._lock = threading.Lock()

    def record_success(self, model: str) -> None:
        with self._lock:
            self._states.pop(model, None)

    def record_failure(self, model: str, error: ModelCallFailed) -> None:
        """Count a failure; non-retryable errors are ignored."""
        if not error.retryable:
            return
        with self._lock:
            state = self._states.setdefault(model, _State())
            state.failures += 1
            now = self._clock()
            until = 0.0
            if isinstance(error, ModelRateLimited) and error.retry_after:
                until = now + error.retry_after
            if state.failures >= self._allowed_fails:
                until = max(until, now + self._cooldown_s)
            state.cooldown_until = max(state.cooldown_until, until)

    def cooling_down(self) -> dict[str, float]:
        """Deployments cooling down now, with the seconds left."""
        now = self._clock()
        with self._lock:
            return {m: s.cooldown_until - now for m, s in self._states.items() if s.cooldown_until > now}
