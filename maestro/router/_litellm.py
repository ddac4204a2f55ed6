"""The one place that imports litellm, with the settings that keep it offline.

litellm fetches its cost map from the network on import unless ``LITELLM_LOCAL_MODEL_COST_MAP`` is set,
and its import takes about two seconds, so callers import it lazily through ``load_litellm()``.
"""

from __future__ import annotations

import os
from types import ModuleType


def load_litellm() -> ModuleType:
    """Import litellm with its bundled cost map and telemetry off; returns the module."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_TELEMETRY", "False")
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    return litellm
