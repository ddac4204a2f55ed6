"""Errors the workspace raises: each names the repository or ref, and says what to do next.

Repository URLs in messages are always shown without credentials.
"""

from __future__ import annotations

from maestro.core.errors import InvalidRequest, MaestroError, NotFound

__all__ = ["GitFailed", "GitTimeout", "RepositoryNotFound", "RepositoryUnreachable", "UnknownRef"]


class GitFailed(MaestroError):
    """A git command failed; ``command`` and ``stderr`` are included (credentials redacted)."""

    code = "git_failed"
    exit_code = 1
    http_status = 500


class GitTimeout(GitFailed):
    """A git command ran past its timeout and was killed."""

    code = "git_timeout"
    http_status = 504


class RepositoryNotFound(NotFound):
    """The local path does not exist or is not a git repository."""

    code = "repository_not_found"


class RepositoryUnreachable(MaestroError):
    """Cloning or fetching the URL failed: wrong URL, network, or missing credentials."""

    code = "repository_unreachable"
    exit_code = 1
    http_status = 502


class UnknownRef(InvalidRequest):
    """The base ref names no branch, tag or commit of the repository."""

    code = "unknown_ref"
