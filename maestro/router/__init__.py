"""The cost-aware router: catalog, weights, decisions, budgets, and execution through LiteLLM.

Import the pieces from here; ``router.testing`` holds the fake LLMs for tests. Nothing in this package
imports litellm or llama.cpp at import time.
"""

from maestro.router.catalog import Catalog, load_catalog, parse_catalog
from maestro.router.factory import build_router, load_routing_config, open_state_db
from maestro.router.policy import Candidate, Decision, RouteContext, RouteRequest, decide
from maestro.router.service import ModelRouter, RoutedCompletion, RouterLimits, StreamEvent
from maestro.router.types import Chunk, Completion, Deployment, LLMClient, ModelCall, Usage
from maestro.router.weights import TASK_CLASSES, Weights, load_weights, parse_weights

__all__ = [
    "TASK_CLASSES",
    "Candidate",
    "Catalog",
    "Chunk",
    "Completion",
    "Decision",
    "Deployment",
    "LLMClient",
    "ModelCall",
    "ModelRouter",
    "RouteContext",
    "RouteRequest",
    "RoutedCompletion",
    "RouterLimits",
    "StreamEvent",
    "Usage",
    "Weights",
    "build_router",
    "decide",
    "load_catalog",
    "load_routing_config",
    "load_weights",
    "open_state_db",
    "parse_catalog",
    "parse_weights",
]
