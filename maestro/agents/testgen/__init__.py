"""The testgen workcell: generated pytest tests for a module, kept only when they pass on the current code
and raise its coverage; the pull request states the coverage delta."""
