"""Path safety and protected paths for edits: RELIABILITY #17 (tests, conftest, CI config and the verifier
are refused unless the policy allows them) and #18 (``..``, absolute paths and symlinks out of the
worktree are rejected, and nothing is written outside). Real files and real symlinks."""

from __future__ import annotations

from pathlib import Path

import pytest

from maestro.tools.edits import (
    EditPolicy,
    EditRejected,
    ProtectedPath,
    UnsafePath,
    apply_edits,
    check_path,
    compile_glob,
)
from maestro.tools.edits.errors import EditProblem


def block(path: str, search: str, replace: str) -> str:
    return f"{path}\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


def new_file(path: str, text: str = "pwned\n") -> str:
    return block(path, "", text)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the worktree that no edit may touch."""
    target = tmp_path / "outside"
    target.mkdir()
    (target / "secret.txt").write_text("original\n")
    return target


@pytest.fixture
def repo(tmp_path: Path, outside: Path) -> Path:
    root = tmp_path / "repo"
    for rel, text in {
        "src/app.py": "x = 1\n",
        "tests/test_app.py": "def test_x():\n    assert True\n",
        "tests/conftest.py": "import pytest\n",
        "src/pkg/tests/test_inner.py": "pass\n",
        "conftest.py": "pass\n",
        ".github/workflows/ci.yml": "on: push\n",
        "pyproject.toml": "[tool.pytest.ini_options]\naddopts = ''\n",
        "scripts/verify.sh": "pytest -q\n",
        ".git/config": "[core]\n",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "link_out").symlink_to(outside)  # a directory symlink leaving the worktree
    (root / "secret_link.txt").symlink_to(outside / "secret.txt")
    (root / "src" / "innocent.py").symlink_to(root / "tests" / "test_app.py")
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- RELIABILITY #18 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("../x.txt", "`..` component"),
        ("../outside/secret.txt", "`..` component"),
        ("a/../../x.txt", "`..` component"),
        ("src/../src/app.py", "`..` component"),
        ("/etc/passwd", "absolute"),
        ("~/x.txt", "absolute"),
        ("C:/x.txt", "absolute"),
        ("src\\..\\..\\x.txt", "backslash"),
        (".git/hooks/pre-commit", "inside .git"),
        ("sub/.git/config", "inside .git"),
        ("link_out/secret.txt", "outside the worktree through a symlink"),
        ("link_out/new.txt", "outside the worktree through a symlink"),
        ("secret_link.txt", "outside the worktree through a symlink"),
    ],
)
def test_unsafe_paths_rejected_nothing_written(repo: Path, outside: Path, path: str, reason: str) -> None:
    before_outside = snapshot(outside)
    before_repo = snapshot(repo)
    answer = block("src/app.py", "x = 1\n", "x = 2\n") + new_file(path)
    with pytest.raises(UnsafePath) as caught:
        apply_edits(repo, answer)
    assert caught.value.exit_code == 3
    [problem] = caught.value.problems
    assert problem.kind == "unsafe_path" and problem.block == 2
    assert reason in problem.message and repr(path) in problem.message
    assert snapshot(outside) == before_outside
    assert snapshot(repo) == before_repo  # the valid block 1 was not written either
    assert not (repo.parent / "x.txt").exists()


def test_search_block_through_symlink_never_reads_outside(repo: Path, outside: Path) -> None:
    with pytest.raises(UnsafePath) as caught:
        apply_edits(repo, block("secret_link.txt", "nothing\n", "x\n"))
    assert "original" not in caught.value.feedback  # no closest-lines hint from the outside file
    assert (outside / "secret.txt").read_text() == "original\n"


def test_diff_whose_new_path_escapes_is_rejected(repo: Path, outside: Path) -> None:
    diffs = [
        "--- a/src/app.py\n+++ b/../outside/secret.txt\n@@ -1 +1 @@\n-x = 1\n+x = 2\n",
        "--- /dev/null\n+++ /tmp/created-by-edit.txt\n@@ -0,0 +1 @@\n+pwned\n",
        "--- /dev/null\n+++ b/link_out/created.txt\n@@ -0,0 +1 @@\n+pwned\n",
    ]
    for diff in diffs:
        with pytest.raises(UnsafePath):
            apply_edits(repo, diff)
    assert (outside / "secret.txt").read_text() == "original\n"
    assert not (outside / "created.txt").exists()
    assert not Path("/tmp/created-by-edit.txt").exists()
    assert (repo / "src/app.py").read_text() == "x = 1\n"


def test_symlink_inside_the_worktree_is_written_at_its_real_location(repo: Path) -> None:
    (repo / "src" / "alias.py").symlink_to(repo / "src" / "app.py")
    report = apply_edits(repo, block("src/alias.py", "x = 1\n", "x = 2\n"))
    assert (repo / "src/alias.py").is_symlink()  # the link itself is kept
    assert (repo / "src/app.py").read_text() == "x = 2\n"
    assert report.changed == ["src/app.py"]


def test_check_path_normalises_safe_paths(repo: Path) -> None:
    checked = check_path(repo, "./src//app.py", block=1)
    assert not isinstance(checked, EditProblem)
    assert (checked.rel, checked.real_rel) == ("src/app.py", "src/app.py")


# --- RELIABILITY #17 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("tests/test_app.py", "**/tests/**"),
        ("src/pkg/tests/test_inner.py", "**/tests/**"),
        ("src/test_helpers.py", "test_*.py"),
        ("conftest.py", "conftest.py"),
        ("tests/conftest.py", "conftest.py"),
        (".github/workflows/ci.yml", ".github/**"),
        (".gitlab-ci.yml", ".gitlab-ci.yml"),
        ("tox.ini", "tox.ini"),
        ("pyproject.toml", "pyproject.toml"),
        ("src/innocent.py", "**/tests/**"),  # a symlink to a test file: checked at its real location
    ],
)
def test_protected_paths_refused_by_default(repo: Path, path: str, rule: str) -> None:
    before = snapshot(repo)
    with pytest.raises(ProtectedPath) as caught:
        apply_edits(repo, new_file(path) if not (repo / path).exists() else block(path, "", "x\n"))
    [problem] = caught.value.problems
    assert problem.kind == "protected_path" and problem.path == path
    assert f"rule `{rule}`" in problem.message
    assert snapshot(repo) == before


def test_verifier_refused_even_with_allow_protected(repo: Path) -> None:
    policy = EditPolicy(verifier=["scripts/verify.sh"], allow_protected=True)
    with pytest.raises(
        ProtectedPath, match=r"scripts/verify.sh is the verifier \(rule `scripts/verify.sh`\)"
    ):
        apply_edits(repo, block("scripts/verify.sh", "pytest -q\n", "true\n"), policy=policy)
    assert (repo / "scripts/verify.sh").read_text() == "pytest -q\n"


def test_testgen_policy_allows_generated_tests_but_not_conftest_or_ci(repo: Path) -> None:
    policy = EditPolicy(allow=["tests/test_generated_*.py", "tests/**"])
    report = apply_edits(
        repo, new_file("tests/test_generated_app.py", "def test_y():\n    pass\n"), policy=policy
    )
    assert report.created == ["tests/test_generated_app.py"]
    before = snapshot(repo)
    refused = {
        "tests/conftest.py": block("tests/conftest.py", "import pytest\n", "\n"),
        "tests/sub/conftest.py": new_file("tests/sub/conftest.py"),
        ".github/workflows/ci.yml": block(".github/workflows/ci.yml", "on: push\n", "on: never\n"),
    }
    for path, answer in refused.items():
        with pytest.raises(ProtectedPath) as caught:
            apply_edits(repo, answer, policy=policy)
        assert caught.value.problems[0].message.startswith(f"edit 1: {path} is protected (rule `")
        assert "stay refused even where the policy allows test files" in caught.value.feedback
    assert snapshot(repo) == before


def test_allow_protected_lifts_everything_but_the_verifier(repo: Path) -> None:
    policy = EditPolicy(allow_protected=True, verifier=["scripts/verify.sh"])
    apply_edits(repo, block("tests/conftest.py", "import pytest\n", "import os\n"), policy=policy)
    assert (repo / "tests/conftest.py").read_text() == "import os\n"


def test_every_refusal_is_reported_at_once(repo: Path) -> None:
    answer = new_file("../a.txt") + new_file("tests/test_new.py") + block("src/app.py", "nope\n", "x\n")
    with pytest.raises(EditRejected) as caught:
        apply_edits(repo, answer)
    kinds = [p.kind for p in caught.value.problems]
    assert kinds == ["unsafe_path", "protected_path"]  # paths are checked before any file is read
    assert isinstance(caught.value, UnsafePath)


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("conftest.py", "conftest.py", True),
        ("conftest.py", "a/b/conftest.py", True),
        ("tests/**", "tests/a/b.py", True),
        ("tests/**", "src/tests/b.py", False),
        ("**/tests/**", "src/tests/b.py", True),
        (".github/**", ".github/workflows/ci.yml", True),
        ("test_*.py", "src/test_x.py", True),
        ("test_*.py", "src/test_x.pyc", False),
        ("tests/test_generated_*.py", "tests/test_generated_a.py", True),
        ("tests/test_generated_*.py", "tests/sub/test_generated_a.py", False),
        ("*.spec.*", "web/app.spec.ts", True),
    ],
)
def test_glob_semantics(pattern: str, path: str, matches: bool) -> None:
    assert (compile_glob(pattern).fullmatch(path) is not None) is matches
