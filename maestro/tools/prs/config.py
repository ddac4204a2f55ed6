"""The PR port's configuration, read from ``Settings`` without requiring its fields to exist yet.

The lead adds the fields below to ``maestro.core.settings.Settings`` (names are the env variables with
the ``MAESTRO_`` prefix); until then every one has its default. ``from_settings`` is the only place
that reads them, so the backends take explicit values and tests build a ``PRConfig`` directly.

Settings (env ``MAESTRO_<NAME>``) -> default:
``pr_backend`` -> ``git`` (or ``github``); ``pr_repos_allowed`` -> ``{}`` (JSON: tenant -> repositories);
``pr_default_branch`` -> ``main``; ``pr_git_timeout_s`` -> ``120``; ``pr_author_name`` -> ``Maestro``;
``pr_author_email`` -> ``maestro@localhost``; ``github_api_url`` -> ``https://api.github.com``;
``github_push_url`` -> ``https://<web host of the API>/{repo}.git``; ``github_token_env`` ->
``MAESTRO_GITHUB_TOKEN`` (the name of the variable holding the token, never the token itself);
``github_max_retries`` -> ``3``; ``github_max_wait_s`` -> ``60``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from maestro.core.errors import ConfigurationError
from maestro.tools.prs.types import RepoRef

__all__ = ["PRConfig"]

BackendName = Literal["git", "github"]


@dataclass(frozen=True, slots=True)
class PRConfig:
    """Which backend, which repositories each tenant may target, and how to reach GitHub."""

    backend: BackendName = "git"
    repos_allowed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    default_branch: str = "main"
    git_timeout_s: float = 120.0
    author_name: str = "Maestro"
    author_email: str = "maestro@localhost"
    github_api_url: str = "https://api.github.com"
    github_push_url: str | None = None
    github_token_env: str = "MAESTRO_GITHUB_TOKEN"
    github_max_retries: int = 3
    github_max_wait_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: Any) -> PRConfig:
        """The configuration from ``settings`` (fields the Settings class lacks keep their defaults)."""
        defaults = cls()
        backend = str(getattr(settings, "pr_backend", defaults.backend))
        if backend not in ("git", "github"):
            raise ConfigurationError(f"MAESTRO_PR_BACKEND={backend!r}: use 'git' or 'github'")
        raw = getattr(settings, "pr_repos_allowed", None) or {}
        if not isinstance(raw, Mapping):
            raise ConfigurationError(
                "MAESTRO_PR_REPOS_ALLOWED must be a JSON object: tenant -> [repositories]"
            )
        return cls(
            backend=backend,  # type: ignore[arg-type]
            repos_allowed={str(t): _repos(t, repos) for t, repos in raw.items()},
            default_branch=str(getattr(settings, "pr_default_branch", defaults.default_branch)),
            git_timeout_s=float(getattr(settings, "pr_git_timeout_s", defaults.git_timeout_s)),
            author_name=str(getattr(settings, "pr_author_name", defaults.author_name)),
            author_email=str(getattr(settings, "pr_author_email", defaults.author_email)),
            github_api_url=str(getattr(settings, "github_api_url", defaults.github_api_url)),
            github_push_url=getattr(settings, "github_push_url", None),
            github_token_env=str(getattr(settings, "github_token_env", defaults.github_token_env)),
            github_max_retries=int(getattr(settings, "github_max_retries", defaults.github_max_retries)),
            github_max_wait_s=float(getattr(settings, "github_max_wait_s", defaults.github_max_wait_s)),
        )

    def repo(self, tenant: str, url: str, *, default_branch: str | None = None) -> RepoRef:
        """A reference to ``url`` for ``tenant``, carrying that tenant's allow-list from configuration."""
        return RepoRef(
            url=url,
            tenant=tenant,
            default_branch=default_branch or self.default_branch,
            allowed=tuple(self.repos_allowed.get(tenant, ())),
        )

    @property
    def resolved_push_url(self) -> str:
        """Where the github backend pushes: ``github_push_url`` or the web host of the API URL."""
        if self.github_push_url:
            return self.github_push_url
        parts = urlsplit(self.github_api_url)
        host = "github.com" if parts.netloc == "api.github.com" else parts.netloc
        return f"{parts.scheme or 'https'}://{host}/{{repo}}.git"


def _repos(tenant: object, repos: object) -> tuple[str, ...]:
    if isinstance(repos, str) or not isinstance(repos, Sequence):
        raise ConfigurationError(f"MAESTRO_PR_REPOS_ALLOWED[{tenant!r}] must be a list of repositories")
    return tuple(str(r) for r in repos)
