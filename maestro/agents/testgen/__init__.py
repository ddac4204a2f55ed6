"""The testgen workcell: generated pytest tests for a module, each kept only when it passes on the current
code and covers a line or branch that nothing before it does; the pull request states the coverage delta
and why each test was kept or dropped."""
