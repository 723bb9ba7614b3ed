"""Credentials in URLs (``https://user:pass@host``) replaced by ``***@`` where shown or kept."""

from __future__ import annotations

import re
from collections.abc import Mapping

from crossplan.hashing import hash_bytes

__all__ = ["has_credentials", "keyed_env", "redact_env", "redact_url"]

# scheme://USERINFO@ : the userinfo runs to the last "@" before the host's path, query or
# fragment, so an unescaped "@" or "," in a password is redacted too (never half shown).
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@")


def redact_url(text: str) -> str:
    """``text`` with the userinfo of every URL in it replaced: ``https://***@host/...``."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


def has_credentials(text: str) -> bool:
    return _USERINFO.search(text) is not None


def redact_env(mapping: Mapping[str, str]) -> dict[str, str]:
    """The variables with credentials in URL values redacted (for display)."""
    return {k: redact_url(v) for k, v in mapping.items()}


def keyed_env(mapping: Mapping[str, str]) -> dict[str, str]:
    """The variables as they enter a key: a value with credentials becomes its redacted
    form plus the blake3 of the real value (another password, another key; no secret in
    the key's components); every other value stays exactly as it is."""
    return {
        k: f"{redact_url(v)} (blake3:{hash_bytes(v.encode('utf-8', 'surrogatepass'))})"
        if has_credentials(v) else v
        for k, v in mapping.items()
    }
