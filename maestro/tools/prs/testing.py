"""Real git repositories for tests and demos: a local bare "remote" and a worktree cloned from it.

Not fakes: the git backend and the GitHub backend's push run against these exactly as against a real
remote (``file://`` URLs). Every git call here uses the same clean environment as the backends.
"""

from __future__ import annotations

from pathlib import Path

from maestro.tools.prs.gitcli import Git

__all__ = ["commit_file", "is_ancestor", "ref_sha", "scratch_remote"]

_GIT = Git(author=("Maestro Test", "test@maestro.invalid"))


def scratch_remote(root: Path, *, default_branch: str = "main") -> tuple[str, Path]:
    """A bare repository under ``root`` with one commit on ``default_branch``.

    Returns its ``file://`` URL and a worktree cloned from it (at ``root/work``).
    """
    bare = root / "remote.git"
    bare.mkdir(parents=True)
    _GIT.run(["init", "-q", "--bare", "-b", default_branch], cwd=bare)
    seed = root / "seed"
    seed.mkdir()
    _GIT.run(["init", "-q", "-b", default_branch], cwd=seed)
    commit_file(seed, "README.md", "hello\n")
    url = f"file://{bare}"
    _GIT.run(["push", "-q", url, f"HEAD:refs/heads/{default_branch}"], cwd=seed)
    _GIT.run(["clone", "-q", url, "work"], cwd=root)
    return url, root / "work"


def commit_file(work: Path, name: str, text: str) -> str:
    """Write ``name`` in ``work``, commit it, return the new HEAD."""
    (work / name).parent.mkdir(parents=True, exist_ok=True)
    (work / name).write_text(text)
    _GIT.run(["add", "--", name], cwd=work)
    _GIT.run(["commit", "-q", "-m", f"change {name}"], cwd=work)
    return _GIT.head(work)


def ref_sha(url: str, ref: str, *, cwd: Path) -> str | None:
    """The commit ``ref`` (e.g. ``refs/heads/main``) points at on the remote ``url``, or None."""
    out = _GIT.run(["ls-remote", "--", url, ref], cwd=cwd).stdout.strip()
    return out.split("\t")[0] if out else None


def is_ancestor(url: str, ancestor: str, ref: str, *, cwd: Path) -> bool:
    """True if ``ancestor`` is reachable from the remote's ``ref`` (fetched into ``cwd``)."""
    _GIT.run(["fetch", "-q", "--", url, f"+{ref}:refs/maestro-test/check"], cwd=cwd)
    done = _GIT.run(
        ["merge-base", "--is-ancestor", ancestor, "refs/maestro-test/check"], cwd=cwd, check=False
    )
    return done.returncode == 0
