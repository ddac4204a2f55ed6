"""Repository sources: URL or local path, and URLs without their secrets.

A token in a remote URL (``https://user:token@host/repo``) must never reach a worktree's ``.git/config``,
where sandboxed code could read it (RELIABILITY #16), nor a log line or an error message. The full URL
is used only as a command-line argument to the clone/fetch that needs it; what is stored and shown is
:func:`strip_credentials`'s result.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

__all__ = ["is_url", "redact", "strip_credentials"]

_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:(?!//)")
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")


def is_url(source: str) -> bool:
    """Whether ``source`` is a URL git fetches from (``scheme://`` or scp-like ``user@host:path``)."""
    return "://" in source or _SCP_LIKE.match(source) is not None


def strip_credentials(url: str) -> str:
    """``url`` without secrets: no password anywhere; for HTTP(S) no user name either (tokens go there).

    SSH keeps its user name (``ssh://git@host/...``): it is a login, not a secret, and ssh needs it.
    """
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    keep_user = parts.scheme.lower() not in ("http", "https") and user
    netloc = f"{user}@{host}" if keep_user else host
    return urlunsplit(parts._replace(netloc=netloc))


def redact(text: str) -> str:
    """``text`` with every ``scheme://userinfo@`` turned into ``scheme://***@`` (for messages and logs)."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}***@", text)
