"""The chat workcell: a multi-turn conversation routed as task ``chat``, one thread per conversation."""
