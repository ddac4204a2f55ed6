"""The codegen workcell: a task on a repository becomes a tested change and a pull request."""
