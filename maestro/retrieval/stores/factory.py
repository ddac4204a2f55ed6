"""Open the configured vector store: a Qdrant server when ``MAESTRO_QDRANT_URL`` is set, else Qdrant Edge."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from maestro.core.settings import Settings
    from maestro.retrieval.types import VectorStore


def open_vector_store(settings: Settings) -> VectorStore:
    """The ``VectorStore`` the settings ask for; the caller closes it.

    A Qdrant server at ``settings.qdrant_url`` (``MAESTRO_QDRANT_URL``) when set, else Qdrant Edge
    under ``settings.data_dir/qdrant``. ``settings.qdrant_api_key`` (a ``SecretStr``), when present, is
    sent to the server. Edge is one process per data dir: a second process gets
    ``RetrievalUnavailable`` here, at open time.
    """
    url = getattr(settings, "qdrant_url", None)
    if url:
        from qdrant_client import QdrantClient

        from maestro.retrieval.stores.server import QdrantServerStore

        api_key = getattr(settings, "qdrant_api_key", None)
        if api_key is not None and hasattr(api_key, "get_secret_value"):
            api_key = api_key.get_secret_value()
        return QdrantServerStore(QdrantClient(url=str(url), api_key=api_key or None))

    from maestro.retrieval.stores.edge import QdrantEdgeStore

    return QdrantEdgeStore(settings.data_dir)
