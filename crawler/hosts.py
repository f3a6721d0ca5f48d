"""The host allow-list every request and redirect is checked against."""

from __future__ import annotations


def host_allowed(host: str, allowed: list[str]) -> bool:
    """``allowed`` holds exact hosts (``127.0.0.1``) or suffix patterns (``*.archive.org``)."""
    host = host.lower().rstrip(".")
    for pattern in allowed:
        pattern = pattern.lower()
        if pattern.startswith("*."):
            if host == pattern[2:] or host.endswith(pattern[1:]):
                return True
        elif host == pattern:
            return True
    return False
