"""CSV files in the ``neo4j-admin import`` header format, read and validated without touching a graph.

Nodes: an ``:ID`` column (``:ID``, ``personId:ID``, ``personId:ID(Person)`` with an id space), a
``:LABEL`` column (``;``-separated labels) and property columns. Relationships: ``:START_ID`` and
``:END_ID`` (with the same optional id spaces) and a ``:TYPE`` column, plus property columns. Property
columns are typed by a suffix: ``age:int`` (``long``, ``short``, ``byte`` too), ``score:float``
(``double``), ``active:boolean``, ``name`` / ``name:string``; ``tags:string[]`` holds ``;``-separated
arrays. An empty cell sets no property. A named id column (``personId:ID``) is also stored as a string
property ``personId``; an unnamed one as ``id``.

Everything is checked here, before the loader writes anything: unknown header types, labels and
relationship types that are not plain identifiers, cells that do not parse as their column's type,
duplicate ids, rows with the wrong number of cells, relationships whose ends no nodes file of the same
load defines. Each problem is reported as ``file:line: what`` (``InvalidRequest``, exit 2).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maestro.core.errors import InvalidRequest

__all__ = ["NodeRow", "NodesFile", "RelRow", "RelsFile", "read_csv", "check_identifier"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_ID_COL = re.compile(r"^(?P<name>[^:]*):(?P<kind>ID|START_ID|END_ID)(?:\((?P<space>[^)]*)\))?$")
_TRUE, _FALSE = {"true", "1", "yes", "y"}, {"false", "0", "no", "n"}


def check_identifier(name: str, what: str, where: str) -> str:
    """A label, type or property name must be a plain identifier (it is backticked in the query)."""
    if not _IDENT.fullmatch(name):
        raise InvalidRequest(f"{where}: {what} {name!r} is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*)")
    return name


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(text)


_CASTS: dict[str, Callable[[str], Any]] = {
    "string": str,
    "int": int,
    "long": int,
    "short": int,
    "byte": int,
    "float": float,
    "double": float,
    "boolean": _bool,
}


@dataclass(frozen=True)
class _Column:
    index: int
    name: str
    cast: Callable[[str], Any]
    type_name: str
    array: bool

    def value(self, cell: str) -> Any:
        if self.array:
            return [self.cast(part) for part in cell.split(";") if part != ""]
        return self.cast(cell)


@dataclass(frozen=True)
class NodeRow:
    line: int
    space: str
    id: str
    labels: tuple[str, ...]
    properties: dict[str, Any]


@dataclass(frozen=True)
class RelRow:
    line: int
    start: tuple[str, str]  # (id space, id)
    end: tuple[str, str]
    type: str
    properties: dict[str, Any]


@dataclass
class NodesFile:
    path: Path
    id_property: str
    rows: list[NodeRow] = field(default_factory=list)


@dataclass
class RelsFile:
    path: Path
    rows: list[RelRow] = field(default_factory=list)


def read_csv(path: Path) -> NodesFile | RelsFile:
    """Parse and validate one CSV file; its header says whether it holds nodes or relationships."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise InvalidRequest(f"{path}:1: empty CSV file (expected a header row)") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"{path}:1: unreadable CSV: {exc}") from exc
        specials = {m.group("kind"): (i, m) for i, h in enumerate(header) if (m := _ID_COL.match(h.strip()))}
        if "ID" in specials:
            return _read_nodes(path, header, specials["ID"], reader)
        if "START_ID" in specials and "END_ID" in specials:
            return _read_rels(path, header, specials["START_ID"], specials["END_ID"], reader)
        raise InvalidRequest(
            f"{path}:1: the header has neither an :ID column (a nodes file) nor :START_ID and :END_ID "
            "columns (a relationships file), e.g. 'personId:ID,name,:LABEL' or ':START_ID,:END_ID,:TYPE'"
        )


def _columns(path: Path, header: list[str], skip: set[int]) -> list[_Column]:
    columns = []
    for i, raw in enumerate(header):
        if i in skip:
            continue
        name, _, type_text = raw.strip().partition(":")
        type_name = (type_text or "string").strip().lower()
        array = type_name.endswith("[]")
        base = type_name.removesuffix("[]")
        if base not in _CASTS:
            raise InvalidRequest(
                f"{path}:1: column {raw!r} has an unknown type {type_text!r}: use one of "
                f"{', '.join(sorted(_CASTS))} (with [] for arrays)"
            )
        check_identifier(name, "property", f"{path}:1")
        columns.append(_Column(i, name, _CASTS[base], type_name, array))
    return columns


def _cells(path: Path, reader: Any, width: int) -> Any:
    try:
        for cells in reader:
            if not cells or all(c == "" for c in cells):
                continue
            if len(cells) != width:
                raise InvalidRequest(
                    f"{path}:{reader.line_num}: {len(cells)} cells where the header has {width}"
                )
            yield reader.line_num, cells
    except (csv.Error, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"{path}:{reader.line_num}: unreadable CSV: {exc}") from exc


def _properties(path: Path, line: int, columns: list[_Column], cells: list[str]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for col in columns:
        cell = cells[col.index]
        if cell == "":
            continue
        try:
            props[col.name] = col.value(cell)
        except ValueError:
            raise InvalidRequest(
                f"{path}:{line}: column {col.name!r} expects {col.type_name}, got {cell[:60]!r}"
            ) from None
    return props


def _read_nodes(path: Path, header: list[str], id_col: tuple[int, re.Match[str]], reader: Any) -> NodesFile:
    id_index, match = id_col
    id_property = check_identifier(match.group("name") or "id", "id property", f"{path}:1")
    space = match.group("space") or ""
    label_index = next((i for i, h in enumerate(header) if h.strip() == ":LABEL"), None)
    columns = _columns(path, header, {id_index} | ({label_index} if label_index is not None else set()))
    result = NodesFile(path, id_property)
    for line, cells in _cells(path, reader, len(header)):
        node_id = cells[id_index]
        if node_id == "":
            raise InvalidRequest(f"{path}:{line}: empty :ID")
        labels = tuple(
            check_identifier(lab.strip(), "label", f"{path}:{line}")
            for lab in (cells[label_index] if label_index is not None else "").split(";")
            if lab.strip()
        )
        if not labels:
            raise InvalidRequest(f"{path}:{line}: node {node_id!r} has no label: add a :LABEL column")
        props = _properties(path, line, columns, cells)
        props[id_property] = node_id
        result.rows.append(NodeRow(line, space, node_id, labels, props))
    return result


def _read_rels(
    path: Path,
    header: list[str],
    start_col: tuple[int, re.Match[str]],
    end_col: tuple[int, re.Match[str]],
    reader: Any,
) -> RelsFile:
    (start_index, start_match), (end_index, end_match) = start_col, end_col
    type_index = next((i for i, h in enumerate(header) if h.strip() == ":TYPE"), None)
    if type_index is None:
        raise InvalidRequest(f"{path}:1: a relationships file needs a :TYPE column")
    columns = _columns(path, header, {start_index, end_index, type_index})
    start_space, end_space = start_match.group("space") or "", end_match.group("space") or ""
    result = RelsFile(path)
    for line, cells in _cells(path, reader, len(header)):
        rel_type = check_identifier(cells[type_index].strip(), "relationship type", f"{path}:{line}")
        props = _properties(path, line, columns, cells)
        start, end = (start_space, cells[start_index]), (end_space, cells[end_index])
        result.rows.append(RelRow(line, start, end, rel_type, props))
    return result
