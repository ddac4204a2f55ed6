"""Open a repository for a run: a cached bare clone per source, and a fresh worktree per run.

Layout under ``root`` (``<data_dir>/workspaces``)::

    repos/<name>-<hash>.git      bare clone of the source, refreshed with ``git fetch`` on every open
    repos/<name>-<hash>.lock     serialises clone/fetch/worktree changes of that clone across processes
    worktrees/<workcell>/<dir>   one worktree per run, on branch ``maestro/<workcell>/<slug>``
    runs/<workcell>/<run>.json   the run record that makes ``open(..., run=..., reuse=True)`` idempotent

Local paths go through a clone too (cheap: objects are hard-linked), never ``git worktree add`` in the
user's own repository: a worktree's ``.git`` points into the repository it was added from, so sandboxed
code could otherwise read its config (tokens) or plant hooks that run on the user's next commit.

The clone's ``origin`` is stored without credentials and with credential helpers disabled; the full
URL is passed only to the fetch that needs it. Remote branches land in ``refs/remotes/origin/*``, so a
fetch never overwrites a run's branch (``refs/heads/maestro/...``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import secrets
from collections.abc import Iterator
from pathlib import Path

from maestro.core.errors import InvalidRequest
from maestro.tools.workspace.errors import GitFailed, RepositoryNotFound, RepositoryUnreachable, UnknownRef
from maestro.tools.workspace.git import DEFAULT_TIMEOUT, run_git
from maestro.tools.workspace.naming import branch_name, run_key, sanitize_slug
from maestro.tools.workspace.urls import is_url, redact, strip_credentials
from maestro.tools.workspace.worktree import DEFAULT_AUTHOR, Worktree

__all__ = ["Workspace", "workspace_root"]

_MAX_ATTEMPTS = 100


def workspace_root(data_dir: Path) -> Path:
    """Where workspaces live for a data dir (``Settings.data_dir``)."""
    return (data_dir / "workspaces").resolve()


class Workspace:
    """Entry point: ``Workspace.open(source, root=..., workcell=..., slug=...) -> Worktree``."""

    @classmethod
    def open(
        cls,
        source: str | Path,
        *,
        root: Path,
        workcell: str,
        slug: str,
        base: str | None = None,
        run: str | None = None,
        reuse: bool = False,
        author: str = DEFAULT_AUTHOR,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Worktree:
        """A new worktree of ``source`` (local path or URL) on a new branch ``maestro/<workcell>/<slug>``.

        ``base`` (branch, tag or commit; default the source's default branch) is what the branch starts
        from. With ``run``, the worktree belongs to that run id: opening again with ``reuse=True`` returns
        the same worktree (the runtime replays nodes); without ``reuse`` a second open is refused.
        Raises ``RepositoryNotFound``, ``RepositoryUnreachable``, ``UnknownRef`` or ``GitFailed``.
        """
        root = root.resolve()  # git runs in the bare repository: a relative worktree path would land there
        cell = sanitize_slug(workcell, fallback="workcell")
        fetch_url, remote_url = _resolve_source(source, timeout)
        record = root / "runs" / cell / f"{run_key(run)}.json" if run is not None else None
        repo = root / "repos" / _cache_name(remote_url)
        with locked(repo.with_suffix(".lock")):
            if record is not None and record.exists():
                resumed = _resume(record, run, workcell, reuse, timeout)
                if resumed is not None:
                    return resumed
            _refresh(repo, fetch_url, remote_url, timeout)
            base_ref, base_sha = _resolve_base(repo, base, remote_url)
            branch = _free_branch(repo, cell, sanitize_slug(slug))
            where = root / "worktrees" / cell / (run_key(run) if run is not None else _fresh_dir(branch))
            where.parent.mkdir(parents=True, exist_ok=True)
            run_git(["worktree", "add", "-q", "-b", branch, str(where), base_sha], cwd=repo, timeout=timeout)
            worktree = Worktree(
                where,
                branch,
                base_ref,
                base_sha,
                repo,
                remote_url,
                run,
                record,
                author=author,
                timeout=timeout,
            )
            worktree.save_record()
            return worktree


def _resolve_source(source: str | Path, timeout: float) -> tuple[str, str]:
    """``(url to fetch from, url to store and show)``; local paths are checked to be repositories."""
    text = str(source)
    if isinstance(source, str) and is_url(source):
        return text, strip_credentials(text)
    path = Path(text).expanduser()
    if not path.is_dir():
        raise RepositoryNotFound(
            f"{path} does not exist or is not a directory: give a git repository or a URL"
        )
    probe = run_git(["rev-parse", "--git-dir"], cwd=path, timeout=timeout, check=False)
    if probe.returncode != 0:
        raise RepositoryNotFound(f"{path} is not a git repository (run `git init` there, or give its URL)")
    resolved = str(path.resolve())
    return resolved, resolved


def _cache_name(remote_url: str) -> str:
    tail = remote_url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    digest = hashlib.sha256(remote_url.encode()).hexdigest()[:12]
    return f"{sanitize_slug(tail, fallback='repo')[:32]}-{digest}.git"


@contextlib.contextmanager
def locked(lock: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock`` (created if missing) for the block: one process at a time."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _refresh(repo: Path, fetch_url: str, remote_url: str, timeout: float) -> None:
    """Create the bare clone if needed, then fetch branches and tags and record the default branch."""
    if not (repo / "HEAD").exists():
        repo.mkdir(parents=True, exist_ok=True)
        run_git(["init", "-q", "--bare", str(repo)], timeout=timeout)
        for key, value in (
            ("remote.origin.url", remote_url),
            ("remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*"),
            ("credential.helper", ""),
            ("core.hooksPath", "/dev/null"),
        ):
            run_git(["config", key, value], cwd=repo, timeout=timeout)
    refspecs = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]
    try:
        run_git(["fetch", "-q", "--prune", fetch_url, *refspecs], cwd=repo, timeout=timeout)
        heads = run_git(["ls-remote", "--symref", fetch_url, "HEAD"], cwd=repo, timeout=timeout).stdout
    except GitFailed as exc:
        raise RepositoryUnreachable(
            f"could not fetch {redact(remote_url)}: {exc.details.get('stderr') or exc.message}; "
            "check the URL, the network and the credentials",
            url=redact(remote_url),
        ) from exc
    for line in heads.splitlines():
        if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
            default = line[len("ref: refs/heads/") : -len("\tHEAD")]
            run_git(["symbolic-ref", "refs/remotes/origin/HEAD", f"refs/remotes/origin/{default}"], cwd=repo)


def _resolve_base(repo: Path, base: str | None, remote_url: str) -> tuple[str, str]:
    """``(ref name, commit id)`` of the base: a remote branch, a tag, a commit, or one of our branches."""
    name = base or "HEAD"
    if name.startswith("-") or any(c.isspace() or c in "~^:?*[\\" for c in name):
        raise UnknownRef(f"{base!r} is not a valid ref name: give a branch, tag or commit id", ref=base)
    candidates = [f"refs/remotes/origin/{name}", f"refs/tags/{name}", name, f"refs/heads/{name}"]
    for candidate in candidates:
        done = run_git(["rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"], cwd=repo, check=False)
        if done.returncode == 0:
            if base is None:
                target = run_git(["symbolic-ref", "-q", "refs/remotes/origin/HEAD"], cwd=repo, check=False)
                shown = target.stdout.strip().removeprefix("refs/remotes/") or "origin/HEAD"
                return shown, done.stdout.strip()
            return _short(candidate), done.stdout.strip()
    branches = run_git(["for-each-ref", "--format=%(refname:lstrip=3)", "refs/remotes/origin/"], cwd=repo)
    known = ", ".join(b for b in branches.stdout.split() if b != "HEAD")[:300] or "none (empty repository?)"
    if base is None:
        raise UnknownRef(f"{redact(remote_url)} has no default branch; pass base=; branches: {known}")
    raise UnknownRef(
        f"unknown base ref {base!r} in {redact(remote_url)}: no branch, tag or commit of that name; "
        f"branches: {known}",
        ref=base,
    )


def _short(ref: str) -> str:
    for prefix in ("refs/remotes/", "refs/tags/", "refs/heads/"):
        ref = ref.removeprefix(prefix)
    return ref


def _free_branch(repo: Path, cell: str, slug: str) -> str:
    """The first of ``slug``, ``slug-2``, ... that is neither a local branch nor a remote one."""
    for attempt in range(1, _MAX_ATTEMPTS + 1):
        branch = branch_name(cell, slug, attempt)
        taken = False
        for ref in (f"refs/heads/{branch}", f"refs/remotes/origin/{branch}"):
            if run_git(["show-ref", "--verify", "--quiet", ref], cwd=repo, check=False).returncode == 0:
                taken = True
        if not taken:
            return branch
    raise InvalidRequest(f"{_MAX_ATTEMPTS} branches named maestro/{cell}/{slug}* exist: pick another slug")


def _fresh_dir(branch: str) -> str:
    return f"{branch.rsplit('/', 1)[-1]}-{secrets.token_hex(4)}"


def _resume(record: Path, run: str | None, workcell: str, reuse: bool, timeout: float) -> Worktree | None:
    """The run's existing worktree (re-attached if its directory is gone), or None if nothing is left."""
    worktree = Worktree.from_record(json.loads(record.read_text()))
    if not reuse:
        raise InvalidRequest(
            f"run {run!r} of workcell {workcell!r} already has a worktree at {worktree.path} on branch "
            f"{worktree.branch}: pass reuse=True to resume it, or remove() it first",
            run=run,
        )
    worktree.timeout = timeout
    if (worktree.path / ".git").exists():
        return worktree
    repo = worktree.repository
    run_git(["worktree", "prune"], cwd=repo, timeout=timeout)
    ref = f"refs/heads/{worktree.branch}"
    if run_git(["show-ref", "--verify", "--quiet", ref], cwd=repo, check=False).returncode != 0:
        record.unlink(missing_ok=True)
        return None
    run_git(["worktree", "add", "-q", str(worktree.path), worktree.branch], cwd=repo, timeout=timeout)
    return worktree
