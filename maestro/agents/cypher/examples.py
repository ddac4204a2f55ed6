"""The few-shot example library: question -> Cypher pairs over the sample schema, nearest first.

The library ships as ``examples.jsonl`` beside this module (disjoint from the evaluation set, so the eval
never sees its own answers). Nearness is feature-hashed word overlap: cheap, deterministic and good enough
to pick examples that use the same labels and relationship types as the question.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from maestro.core.errors import ConfigurationError
from maestro.retrieval.embeddings import HashingEmbedder, cosine

__all__ = ["Example", "ExampleLibrary", "default_library"]


@dataclass(frozen=True)
class Example:
    question: str
    cypher: str
    params: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "cypher": self.cypher, "params": dict(self.params)}


class ExampleLibrary:
    def __init__(self, examples: list[Example]) -> None:
        self.examples = examples
        self._embedder = HashingEmbedder(dim=512)
        self._vectors = self._embedder.embed([e.question + "\n" + e.cypher for e in examples])

    @classmethod
    def from_jsonl(cls, text: str, *, source: str = "examples.jsonl") -> ExampleLibrary:
        examples: list[Example] = []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                examples.append(
                    Example(
                        question=str(item["question"]),
                        cypher=str(item["cypher"]),
                        params=dict(item.get("params") or {}),
                    )
                )
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ConfigurationError(f"{source}:{n}: not a {{question, cypher}} example: {exc}") from exc
        return cls(examples)

    def nearest(self, question: str, k: int = 4) -> list[Example]:
        if not self.examples or k <= 0:
            return []
        query = self._embedder.embed_query(question)
        ranked = sorted(range(len(self.examples)), key=lambda i: (-cosine(query, self._vectors[i]), i))
        return [self.examples[i] for i in ranked[:k]]


@cache
def default_library() -> ExampleLibrary:
    """The packaged library (empty if the file is absent)."""
    path = resources.files("maestro.agents.cypher").joinpath("examples.jsonl")
    if not path.is_file():
        return ExampleLibrary([])
    return ExampleLibrary.from_jsonl(path.read_text(encoding="utf-8"))
