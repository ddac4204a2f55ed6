"""Run git the same way every time: no prompts, no hooks, no signing, no influence from the host's
global or system config, a timeout, and errors that show the command without credentials.

The host's ``~/.gitconfig`` could carry credential helpers, ``url.insteadOf`` rewrites, hooks paths or
``commit.gpgSign``; any of these would make runs behave differently per machine, prompt, or leak. So the
environment is rebuilt from scratch (``PATH``, ``HOME`` for ssh keys, C locale) and git's own config
switches are set on the command line.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from maestro.core.errors import ConfigurationError
from maestro.tools.workspace.errors import GitFailed, GitTimeout
from maestro.tools.workspace.urls import redact

__all__ = ["DEFAULT_TIMEOUT", "git_env", "run_git"]

DEFAULT_TIMEOUT = 120.0

_SAFE_CONFIG = (
    "core.hooksPath=/dev/null",
    "credential.helper=",
    "commit.gpgSign=false",
    "tag.gpgSign=false",
    "core.fsmonitor=false",
    "protocol.ext.allow=never",
    "advice.detachedHead=false",
)


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment for git: nothing inherited but ``PATH`` and ``HOME``."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/nonexistent"),
        "LC_ALL": "C",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
    }
    env.update(extra or {})
    return env


def run_git(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``git <args>``; raise ``GitFailed``/``GitTimeout`` (stderr redacted) unless ``check=False``."""
    command = ["git"]
    for setting in _SAFE_CONFIG:
        command += ["-c", setting]
    command += list(args)
    shown = redact(" ".join(["git", *args]))
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            env=git_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise GitTimeout(f"`{shown}` did not finish within {timeout:g}s", command=shown) from exc
    except FileNotFoundError as exc:
        raise ConfigurationError("git is not installed or not on PATH: install git") from exc
    if check and done.returncode != 0:
        stderr = redact(done.stderr.strip())
        raise GitFailed(f"`{shown}` failed (exit {done.returncode}): {stderr}", command=shown, stderr=stderr)
    return done
