"""A small GitHub REST client (httpx): the token in one header, bounded retries, GitHub's own messages.

- The token travels only in the ``Authorization`` header of requests to the configured API base URL
  (``https://api.github.com`` or a GitHub Enterprise ``https://HOST/api/v3``). It is never logged, never
  part of an error message (errors carry the method, the path, the status and GitHub's ``message``).
- 5xx answers, transport errors, 429 and secondary rate limits (403 with ``Retry-After`` or
  ``x-ratelimit-remaining: 0``) are retried at most ``max_retries`` times, waiting what ``Retry-After``
  (or ``x-ratelimit-reset``) says; a wait longer than ``max_wait_s`` is not slept through but reported.
- 401/403/404/422 fail at once with a message saying what to check.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from maestro.tools.prs.errors import GitHubError

__all__ = ["GitHubClient"]

log = logging.getLogger(__name__)

_HINTS = {
    401: "GitHub rejected the token: check the token variable (default MAESTRO_GITHUB_TOKEN)",
    403: "the token may not do this: it needs contents, pull-requests and issues write access",
    404: "not found, or the token cannot see it: check the repository name and the token's access",
    422: "GitHub refused the request as invalid",
}


class GitHubClient:
    """``request(method, path, json=..., params=...) -> decoded JSON`` against one GitHub API."""

    def __init__(
        self,
        *,
        token: str,
        api_url: str = "https://api.github.com",
        transport: httpx.BaseTransport | None = None,
        max_retries: int = 3,
        max_wait_s: float = 60.0,
        timeout_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = httpx.Client(
            base_url=api_url.rstrip("/"),
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": "maestro-prs",
            },
            transport=transport,
            timeout=timeout_s,
            follow_redirects=False,
        )
        self._max_retries = max_retries
        self._max_wait_s = max_wait_s
        self._sleep = sleep
        self._clock = clock

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one request (retrying what is retryable); the decoded JSON body, or None for 204."""
        attempt = 0
        while True:
            try:
                response = self._client.request(method, path, json=json, params=params)
            except httpx.TransportError as exc:
                if attempt >= self._max_retries:
                    raise GitHubError(
                        f"GitHub {method} {path}: unreachable after {attempt + 1} attempt(s) "
                        f"({type(exc).__name__})",
                        method=method,
                        path=path,
                    ) from None
                self._wait(2.0**attempt, method, path, None)
                attempt += 1
                continue
            log.debug("GitHub %s %s -> %s", method, path, response.status_code)
            if response.is_success:
                return response.json() if response.content else None
            wait = _retry_after(response, self._clock())
            if wait is None or attempt >= self._max_retries:
                raise _error(method, path, response, attempts=attempt + 1)
            self._wait(wait if wait > 0 else 2.0**attempt, method, path, response)
            attempt += 1

    def _wait(self, seconds: float, method: str, path: str, response: httpx.Response | None) -> None:
        if seconds > self._max_wait_s:
            status = response.status_code if response is not None else None
            raise GitHubError(
                f"GitHub {method} {path}: rate limited, retry after {seconds:.0f}s (more than the "
                f"{self._max_wait_s:.0f}s this client waits): try again later",
                method=method,
                path=path,
                status=status,
                retry_after=round(seconds),
            )
        self._sleep(seconds)


def _retry_after(response: httpx.Response, now: float) -> float | None:
    """Seconds to wait before retrying, 0 for "back off exponentially", None if not retryable."""
    status = response.status_code
    header = response.headers.get("retry-after")
    limited = status == 429 or (
        status == 403
        and (
            header is not None
            or response.headers.get("x-ratelimit-remaining") == "0"
            or "rate limit" in _message(response).lower()
        )
    )
    if not (limited or status >= 500):
        return None
    if header is not None and header.strip().isdigit():
        return float(header.strip())
    reset = response.headers.get("x-ratelimit-reset")
    if limited and reset is not None and reset.isdigit():
        return max(float(reset) - now, 1.0)
    return 60.0 if limited else 0.0


def _message(response: httpx.Response) -> str:
    """GitHub's ``message`` plus each validation error's message (never request headers)."""
    try:
        doc = response.json()
    except ValueError:
        return response.reason_phrase or ""
    if not isinstance(doc, dict):
        return ""
    parts = [str(doc.get("message", ""))]
    for err in doc.get("errors") or ():
        if isinstance(err, dict):
            parts.append(str(err.get("message") or err.get("code") or ""))
        else:
            parts.append(str(err))
    return "; ".join(p for p in parts if p)[:1000]


def _error(method: str, path: str, response: httpx.Response, *, attempts: int) -> GitHubError:
    status = response.status_code
    hint = _HINTS.get(status, "GitHub failed" if status >= 500 else "GitHub refused the request")
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    return GitHubError(
        f"GitHub {method} {path} -> {status}{tries}: {_message(response) or response.reason_phrase} ({hint})",
        method=method,
        path=path,
        status=status,
        github_message=_message(response),
    )
