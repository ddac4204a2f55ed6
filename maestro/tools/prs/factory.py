"""Build the configured PR backend (``git`` or ``github``) from a ``PRConfig`` and the app's services."""

from __future__ import annotations

import os
from collections.abc import Mapping

import httpx
from sqlalchemy.engine import Engine

from maestro.core.authorize import Authorizer
from maestro.core.errors import ConfigurationError
from maestro.tools.prs.config import PRConfig
from maestro.tools.prs.git_backend import GitBackend
from maestro.tools.prs.gitcli import Git
from maestro.tools.prs.github_api import GitHubClient
from maestro.tools.prs.github_backend import GitHubBackend
from maestro.tools.prs.port import PRBackend
from maestro.tools.prs.safety import Recorder

__all__ = ["build_pr_backend"]


def build_pr_backend(
    config: PRConfig,
    *,
    engine: Engine,
    authorizer: Authorizer,
    record: Recorder,
    backend: str | None = None,
    environ: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> PRBackend:
    """The backend ``backend`` (default ``config.backend``).

    The GitHub token is read from ``environ[config.github_token_env]`` (default ``os.environ``) here and
    only here; a missing token is a ``ConfigurationError`` naming the variable, never its value.
    ``transport`` replaces httpx's network transport (tests replay recorded responses through it).
    """
    kind = backend or config.backend
    author = (config.author_name, config.author_email)
    if kind == "git":
        return GitBackend(engine, authorizer, record, git=Git(timeout_s=config.git_timeout_s, author=author))
    if kind != "github":
        raise ConfigurationError(f"unknown PR backend {kind!r}: use 'git' or 'github' (MAESTRO_PR_BACKEND)")
    env = os.environ if environ is None else environ
    token = env.get(config.github_token_env, "")
    if not token.strip():
        raise ConfigurationError(
            f"the github PR backend needs a token in ${config.github_token_env} "
            "(a fine-grained token with contents, pull requests and issues write access)"
        )
    client = GitHubClient(
        token=token,
        api_url=config.github_api_url,
        transport=transport,
        max_retries=config.github_max_retries,
        max_wait_s=config.github_max_wait_s,
    )
    return GitHubBackend(
        engine,
        authorizer,
        record,
        client=client,
        token=token,
        push_url=config.resolved_push_url,
        git_timeout_s=config.git_timeout_s,
        author=author,
    )
