"""Errors of the pull-request backends (all ``MaestroError``s, so the CLI and API map them).

Refusals are ``PolicyDenied`` (exit 3, HTTP 403) from ``maestro.core``; unknown ids are ``NotFound``.
The two below are runtime failures of the remote side, and their messages never carry a token.
"""

from __future__ import annotations

from maestro.core.errors import MaestroError


class GitFailed(MaestroError):
    """A ``git`` command failed (push rejected, remote unreachable, merge conflict); stderr is included."""

    code = "git_failed"
    exit_code = 1
    http_status = 502


class GitHubError(MaestroError):
    """GitHub answered with an error after bounded retries; ``status`` and GitHub's message are included."""

    code = "github_error"
    exit_code = 1
    http_status = 502
