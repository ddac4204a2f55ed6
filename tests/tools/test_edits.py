"""Edits: both formats, whitespace tolerance, precise mismatch feedback, ambiguity, new/deleted files,
all-or-nothing. Real files in a temporary worktree."""

from __future__ import annotations

from pathlib import Path

import pytest

from maestro.tools.edits import (
    EditDidNotApply,
    EditParseError,
    EditRejected,
    FilePatch,
    SearchReplace,
    apply_edits,
    parse_edits,
)

APP = """\
import os


class Greeter:
    def __init__(self, name):
        self.name = name

    def greet(self):
        return "hello " + self.name

    def shout(self):
        return self.greet().upper()


def main():
    print(Greeter("world").greet())
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text(APP)
    (root / "README.md").write_text("# Demo\n\nA demo.\n")
    return root


def block(path: str, search: str, replace: str) -> str:
    return f"{path}\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


# --- parsing -------------------------------------------------------------------------------------------


def test_parse_search_replace_with_path_line_and_fenced_path() -> None:
    text = (
        "Here is the change:\n\nsrc/app.py\n```python\n"
        "<<<<<<< SEARCH\na = 1\n=======\na = 2\n>>>>>>> REPLACE\n```\n"
        "\n```python src/other.py\n<<<<<<< SEARCH\nb = 1\n=======\nb = 2\n>>>>>>> REPLACE\n```\n"
        "**`src/third.py`**:\n<<<<<<< SEARCH\n=======\nnew\n>>>>>>> REPLACE\n"
        "<<<<<<< SEARCH\nnew\n=======\nnewer\n>>>>>>> REPLACE\n"
    )
    edits = parse_edits(text)
    assert [(e.index, e.path) for e in edits] == [
        (1, "src/app.py"),
        (2, "src/other.py"),
        (3, "src/third.py"),
        (4, "src/third.py"),  # no path of its own: the previous block's file
    ]
    first = edits[0]
    assert isinstance(first, SearchReplace)
    assert first.search == ("a = 1",) and first.replace == ("a = 2",)
    third = edits[2]
    assert isinstance(third, SearchReplace) and third.search == ()


def test_parse_unified_diff_new_deleted_and_sloppy_headers() -> None:
    text = (
        "```diff\ndiff --git a/src/app.py b/src/app.py\nindex 123..456 100644\n"
        "--- a/src/app.py\n+++ b/src/app.py\n@@ -1,3 +1,3 @@\n import os\n-x\n+y\n"
        "--- /dev/null\n+++ b/src/new.py\n@@ -0,0 +1,2 @@\n+one\n+two\n"
        "--- a/old.txt\n+++ /dev/null\n@@ @@\n-gone\n```\n"
    )
    edits = parse_edits(text)
    assert all(isinstance(e, FilePatch) for e in edits)
    patches = [e for e in edits if isinstance(e, FilePatch)]
    assert [(p.old_path, p.new_path) for p in patches] == [
        ("src/app.py", "src/app.py"),
        (None, "src/new.py"),
        ("old.txt", None),
    ]
    assert patches[0].hunks[0].old_start == 1
    assert patches[2].hunks[0].old_start is None


def test_parse_errors_name_the_block() -> None:
    with pytest.raises(EditParseError, match="no edits found"):
        parse_edits("I think the bug is in line 3.")
    with pytest.raises(EditParseError, match=r"SEARCH block 1 \(line 2 of the answer\) is not terminated"):
        parse_edits("src/a.py\n<<<<<<< SEARCH\nx\n=======\ny\n")
    with pytest.raises(EditParseError, match="names no file"):
        parse_edits("<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n")


# --- search/replace ------------------------------------------------------------------------------------


def test_exact_block_applies_and_reports(repo: Path) -> None:
    report = apply_edits(
        repo,
        block("src/app.py", '        return "hello " + self.name\n', '        return f"hi {self.name}"\n'),
    )
    assert 'return f"hi {self.name}"' in (repo / "src/app.py").read_text()
    assert report.changed == ["src/app.py"] and report.created == [] and report.written
    outcome = report.blocks[0]
    assert (outcome.match, outcome.start, outcome.end) == ("exact", 9, 9)
    assert '-        return "hello " + self.name' in report.diff
    assert '+        return f"hi {self.name}"' in report.diff


def test_indentation_shift_reindents_the_replacement(repo: Path) -> None:
    search = 'def greet(self):\n    return "hello " + self.name\n'
    replace = (
        'def greet(self):\n    if not self.name:\n        return "hello"\n    return "hello " + self.name\n'
    )
    report = apply_edits(repo, block("src/app.py", search, replace))
    text = (repo / "src/app.py").read_text()
    assert '    def greet(self):\n        if not self.name:\n            return "hello"\n' in text
    assert report.blocks[0].match == "indentation"


def test_trailing_whitespace_and_crlf_tolerated_and_line_endings_kept(repo: Path) -> None:
    crlf = repo / "win.py"
    crlf.write_bytes(b"def f():  \r\n    return 1\r\n")
    report = apply_edits(repo, block("win.py", "def f():\n    return 1\n", "def f():\n    return 2\n"))
    assert crlf.read_bytes() == b"def f():\r\n    return 2\r\n"
    assert report.blocks[0].match == "trailing-whitespace"
    # A CRLF answer against an LF file matches exactly.
    answer = block("src/app.py", "import os\n", "import sys\n").replace("\n", "\r\n")
    assert apply_edits(repo, answer).blocks[0].match == "exact"
    assert (repo / "src/app.py").read_text().startswith("import sys\n")


def test_blank_line_drift_tolerated(repo: Path) -> None:
    search = "import os\nclass Greeter:\n"  # the model dropped the two blank lines
    report = apply_edits(repo, block("src/app.py", search, "import os\n\n\nclass Greeter(object):\n"))
    assert "class Greeter(object):" in (repo / "src/app.py").read_text()
    assert report.blocks[0].match == "blank-lines"


def test_mismatch_names_block_and_closest_lines(repo: Path) -> None:
    first = block("README.md", "A demo.\n", "A small demo.\n")
    second = block("src/app.py", "    def shout(self):\n        return self.greet().lower()\n", "x\n")
    with pytest.raises(EditDidNotApply) as caught:
        apply_edits(repo, first + second)
    message = caught.value.feedback
    assert "SEARCH block 2 for src/app.py did not match; the closest lines are 11-12 (9" in message
    assert "11 |     def shout(self):" in message and "12 |         return self.greet().upper()" in message
    assert "First difference: line 12" in message
    problem = caught.value.problems[0]
    assert (problem.kind, problem.path, problem.block) == ("no_match", "src/app.py", 2)
    # All or nothing: block 1 matched but was not written.
    assert (repo / "README.md").read_text() == "# Demo\n\nA demo.\n"


def test_ambiguous_search_names_the_places(repo: Path) -> None:
    (repo / "dup.py").write_text("x = 1\ny = 2\nx = 1\n")
    with pytest.raises(EditDidNotApply, match=r"matches 2 places in dup.py \(lines 1-1, 3-3\)"):
        apply_edits(repo, block("dup.py", "x = 1\n", "x = 3\n"))
    assert (repo / "dup.py").read_text() == "x = 1\ny = 2\nx = 1\n"


def test_new_file_via_empty_search_and_refusal_when_it_exists(repo: Path) -> None:
    report = apply_edits(repo, block("src/pkg/new.py", "", "VALUE = 1\n"))
    assert (repo / "src/pkg/new.py").read_text() == "VALUE = 1\n"
    assert report.created == ["src/pkg/new.py"] and "+++ b/src/pkg/new.py" in report.diff
    with pytest.raises(
        EditDidNotApply, match="is empty, which creates a new file, but src/app.py already exists"
    ):
        apply_edits(repo, block("src/app.py", "", "x\n"))


def test_blocks_on_one_file_apply_in_sequence(repo: Path) -> None:
    answer = block("src/app.py", "import os\n", "import sys\n") + block(
        "src/app.py", "import sys\n", "import re\n"
    )
    report = apply_edits(repo, answer)
    assert (repo / "src/app.py").read_text().startswith("import re\n")
    assert report.changed == ["src/app.py"]


def test_dry_run_writes_nothing(repo: Path) -> None:
    report = apply_edits(repo, block("src/app.py", "import os\n", "import sys\n"), dry_run=True)
    assert not report.written and "+import sys" in report.diff
    assert (repo / "src/app.py").read_text() == APP


def test_binary_file_refused(repo: Path) -> None:
    (repo / "blob.bin").write_bytes(b"\x00\x01abc")
    with pytest.raises(EditDidNotApply, match="blob.bin cannot be edited: it is a binary file"):
        apply_edits(repo, block("blob.bin", "abc\n", "def\n"))


def test_executable_mode_kept(repo: Path) -> None:
    script = repo / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    apply_edits(repo, block("run.sh", "echo hi\n", "echo bye\n"))
    assert script.stat().st_mode & 0o777 == 0o755


# --- unified diffs -------------------------------------------------------------------------------------


def test_diff_applies_with_offset_and_wrong_counts(repo: Path) -> None:
    diff = (
        "--- a/src/app.py\n+++ b/src/app.py\n"
        "@@ -3,99 +3,99 @@\n"  # wrong line number and counts: the context decides
        "     def shout(self):\n"
        "-        return self.greet().upper()\n"
        '+        return self.greet().upper() + "!"\n'
        " \n"
        " \n"
    )
    report = apply_edits(repo, diff)
    assert 'return self.greet().upper() + "!"' in (repo / "src/app.py").read_text()
    assert report.blocks[0].format == "unified-diff"
    assert "offset +8" in report.blocks[0].match


def test_diff_fuzz_drops_stale_context(repo: Path) -> None:
    diff = (
        "--- a/src/app.py\n+++ b/src/app.py\n@@ -15,3 +15,3 @@\n"
        ' def main():\n-    print(Greeter("world").greet())\n+    print(Greeter("world").shout())\n'
        " # a context line the file does not have\n"
    )
    report = apply_edits(repo, diff)
    assert 'print(Greeter("world").shout())' in (repo / "src/app.py").read_text()
    assert "fuzz 1" in report.blocks[0].match


def test_diff_creates_and_deletes_files(repo: Path) -> None:
    diff = (
        "--- /dev/null\n+++ b/docs/usage.md\n@@ -0,0 +1,2 @@\n+# Usage\n+Run it.\n"
        "--- a/README.md\n+++ /dev/null\n@@ -1,3 +0,0 @@\n-# Demo\n-\n-A demo.\n"
    )
    report = apply_edits(repo, diff)
    assert (repo / "docs/usage.md").read_text() == "# Usage\nRun it.\n"
    assert not (repo / "README.md").exists()
    assert report.created == ["docs/usage.md"] and report.deleted == ["README.md"]
    assert "+++ /dev/null" in report.diff


def test_diff_hunk_mismatch_feedback(repo: Path) -> None:
    diff = (
        "--- a/src/app.py\n+++ b/src/app.py\n@@ -5,2 +5,2 @@\n"
        "     def __init__(self, nme):\n-        self.nme = nme\n+        self.name = nme\n"
    )
    with pytest.raises(EditRejected) as caught:
        apply_edits(repo, diff, max_fuzz=0)
    message = caught.value.feedback
    assert "hunk 1 of the diff for src/app.py (edit 1) did not match; the closest lines are 5-6" in message
    assert (repo / "src/app.py").read_text() == APP


def test_mixed_formats_all_or_nothing(repo: Path) -> None:
    good = block("README.md", "A demo.\n", "Changed.\n")
    bad = "--- a/src/app.py\n+++ b/src/app.py\n@@ -1,1 +1,1 @@\n-import nothing_like_this\n+import os\n"
    with pytest.raises(EditDidNotApply):
        apply_edits(repo, good + "\n" + bad)
    assert (repo / "README.md").read_text() == "# Demo\n\nA demo.\n"


def test_docs_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tempfile.mkdtemp", lambda: str(tmp_path))
    doc = (Path(__file__).parents[2] / "docs" / "repo-tools.md").read_text()
    [code] = [part.split("```", 1)[0] for part in doc.split("\n```python\n")[1:]]
    exec(compile(code, "docs/repo-tools.md", "exec"), {})
