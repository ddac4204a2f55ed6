"""Build the packaged eval repositories maestro/evals/repos/<name>.tar.gz from their fixture trees.

The testgen and docs eval sets run on these archives (tests/ is not shipped with Maestro):

    shelfkit   tests/fixtures/sample_repo   (also the repository workcells' test fixture)
    tillkit    tests/fixtures/tillkit

Each archive is deterministic: entries sorted by path, regular files only, mode 0644, uid/gid 0 with no
owner names, mtime 0, and a gzip header without a name or a timestamp. So rebuilding from an unchanged
fixture gives the same tar stream, and tests/evals/test_repo_suites.py fails when the two drift apart.

    python scripts/build_eval_repo.py               rebuild every archive after changing a fixture
    python scripts/build_eval_repo.py tillkit       rebuild one
    python scripts/build_eval_repo.py --check       exit 1 when an archive does not match its fixture

(the gzip bytes may differ between zlib builds; ``--check`` compares the uncompressed tar stream).
After a rebuild, the items on that repository pin another ``repo_sha256``: update them and bump the
``version`` of testgen_shelfkit and docs_shelfkit in maestro/evals/datasets/manifest.yaml (the same items
on another repository are another dataset).
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
REPOS = {"shelfkit": FIXTURES / "sample_repo", "tillkit": FIXTURES / "tillkit"}
ARCHIVES = ROOT / "maestro" / "evals" / "repos"
SKIPPED_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".git"})
SKIPPED_SUFFIXES = (".pyc", ".pyo")
SKIPPED_NAMES = frozenset({".coverage"})


def archive_path(name: str) -> Path:
    return ARCHIVES / f"{name}.tar.gz"


def fixture_files(source: Path) -> list[str]:
    """The fixture's files as sorted POSIX paths (caches and bytecode left out)."""
    found = []
    for path in source.rglob("*"):
        relative = path.relative_to(source)
        if any(part in SKIPPED_DIRS for part in relative.parts) or not path.is_file():
            continue
        if path.name in SKIPPED_NAMES or path.name.endswith(SKIPPED_SUFFIXES):
            continue
        found.append(relative.as_posix())
    return sorted(found)


def tar_stream(source: Path) -> bytes:
    """The uncompressed, deterministic tar stream of the fixture's files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in fixture_files(source):
            data = (source / name).read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def compress(stream: bytes) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as out:
        out.write(stream)
    return buffer.getvalue()


def check(name: str) -> bool:
    """Whether the archive ``name`` holds exactly its fixture (reported on stderr)."""
    source, archive = REPOS[name], archive_path(name)
    current = gzip.decompress(archive.read_bytes()) if archive.exists() else b""
    where = f"{archive.relative_to(ROOT)} {{}} {source.relative_to(ROOT)}"
    if current != tar_stream(source):
        sys.stderr.write(where.format("does not match") + f": run python scripts/build_eval_repo.py {name}\n")
        return False
    sys.stderr.write(where.format("matches") + "\n")
    return True


def build(name: str) -> None:
    source, archive = REPOS[name], archive_path(name)
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.write_bytes(compress(tar_stream(source)))
    sys.stderr.write(f"wrote {archive.relative_to(ROOT)} ({len(fixture_files(source))} files)\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"{', '.join(REPOS)} (default: all)")
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(REPOS))
    if unknown:
        parser.error(f"no eval repository {', '.join(unknown)} (known: {', '.join(REPOS)})")
    names = args.names or list(REPOS)
    if args.check:
        results = [check(name) for name in names]
        return 0 if all(results) else 1
    for name in names:
        build(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
