"""Build maestro/evals/repos/shelfkit.tar.gz from the fixture repository tests/fixtures/sample_repo.

The testgen and docs eval sets run on this archive (tests/ is not shipped with Maestro). The archive is
deterministic: entries sorted by path, regular files only, mode 0644, uid/gid 0 with no owner names,
mtime 0, and a gzip header without a name or a timestamp. So rebuilding from an unchanged fixture gives
the same tar stream, and tests/evals/test_repo_suites.py fails when the two drift apart.

    python scripts/build_eval_repo.py           rebuild the archive after changing the fixture
    python scripts/build_eval_repo.py --check   exit 1 when the archive does not match the fixture

(the gzip bytes may differ between zlib builds; ``--check`` compares the uncompressed tar stream).
After a rebuild, bump the ``version`` of testgen_shelfkit and docs_shelfkit in
maestro/evals/datasets/manifest.yaml: the same items on another repository are another dataset.
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "tests" / "fixtures" / "sample_repo"
ARCHIVE = ROOT / "maestro" / "evals" / "repos" / "shelfkit.tar.gz"
SKIPPED_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".git"})
SKIPPED_SUFFIXES = (".pyc", ".pyo")
SKIPPED_NAMES = frozenset({".coverage"})


def fixture_files(source: Path = SOURCE) -> list[str]:
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


def tar_stream(source: Path = SOURCE) -> bytes:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    stream = tar_stream()
    if args.check:
        current = gzip.decompress(ARCHIVE.read_bytes()) if ARCHIVE.exists() else b""
        if current != stream:
            sys.stderr.write(
                f"{ARCHIVE.relative_to(ROOT)} does not match {SOURCE.relative_to(ROOT)}: "
                "run python scripts/build_eval_repo.py\n"
            )
            return 1
        sys.stderr.write(f"{ARCHIVE.relative_to(ROOT)} matches {SOURCE.relative_to(ROOT)}\n")
        return 0
    ARCHIVE.parent.mkdir(parents=True, exist_ok=True)
    ARCHIVE.write_bytes(compress(stream))
    sys.stderr.write(f"wrote {ARCHIVE.relative_to(ROOT)} ({len(fixture_files())} files)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
