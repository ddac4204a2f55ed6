"""What the repository workcells (codegen, testgen, docs) share: their tools, a worktree per run, tests in
the sandbox, the diff guard and the pull request."""
