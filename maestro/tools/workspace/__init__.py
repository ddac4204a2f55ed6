"""Repository workspaces: a fresh git worktree per run on branch ``maestro/<workcell>/<slug>``, with
credentials kept out of the worktree, and indexing of the repository's code into retrieval.

``Workspace.open(source, root=workspace_root(settings.data_dir), workcell=..., slug=..., run=...)``
returns a :class:`Worktree` (``files``, ``read``, ``status``, ``diff``, ``commit``, ``remove``). Edits
are applied with :mod:`maestro.tools.edits`. Importing this package starts nothing.
"""

from maestro.tools.workspace.errors import (
    GitFailed,
    GitTimeout,
    RepositoryNotFound,
    RepositoryUnreachable,
    UnknownRef,
)
from maestro.tools.workspace.indexing import index_repository, repository_files
from maestro.tools.workspace.naming import branch_name, sanitize_slug
from maestro.tools.workspace.urls import redact, strip_credentials
from maestro.tools.workspace.workspace import Workspace, workspace_root
from maestro.tools.workspace.worktree import DEFAULT_AUTHOR, FileStatus, Worktree

__all__ = [
    "DEFAULT_AUTHOR",
    "FileStatus",
    "GitFailed",
    "GitTimeout",
    "RepositoryNotFound",
    "RepositoryUnreachable",
    "UnknownRef",
    "Workspace",
    "Worktree",
    "branch_name",
    "index_repository",
    "redact",
    "repository_files",
    "sanitize_slug",
    "strip_credentials",
    "workspace_root",
]
