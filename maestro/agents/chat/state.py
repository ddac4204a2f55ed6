from __future__ import annotations

from maestro.agents.runtime.state import BaseState


class ChatState(BaseState, total=False):
    """The conversation so far (``messages``) and the last reply's decision id."""

    decision_id: str
