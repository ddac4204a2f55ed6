"""Adapters of the ``VectorStore`` port: Qdrant Edge (embedded, the default) and a Qdrant server.

``open_vector_store(settings)`` picks one; the adapter modules import their Qdrant library only when
the factory opens them. What both adapters share lives here: the point id derived from
``(tenant, chunk_id)``, the payload codec and the validation of exact-match filters.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from maestro.core.errors import InvalidRequest, NotFound, RetrievalUnavailable
from maestro.retrieval.stores.factory import open_vector_store
from maestro.retrieval.types import ChunkRecord, SparseVector

__all__ = ["RetrievalUnavailable", "open_vector_store"]

DENSE = "dense"
SPARSE = "sparse"
RRF_K = 2  # Qdrant's default RRF constant; Edge needs it spelt out, so both adapters use the same
# Dense leg first, sparse second. Equal weights tie every rank-r dense hit with every rank-r sparse hit
# and the engine breaks such ties differently from run to run; a hair of preference for the dense leg
# makes hybrid rankings deterministic without changing what fusion means.
RRF_WEIGHTS = (1.0, 0.999)
_POINT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "maestro:retrieval:chunk")
_COLLECTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# Payload keys a filter may name directly; any other key is looked up in ``extra``.
_FILTERABLE = frozenset({"chunk_id", "source", "section", "pii", "injection_suspect", "retention"})
_RESERVED = frozenset({"tenant", "collection"})
_BOOL_FIELDS = ("pii", "injection_suspect")


def check_collection_name(collection: str) -> str:
    """Return ``collection`` if it is a safe name (it becomes a directory for Edge), else raise."""
    if not _COLLECTION_NAME.fullmatch(collection):
        raise InvalidRequest(
            f"invalid collection name {collection!r}: use 1-64 letters, digits, '_' or '-', "
            "starting with a letter or digit",
            collection=collection,
        )
    return collection


def missing_collection(collection: str) -> NotFound:
    """The error for a search or listing in a collection nobody ingested into."""
    return NotFound(
        f"collection {collection!r} does not exist: ingest into it first with "
        f"`maestro rag ingest ... --collection {collection}`",
        collection=collection,
    )


def point_id(tenant: str, chunk_id: str) -> str:
    """The Qdrant point id of a chunk: a UUID5 of ``(tenant, chunk_id)``, so tenants never collide."""
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{tenant}\x1f{chunk_id}"))


def to_payload(record: ChunkRecord, *, bools_as_ints: bool = False) -> dict[str, Any]:
    """The payload stored beside a chunk's vectors; ``ingested_at`` as ISO 8601, ``extra`` also as JSON.

    ``bools_as_ints`` stores the boolean flags as 0/1 (qdrant-edge 0.9.0 turns ``MatchValue(True)`` into
    ``1``, which never matches a JSON ``true``).
    """
    extra = dict(record.extra)
    flags: dict[str, Any] = {name: getattr(record, name) for name in _BOOL_FIELDS}
    if bools_as_ints:
        flags = {name: int(value) for name, value in flags.items()}
        extra = {key: int(value) if isinstance(value, bool) else value for key, value in extra.items()}
    return {
        "chunk_id": record.chunk_id,
        "tenant": record.tenant,
        "collection": record.collection,
        "source": record.source,
        "text": record.text,
        "start": record.start,
        "end": record.end,
        "section": record.section,
        **flags,
        "retention": record.retention,
        "ingested_at": record.ingested_at.isoformat() if record.ingested_at is not None else None,
        "extra": extra,
        "extra_json": json.dumps(dict(record.extra), sort_keys=True, default=str),
    }


def from_payload(payload: Mapping[str, Any]) -> ChunkRecord:
    """Rebuild the ``ChunkRecord`` that ``to_payload`` stored."""
    ingested_at = payload.get("ingested_at")
    extra_json = payload.get("extra_json")
    extra = json.loads(extra_json) if isinstance(extra_json, str) else dict(payload.get("extra") or {})
    return ChunkRecord(
        chunk_id=str(payload["chunk_id"]),
        tenant=str(payload["tenant"]),
        collection=str(payload["collection"]),
        source=str(payload["source"]),
        text=str(payload["text"]),
        start=int(payload["start"]),
        end=int(payload["end"]),
        section=payload.get("section"),
        pii=bool(payload.get("pii", False)),
        injection_suspect=bool(payload.get("injection_suspect", False)),
        retention=str(payload.get("retention", "standard")),
        ingested_at=datetime.fromisoformat(ingested_at) if isinstance(ingested_at, str) else None,
        extra=extra,
    )


def filter_items(filters: Mapping[str, Any] | None) -> list[tuple[str, str | int | bool]]:
    """Validate exact-match ``filters`` and return ``(payload key, value)`` pairs.

    Keys are chunk fields (``source``, ``section``, ``pii``, ``injection_suspect``, ``retention``,
    ``chunk_id``) or keys of ``extra``; values are strings, integers or booleans. ``tenant`` and
    ``collection`` are refused: the store sets them from the call's own arguments.
    """
    items: list[tuple[str, str | int | bool]] = []
    for key, value in (filters or {}).items():
        if key in _RESERVED:
            raise InvalidRequest(
                f"filter key {key!r} is not allowed: the store filters by the call's own {key}", key=key
            )
        if not isinstance(value, str | int | bool):
            raise InvalidRequest(
                f"filter {key!r} has value {value!r} of type {type(value).__name__}: "
                "filters match exactly on a string, an integer or a boolean",
                key=key,
            )
        items.append((key if key in _FILTERABLE else f"extra.{key}", value))
    return items


def check_query(dense: Sequence[float] | None, sparse: SparseVector | None) -> None:
    """A search needs at least one leg."""
    if dense is None and sparse is None:
        raise InvalidRequest("search needs a dense vector, a sparse vector or both")


def prefetch_depth(limit: int) -> int:
    """How many candidates each leg of a hybrid search contributes to the RRF fusion."""
    return max(limit * 4, 20)
