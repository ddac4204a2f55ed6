"""The ``git`` command line, run with a clean environment (no prompts, no user config, no hooks).

Pushes and merges go through the real ``git`` so that any remote git can reach works (file://, ssh,
https) and the remote sees ordinary pushes. Every call:

- runs with only ``PATH``, ``LANG`` and git's own variables: ``GIT_TERMINAL_PROMPT=0`` (a missing
  credential fails instead of waiting for a terminal), ``GIT_CONFIG_GLOBAL=/dev/null`` and
  ``GIT_CONFIG_NOSYSTEM=1`` (no user or system config, so no credential helpers or aliases), and
  ``core.hooksPath=/dev/null`` (no hook from the worktree runs);
- passes per-call configuration (the GitHub token's ``http.extraHeader``) through ``GIT_CONFIG_COUNT``
  environment variables: never on the command line (visible in ``ps``), never written to .git/config;
- is bounded by a timeout, and reports failures with git's stderr, any secret masked.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from maestro.tools.prs.errors import GitFailed

__all__ = ["Git"]

_SHA_LEN = 40


class Git:
    """Runs git commands; ``config`` entries are ephemeral ``-c``-style settings passed via the env."""

    def __init__(
        self,
        *,
        timeout_s: float = 120.0,
        config: Mapping[str, str] | None = None,
        secrets: Sequence[str] = (),
        author: tuple[str, str] = ("Maestro", "maestro@localhost"),
    ) -> None:
        self._timeout_s = timeout_s
        self._config = dict(config or {})
        self._secrets = tuple(s for s in secrets if s)
        self._author = author

    def env(self) -> dict[str, str]:
        """The whole environment a git process sees (tests assert on it)."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C",
            "LC_ALL": "C",
            "HOME": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_ASKPASS": "/bin/false",
            "SSH_ASKPASS": "/bin/false",
            "GIT_AUTHOR_NAME": self._author[0],
            "GIT_AUTHOR_EMAIL": self._author[1],
            "GIT_COMMITTER_NAME": self._author[0],
            "GIT_COMMITTER_EMAIL": self._author[1],
        }
        settings = {"core.hooksPath": os.devnull, "protocol.ext.allow": "never", **self._config}
        env["GIT_CONFIG_COUNT"] = str(len(settings))
        for i, (key, value) in enumerate(settings.items()):
            env[f"GIT_CONFIG_KEY_{i}"] = key
            env[f"GIT_CONFIG_VALUE_{i}"] = value
        return env

    def run(self, args: Sequence[str], *, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``git ARGS`` in ``cwd``; ``GitFailed`` (stderr included, secrets masked) unless ``check=False``."""
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=cwd,
                env=self.env(),
                capture_output=True,
                text=True,
                timeout=self._timeout_s,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise GitFailed(
                f"git {args[0]} did not finish within {self._timeout_s:.0f}s: is the remote reachable?",
                command=args[0],
            ) from exc
        if check and done.returncode != 0:
            raise GitFailed(
                f"git {args[0]} failed (exit {done.returncode}): {self.mask(done.stderr.strip())[-2000:]}",
                command=args[0],
            )
        return done

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def head(self, worktree: Path) -> str:
        """The commit ``worktree``'s HEAD points at."""
        return self.run(["rev-parse", "--verify", "HEAD^{commit}"], cwd=worktree).stdout.strip()

    def remote_head(self, url: str, branch: str, *, cwd: Path) -> str | None:
        """The commit ``refs/heads/<branch>`` has on the remote, or None if the branch does not exist."""
        out = self.run(["ls-remote", "--", url, f"refs/heads/{branch}"], cwd=cwd).stdout
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            if ref == f"refs/heads/{branch}" and len(sha) >= _SHA_LEN:
                return sha
        return None

    def push_branch(self, url: str, *, cwd: Path, sha: str, branch: str, expect: str | None) -> bool:
        """Point the remote's ``branch`` at ``sha`` if it is still at ``expect`` (None: absent).

        ``--force-with-lease`` pinned to ``expect`` is the only force ever used, and only on the PR's own
        branch: it lets a retried run move its branch to the new head, and fails when anyone else moved
        it. Returns False (nothing pushed) when the lease did not hold.
        """
        lease = f"--force-with-lease=refs/heads/{branch}:{expect or ''}"
        done = self.run(
            ["push", "--porcelain", "--no-verify", lease, "--", url, f"{sha}:refs/heads/{branch}"],
            cwd=cwd,
            check=False,
        )
        if done.returncode == 0:
            return True
        if "stale info" in done.stdout + done.stderr or "rejected" in done.stdout:
            return False
        raise GitFailed(
            f"git push to branch {branch!r} failed (exit {done.returncode}): "
            f"{self.mask((done.stderr or done.stdout).strip())[-2000:]}",
            command="push",
        )
