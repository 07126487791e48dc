"""Which push endpoints the ledger will POST to (LEDGER_PUSH_ENDPOINTS)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import SplitResult, urlsplit


def endpoint_allowed(endpoint: str, allowed: Iterable[str]) -> bool:
    """True when `endpoint` lies under one of the `allowed` prefixes (same scheme, host,
    port, and a path below; a host `*.example.com` stands for its subdomains)."""
    try:
        target = urlsplit(endpoint)
        return any(_under(target, urlsplit(prefix)) for prefix in allowed)
    except ValueError:  # a port that is not a number, say
        return False


def _under(target: SplitResult, prefix: SplitResult) -> bool:
    if target.scheme != prefix.scheme or target.port != prefix.port or target.username:
        return False
    host, wanted = target.hostname or "", prefix.hostname or ""
    same_host = host.endswith(wanted[1:]) if wanted.startswith("*.") else host == wanted
    return same_host and target.path.startswith(prefix.path or "/")
