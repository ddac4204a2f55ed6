"""The LangGraph runtime every workcell runs on: state, context, checkpoints, approvals, effects, events."""
