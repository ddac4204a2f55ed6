"""The sandboxed process's environment: built from scratch, never copied from the parent.

The parent (a worker, the API server) holds provider keys, tokens and ``MAESTRO_*`` settings; the code
under test must see none of them (RELIABILITY #16). So the environment is an allow-list of fixed values
plus the caller's explicit ``env_extra``; nothing is inherited. ``secret_values`` lists what the parent
does hold, so the output can be scrubbed of it in case a caller passes one through ``env_extra``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

__all__ = ["INSIDE_HOME", "INSIDE_TMP", "build_env", "is_secret_name", "secret_values"]

INSIDE_TMP = "/tmp"
INSIDE_HOME = "/tmp/home"

_SECRET_NAME = re.compile(
    r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|PWD_|CREDENTIAL|AUTH|COOKIE|SESSION|PRIVATE|DSN|_URL$)"
    r"|^(MAESTRO_|AWS_|AZURE_|GOOGLE_|GCP_|GH_|GITHUB_|GITLAB_|OPENAI|ANTHROPIC|HF_|HUGGING|COHERE|"
    r"MISTRAL|GROQ|TOGETHER|REPLICATE|DATABASE_|REDIS_|PG|SSH_|NPM_|PYPI_|TWINE_|DOCKER_)",
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    """Whether an environment variable's name suggests it carries a credential."""
    return bool(_SECRET_NAME.search(name))


def secret_values(environ: Mapping[str, str] | None = None, *, min_len: int = 8) -> list[str]:
    """Values of the parent's secret-looking variables, longest first (for literal redaction)."""
    source = os.environ if environ is None else environ
    values = {v for k, v in source.items() if is_secret_name(k) and len(v) >= min_len}
    return sorted(values, key=len, reverse=True)


def build_env(python: Path, env_extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The complete environment of a sandboxed run.

    ``PATH`` puts the project's interpreter first so ``python``/``pytest`` resolve to the venv;
    ``HOME`` is inside the private tmp so tools that write caches (pip, matplotlib) write there;
    pip is told not to prompt and not to check its version, so a ``pip install`` fails at once on the
    missing network instead of retrying for minutes.
    """
    env = {
        "PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": INSIDE_HOME,
        "TMPDIR": INSIDE_TMP,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONUNBUFFERED": "1",
        "PIP_NO_INPUT": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_RETRIES": "0",
        "PIP_TIMEOUT": "5",
    }
    if env_extra:
        env.update(env_extra)
    return env
