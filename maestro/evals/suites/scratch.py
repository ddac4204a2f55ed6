"""The scratch repository the testgen and docs evals run on, made from a packaged archive.

``scratch_repo`` unpacks ``maestro/evals/repos/<name>.tar.gz`` once into
``<data_dir>/evals/repos/<name>-<tar stream hash>/`` and commits it (a fixed author and date, so the commit
id is the same everywhere) into a local bare repository, ``origin.git``, tagged ``eval-base``: the
remote the workcells clone and open their pull requests on. Nothing there is anyone's real repository.
A new archive gets a new directory; a half-made one (an interrupted first use) is made again.

``discard_run`` removes what one eval run left: its worktree, its local branch and the branch its PR
pushed. Without it the branches ``maestro/<workcell>/<slug>``, ``<slug>-2``, ... pile up on the scratch
remote week after week until the workspace refuses to pick another name. The PR record stays in the
state DB (bots cannot close PRs), its branch gone.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import re
import shutil
import tarfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

from maestro.core.errors import ConfigurationError, MaestroError
from maestro.tools.workspace import Worktree, sanitize_slug
from maestro.tools.workspace.git import run_git
from maestro.tools.workspace.naming import run_key
from maestro.tools.workspace.workspace import locked

__all__ = ["BASE_TAG", "ScratchRepo", "discard_run", "eval_workspaces", "scratch_repo"]

logger = logging.getLogger(__name__)

BASE_TAG = "eval-base"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_AUTHOR = {
    "GIT_AUTHOR_NAME": "Maestro eval",
    "GIT_AUTHOR_EMAIL": "eval@maestro.invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00+0000",
    "GIT_COMMITTER_NAME": "Maestro eval",
    "GIT_COMMITTER_EMAIL": "eval@maestro.invalid",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00+0000",
}


@dataclass(frozen=True, slots=True)
class ScratchRepo:
    """``remote``: the bare repository (resolved path, as the workspace records it); ``base``: the
    commit every run starts from; ``workspaces``: the evals' own workspace root (clones, worktrees);
    ``sha256``: the archive's uncompressed tar stream (what an item's ``repo_sha256`` pins)."""

    name: str
    remote: Path
    base: str
    workspaces: Path
    sha256: str


def scratch_repo(data_dir: Path, name: str = "shelfkit", *, timeout: float = 120.0) -> ScratchRepo:
    """The scratch repository of the packaged archive ``name`` under ``data_dir`` (made on first use;
    safe to call from several processes at once)."""
    if not _NAME.fullmatch(name):
        raise ConfigurationError(
            f"an eval item's repo must name a packaged archive (e.g. 'shelfkit'), not {name!r}"
        )
    archive = resources.files("maestro.evals").joinpath("repos", f"{name}.tar.gz")
    if not archive.is_file():
        raise ConfigurationError(f"no packaged eval repository {name}.tar.gz in maestro/evals/repos")
    data = gzip.decompress(archive.read_bytes())
    digest = hashlib.sha256(data).hexdigest()
    home = data_dir / "evals" / "repos" / f"{name}-{digest[:12]}"
    remote = home / "origin.git"
    with locked(home.with_suffix(".lock")):
        base = _base(remote, timeout)
        if base is None:
            shutil.rmtree(remote, ignore_errors=True)
            _make(home, name, data, timeout)
            base = _base(remote, timeout)
        if base is None:
            raise ConfigurationError(f"could not make the eval repository {remote}: it has no {BASE_TAG} tag")
    return ScratchRepo(name, remote.resolve(), base, eval_workspaces(data_dir), digest)


def eval_workspaces(data_dir: Path) -> Path:
    """The workspace root of the eval runs (kept apart from the deployment's ``<data_dir>/workspaces``)."""
    return data_dir / "evals" / "workspaces"


def discard_run(scratch: ScratchRepo, *, workcell: str, run_id: str, branch: str | None) -> None:
    """Remove the run's worktree and local branch and delete ``branch`` on the scratch remote."""
    record = (
        scratch.workspaces / "runs" / sanitize_slug(workcell, fallback="workcell") / f"{run_key(run_id)}.json"
    )
    try:
        if record.is_file():
            Worktree.from_record(json.loads(record.read_text())).remove(delete_branch=True)
        if branch:
            run_git(["branch", "-D", "--", branch], cwd=scratch.remote, check=False)
    except (OSError, ValueError, MaestroError) as exc:  # the score stands; the next run picks another name
        logger.warning("could not clean up eval run %s on %s: %s", run_id, scratch.remote, exc)


def _base(remote: Path, timeout: float) -> str | None:
    if not (remote / "HEAD").is_file():
        return None
    found = run_git(
        ["rev-parse", "--verify", "--quiet", f"refs/tags/{BASE_TAG}^{{commit}}"],
        cwd=remote,
        timeout=timeout,
        check=False,
    )
    if found.returncode != 0:
        return None
    return found.stdout.strip() or None


def _make(home: Path, name: str, data: bytes, timeout: float) -> None:
    """Unpack the archive into a work tree, commit it on ``main``, tag it and clone it bare."""
    source = home / "source"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    try:
        _unpack(data, source)
        run_git(["init", "-q", "-b", "main", "."], cwd=source, timeout=timeout)
        run_git(["add", "-A"], cwd=source, timeout=timeout)
        message = f"{name}: the eval base (maestro/evals/repos)"
        run_git(["commit", "-q", "--no-verify", "-m", message], cwd=source, timeout=timeout, env=_AUTHOR)
        run_git(["tag", BASE_TAG], cwd=source, timeout=timeout)
        run_git(["clone", "-q", "--bare", str(source), str(home / "origin.git")], cwd=home, timeout=timeout)
    finally:
        shutil.rmtree(source, ignore_errors=True)


def _unpack(data: bytes, into: Path) -> None:
    """The archive's regular files under ``into``; anything else (links, devices, paths leaving
    ``into``) refuses the archive."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar.getmembers():
            parts = PurePosixPath(member.name).parts
            if member.isdir():
                continue
            if not member.isfile() or not parts or parts[0] == "/" or ".." in parts:
                raise ConfigurationError(
                    f"the eval repository archive holds an unsafe entry: {member.name!r}"
                )
            handle = tar.extractfile(member)
            if handle is None:
                raise ConfigurationError(f"the eval repository archive cannot read {member.name!r}")
            target = into.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(handle.read())
