"""Workspace: real git repositories in tmp — a local repository, a bare "remote" reached by file:// URL
and the same remote served over (dumb) HTTP with a token in the URL. Opening, branch naming and
uniqueness, reuse for the same run, credential stripping, commit + diff, cleanup, indexing."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from maestro.core.errors import InvalidRequest
from maestro.retrieval.embeddings import HashingEmbedder
from maestro.retrieval.ingest import Ingestor
from maestro.retrieval.stores.edge import QdrantEdgeStore
from maestro.tools.edits import apply_edits
from maestro.tools.workspace import (
    RepositoryNotFound,
    RepositoryUnreachable,
    UnknownRef,
    Workspace,
    index_repository,
    redact,
    repository_files,
    sanitize_slug,
    strip_credentials,
)
from maestro.tools.workspace.git import run_git

AUTHOR = {
    "GIT_AUTHOR_NAME": "Dev",
    "GIT_AUTHOR_EMAIL": "dev@example.com",
    "GIT_COMMITTER_NAME": "Dev",
    "GIT_COMMITTER_EMAIL": "dev@example.com",
}


def git(cwd: Path, *args: str) -> str:
    return run_git(args, cwd=cwd, env=AUTHOR).stdout.strip()


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A developer's repository: branch main, a tag, code, a vendored file, a binary and a big file."""
    repo = tmp_path / "origin"
    files = {
        "src/app.py": "def add(a, b):\n    return a + b\n",
        "README.md": "# Demo\n\nAdds numbers.\n",
        "tests/test_app.py": "from src.app import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
        "vendor/lib.js": "function x() {}\n",
        "big.txt": "x" * 200_000 + "\n",
    }
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    (repo / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    git(repo, "tag", "v1")
    (repo / "src/app.py").write_text(files["src/app.py"] + "\n\ndef sub(a, b):\n    return a - b\n")
    git(repo, "commit", "-q", "-am", "sub")
    return repo


@pytest.fixture
def remote(origin: Path, tmp_path: Path) -> Path:
    """A bare clone of ``origin``: the "server" side."""
    bare = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(origin), str(bare))
    return bare


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "var" / "workspaces"


@pytest.fixture
def http_remote(remote: Path) -> Iterator[str]:
    """``remote`` served over git's dumb HTTP protocol on loopback; yields the base URL."""
    git(remote, "update-server-info")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return None

    handler = functools.partial(Quiet, directory=str(remote.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{remote.name}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_open_local_repository(origin: Path, root: Path) -> None:
    wt = Workspace.open(origin, root=root, workcell="codegen", slug="Add a multiply() function!")
    assert wt.branch == "maestro/codegen/add-a-multiply-function"
    assert wt.base_ref == "origin/main" and wt.base_sha == git(origin, "rev-parse", "main")
    assert wt.path.is_relative_to(root) and git(wt.path, "rev-parse", "--abbrev-ref", "HEAD") == wt.branch
    assert "src/app.py" in wt.files() and wt.files("src/**/*.py") == ["src/app.py"]
    assert "def sub" in wt.read("src/app.py")
    # The developer's repository is untouched: no branch, no worktree registered in it.
    assert git(origin, "branch", "--list", "maestro/*") == ""
    assert len(git(origin, "worktree", "list", "--porcelain").split("\n\n")) == 1


def test_a_relative_root_works_from_any_directory(
    origin: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MAESTRO_DATA_DIR defaults to the relative ``var``: the worktree must land under it, not inside
    the bare repository git runs in."""
    root.parent.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(root.parent)
    wt = Workspace.open(origin, root=Path(root.name), workcell="codegen", slug="relative")
    assert wt.path.is_absolute() and wt.path.is_relative_to(root) and wt.path.is_dir()
    assert "src/app.py" in wt.files()


def test_open_file_url_with_base_tag(remote: Path, root: Path, origin: Path) -> None:
    wt = Workspace.open(f"file://{remote}", root=root, workcell="docs", slug="readme", base="v1")
    assert wt.base_ref == "v1" and wt.base_sha == git(origin, "rev-parse", "v1^{commit}")
    assert "def sub" not in wt.read("src/app.py")
    assert wt.remote_url == f"file://{remote}"


def test_clear_errors(tmp_path: Path, remote: Path, root: Path) -> None:
    with pytest.raises(RepositoryNotFound, match="does not exist"):
        Workspace.open(tmp_path / "nope", root=root, workcell="codegen", slug="x")
    (tmp_path / "plain").mkdir()
    with pytest.raises(RepositoryNotFound, match="is not a git repository"):
        Workspace.open(tmp_path / "plain", root=root, workcell="codegen", slug="x")
    with pytest.raises(RepositoryUnreachable, match="could not fetch file:///nonexistent/repo.git"):
        Workspace.open("file:///nonexistent/repo.git", root=root, workcell="codegen", slug="x")
    with pytest.raises(UnknownRef, match=r"unknown base ref 'develop' .* branches: main"):
        Workspace.open(f"file://{remote}", root=root, workcell="codegen", slug="x", base="develop")
    with pytest.raises(UnknownRef, match="not a valid ref name"):
        Workspace.open(f"file://{remote}", root=root, workcell="codegen", slug="x", base="--upload-pack=x")


def test_branch_names_are_unique(remote: Path, root: Path) -> None:
    url = f"file://{remote}"
    first = Workspace.open(url, root=root, workcell="codegen", slug="fix-bug")
    second = Workspace.open(url, root=root, workcell="codegen", slug="fix-bug")
    assert (first.branch, second.branch) == ("maestro/codegen/fix-bug", "maestro/codegen/fix-bug-2")
    assert first.path != second.path
    # A branch that exists on the remote (e.g. pushed by an earlier run) is not reused either.
    git(remote, "branch", "maestro/codegen/other", "main")
    taken = Workspace.open(url, root=root, workcell="codegen", slug="other")
    assert taken.branch == "maestro/codegen/other-2"
    long = sanitize_slug("A" * 80)
    assert len(long) == 48
    third = Workspace.open(url, root=root, workcell="codegen", slug="a" * 80)
    fourth = Workspace.open(url, root=root, workcell="codegen", slug="a" * 80)
    assert len(fourth.branch.rsplit("/", 1)[1]) == 48 and fourth.branch.endswith("-2")
    assert third.branch != fourth.branch


def test_reuse_for_the_same_run_is_idempotent(remote: Path, root: Path) -> None:
    url = f"file://{remote}"
    wt = Workspace.open(url, root=root, workcell="codegen", slug="feature", run="run-42")
    (wt.path / "notes.txt").write_text("work in progress\n")
    again = Workspace.open(url, root=root, workcell="codegen", slug="feature", run="run-42", reuse=True)
    assert (again.path, again.branch, again.base_sha) == (wt.path, wt.branch, wt.base_sha)
    assert (again.path / "notes.txt").read_text() == "work in progress\n"
    with pytest.raises(InvalidRequest, match="already has a worktree .* pass reuse=True"):
        Workspace.open(url, root=root, workcell="codegen", slug="feature", run="run-42")
    # The directory vanished (e.g. a cleaned tmp): reuse re-attaches the run's branch.
    wt.commit("wip")
    run_git(["worktree", "remove", "--force", str(wt.path)], cwd=wt.repository)
    back = Workspace.open(url, root=root, workcell="codegen", slug="feature", run="run-42", reuse=True)
    assert back.branch == wt.branch and (back.path / "notes.txt").exists()
    # A different run gets its own branch.
    other = Workspace.open(url, root=root, workcell="codegen", slug="feature", run="run-43", reuse=True)
    assert other.branch == "maestro/codegen/feature-2"


def test_credentials_never_reach_the_worktree(http_remote: str, root: Path) -> None:
    token = "ghp_CANARY0123456789"
    url = http_remote.replace("http://", f"http://x-access-token:{token}@")
    wt = Workspace.open(url, root=root, workcell="remediate", slug="bump")
    assert "def sub" in wt.read("src/app.py")
    assert wt.remote_url == http_remote
    config = run_git(["config", "--list", "--show-origin"], cwd=wt.path).stdout
    assert token not in config and f"remote.origin.url={http_remote}" in config
    assert "credential.helper=" in config
    for path in root.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path
    # A failure message does not echo the token either.
    with pytest.raises(RepositoryUnreachable) as caught:
        Workspace.open(url + "-missing", root=root, workcell="remediate", slug="bump")
    assert token not in str(caught.value) and "***@" not in caught.value.message.split(":", 1)[0]


def test_strip_and_redact() -> None:
    assert strip_credentials("https://user:tok@github.com/o/r.git") == "https://github.com/o/r.git"
    assert strip_credentials("https://tok@github.com:8443/o/r") == "https://github.com:8443/o/r"
    assert strip_credentials("ssh://git:pw@host/o/r") == "ssh://git@host/o/r"
    assert strip_credentials("git@github.com:o/r.git") == "git@github.com:o/r.git"
    assert redact("fatal: https://u:tok@h/r not found") == "fatal: https://***@h/r not found"


def test_edit_commit_diff_and_status(origin: Path, root: Path) -> None:
    wt = Workspace.open(origin, root=root, workcell="codegen", slug="mul")
    answer = (
        "src/app.py\n<<<<<<< SEARCH\ndef sub(a, b):\n    return a - b\n=======\n"
        "def sub(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n>>>>>>> REPLACE\n"
        "docs/usage.md\n<<<<<<< SEARCH\n=======\n# Usage\n>>>>>>> REPLACE\n"
    )
    apply_edits(wt, answer)
    states = {s.path: s.state for s in wt.status()}
    assert states == {"src/app.py": "modified", "docs/usage.md": "untracked"}
    diff = wt.diff()
    assert "+def mul(a, b):" in diff and "+++ b/docs/usage.md" in diff
    assert wt.status()[0].path in {"src/app.py", "docs/usage.md"}  # diff() left the index alone
    assert git(wt.path, "diff", "--cached", "--name-only") == ""
    # A failing pre-commit hook in the repository is never run.
    hooks = wt.repository / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "pre-commit").write_text("#!/bin/sh\nexit 1\n")
    (hooks / "pre-commit").chmod(0o755)
    sha = wt.commit("Add mul()")
    assert sha is not None and sha == wt.head() and wt.status() == []
    assert git(wt.path, "log", "-1", "--format=%an <%ae>|%s") == "Maestro Bot <bot@maestro.invalid>|Add mul()"
    assert wt.commit("nothing") is None
    assert "+def mul(a, b):" in wt.diff()  # still against the base after the commit
    custom = Workspace.open(origin, root=root, workcell="codegen", slug="mul", author="Ada <ada@example.com>")
    (custom.path / "x.txt").write_text("x\n")
    custom.commit("x")
    assert git(custom.path, "log", "-1", "--format=%an") == "Ada"
    with pytest.raises(InvalidRequest, match="not `Name <email>`"):
        custom.commit("y", author="nobody")


def test_read_is_confined_to_the_worktree(origin: Path, root: Path) -> None:
    wt = Workspace.open(origin, root=root, workcell="codegen", slug="read")
    (wt.path / "out").symlink_to(origin.parent)
    for bad in ("../origin/README.md", "/etc/passwd", ".git", "out/origin/README.md"):
        with pytest.raises(InvalidRequest, match="is not a file inside the worktree"):
            wt.read(bad)


def test_remove_leaves_no_worktree_registered(origin: Path, root: Path) -> None:
    wt = Workspace.open(origin, root=root, workcell="codegen", slug="gone", run="r1")
    (wt.path / "scratch.txt").write_text("x\n")
    assert wt.record is not None and wt.record.exists()
    wt.remove()
    assert not wt.path.exists() and not wt.record.exists()
    listing = git(wt.repository, "worktree", "list", "--porcelain")
    assert str(wt.path) not in listing and listing.count("worktree ") == 1
    assert git(wt.repository, "branch", "--list", wt.branch).strip() == wt.branch  # kept for the PR
    wt.remove(delete_branch=True)  # idempotent
    assert git(wt.repository, "branch", "--list", wt.branch) == ""


def test_index_repository(origin: Path, root: Path, tmp_path: Path) -> None:
    wt = Workspace.open(origin, root=root, workcell="codegen", slug="index")
    assert repository_files(wt, max_bytes=100_000) == ["README.md", "src/app.py", "tests/test_app.py"]
    store = QdrantEdgeStore(tmp_path / "qdrant")
    try:
        ingestor = Ingestor(store, HashingEmbedder(dim=32), max_bytes=100_000)
        report = index_repository(wt, ingestor, "repo-demo", "acme")
        assert store.sources("repo-demo", tenant="acme") == {"README.md", "src/app.py", "tests/test_app.py"}
        assert report.count("indexed") == 3
        (wt.path / "README.md").unlink()
        again = index_repository(wt, ingestor, "repo-demo", "acme")
        assert again.count("unchanged") == 2 and again.count("removed") == 1
        assert store.sources("repo-demo", tenant="acme") == {"src/app.py", "tests/test_app.py"}
    finally:
        store.close()
