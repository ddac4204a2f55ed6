"""Pull requests behind one port (``PRBackend``): a ``git`` backend for any remote and a ``github`` one.

Bots open and update pull requests (idempotently, by key); humans review, merge and close. Importing
this package is cheap: SQLAlchemy is imported by the backends' modules, httpx by the GitHub client.
"""

from maestro.tools.prs.body import BodyInput, DecisionLine, TestResult, TestRun, render_body
from maestro.tools.prs.errors import GitFailed, GitHubError
from maestro.tools.prs.markdown import clean_title, sanitize_markdown
from maestro.tools.prs.port import PRBackend
from maestro.tools.prs.types import BRANCH_PREFIX, PR_STATES, PRState, PullRequest, RepoRef, Review, Verdict

__all__ = [
    "BRANCH_PREFIX",
    "PR_STATES",
    "BodyInput",
    "DecisionLine",
    "GitFailed",
    "GitHubError",
    "PRBackend",
    "PRState",
    "PullRequest",
    "RepoRef",
    "Review",
    "TestResult",
    "TestRun",
    "Verdict",
    "clean_title",
    "render_body",
    "sanitize_markdown",
]
