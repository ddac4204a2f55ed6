"""Maestro: a multi-agent LLM workcell platform.

The package is layered (DESIGN.md): ``core`` <- ``prompts`` <- ``router`` <- ``retrieval`` <- ``tools``
<- ``agents`` <- ``evals``/``workers`` <- ``api``.  Importing it has no side effects.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
