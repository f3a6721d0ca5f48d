"""The host allow-list every request and redirect is checked against.

A URL is checked as the HTTP clients will connect, not as one parser reads it: ``urlsplit``,
urllib3 (under requests, for file downloads) and Twisted (under Scrapy) read some URLs
differently (``http://evil\\@127.0.0.1/`` is 127.0.0.1 to ``urlsplit`` and ``evil`` to
urllib3), so a URL is refused unless it is plain (printable ASCII, no backslash, no userinfo, no
percent-escapes or odd characters in the host) and all three parsers agree on the host and port.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from twisted.web.client import URI
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_PORT = re.compile(r"[0-9]{1,5}")


class RefusedURL(ValueError):
    """A URL that is not sent anywhere; the message is the recorded reason."""


def _host(raw: str) -> str:
    """The canonical host of an authority's host part, or RefusedURL."""
    if raw.startswith("["):
        try:
            ip = ipaddress.IPv6Address(raw[1:-1] if raw.endswith("]") else "")
        except ValueError:
            raise RefusedURL(f"malformed IPv6 host {raw!r}") from None
        if ip.ipv4_mapped or ip.sixtofour or ip.teredo or raw[1:-1].count(".") \
                or ip.scope_id:
            raise RefusedURL(f"IPv6 host that embeds an IPv4 address or a zone: {raw!r}")
        return str(ip)
    host = raw.lower()
    if host.endswith("."):
        raise RefusedURL(f"host with a trailing dot: {raw!r}")
    labels = host.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        raise RefusedURL(f"host is not a plain DNS name or address: {raw!r}")
    if all(re.fullmatch(r"[0-9]+|0x[0-9a-f]*", label) for label in labels):
        try:  # what inet_aton reads as a number: nothing but the canonical dotted quad
            if str(ipaddress.IPv4Address(host)) == host:
                return host
        except ValueError:
            pass
        raise RefusedURL(f"numeric host in a non-canonical form: {raw!r}")
    return host


def connect_target(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) that every client would connect to, or RefusedURL with why."""
    if not isinstance(url, str) or not url:
        raise RefusedURL("not a URL")
    if bad := re.search(r"[^\x21-\x7e]|\\", url):
        raise RefusedURL(f"URL holds {bad.group()!r} (control, space, non-ASCII or backslash)")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise RefusedURL(f"unparsable URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise RefusedURL(f"scheme {parts.scheme!r} is not http or https")
    if not parts.netloc:
        raise RefusedURL("URL has no host")
    if "@" in parts.netloc or "%" in parts.netloc:
        raise RefusedURL(f"userinfo or percent-escape in the host part {parts.netloc!r}")
    m = re.fullmatch(r"(\[[^\]]*\]|[^:\[\]]+)(?::([^:]*))?", parts.netloc)
    if not m:
        raise RefusedURL(f"malformed host part {parts.netloc!r}")
    host = _host(m.group(1))
    if m.group(2) is None or m.group(2) == "":
        port = DEFAULT_PORTS[scheme]
    elif _PORT.fullmatch(m.group(2)) and 0 < int(m.group(2)) < 65536:
        port = int(m.group(2))
    else:
        raise RefusedURL(f"malformed port in {parts.netloc!r}")
    # The clients' own parsers must see the same place; any disagreement is an attack.
    try:
        u3 = parse_url(url)
        tw = URI.fromBytes(url.encode("ascii"))
        readings = {
            ("urlsplit", (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS[scheme]),
            ("urllib3", (u3.host or "").strip("[]").lower(), u3.port or DEFAULT_PORTS[scheme]),
            ("twisted", tw.host.decode("ascii").strip("[]").lower(), tw.port),
        }
    except (LocationParseError, ValueError, UnicodeError) as exc:
        raise RefusedURL(f"clients cannot parse the URL: {exc}") from None
    want = m.group(1).strip("[]").lower()
    if {(h, p) for _, h, p in readings} != {(want, port)}:
        seen = ", ".join(f"{name}: {h}:{p}" for name, h, p in sorted(readings))
        raise RefusedURL(f"URL parsers disagree on where it goes ({seen})")
    return scheme, host, port


def _entry(pattern: str) -> tuple[str, int | None]:
    """An allow-list entry as (host pattern, port or None): ``host``, ``host:port``,
    ``*.suffix``, an IPv6 address, or ``[v6]:port``."""
    pattern = pattern.lower()
    if m := re.fullmatch(r"\[([^\]]+)\](?::([0-9]{1,5}))?", pattern):
        return m.group(1), int(m.group(2)) if m.group(2) else None
    if pattern.count(":") == 1:
        host, _, port = pattern.partition(":")
        return host, int(port) if port.isdigit() else -1
    return pattern, None


def host_allowed(host: str, allowed: list[str], port: int | None = None) -> bool:
    """``allowed`` holds exact hosts (``127.0.0.1``), suffix patterns (``*.archive.org``),
    either with ``:port``; ``host`` is canonical (from ``connect_target``). An address never
    matches a pattern. An entry without a port allows any ``port`` here; ``refusal`` limits
    those to the scheme's default port off this machine."""
    is_ip = host.replace(".", "").isdigit() or ":" in host
    for entry in allowed:
        pattern, want = _entry(entry)
        if want is not None and port is not None and want != port:
            continue
        if pattern.startswith("*."):
            if not is_ip and (host == pattern[2:] or host.endswith(pattern[1:])):
                return True
        elif host == pattern:
            return True
    return False


def _loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refusal(url: str, allowed: list[str]) -> str | None:
    """Why ``url`` must not be fetched under ``allowed``, or None when it may be."""
    try:
        scheme, host, port = connect_target(url)
    except RefusedURL as exc:
        return f"refused URL: {exc}"
    if not host_allowed(host, allowed, port):
        return f"host not allowed: {host}"
    # Off this machine, only the scheme's own port unless an entry names another: a redirect
    # to some other service of an allowed host (a database, SSH) is not a download.
    if port != DEFAULT_PORTS[scheme] and not _loopback_host(host) and \
            not any(_entry(e)[1] == port for e in allowed):
        return f"port not allowed: {host}:{port}"
    return None


def crawl_allow_list(base_url: str, configured: list[str]) -> list[str]:
    """The hosts a crawl of ``base_url`` may contact.

    The configured list (``SPEECHCRAWL_ALLOWED_HOSTS``: archive.org and its data nodes by
    default) applies only when it covers the base URL's own host; otherwise the crawl is of some
    other server (the loopback sample archive, a mirror) and may contact that one host alone.
    Whoever serves a source on several hosts names them all in ``SPEECHCRAWL_ALLOWED_HOSTS``.
    """
    scheme, host, port = connect_target(base_url)
    if host_allowed(host, configured, port):
        return list(configured)
    if port == DEFAULT_PORTS[scheme] or _loopback_host(host):
        return [host]
    return [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]


def is_loopback(url: str) -> bool:
    """Does ``url`` point at this machine (the sample archive, tests)? False for bad URLs."""
    try:
        _, host, _ = connect_target(url)
    except RefusedURL:
        return False
    return _loopback_host(host)
