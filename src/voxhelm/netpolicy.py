"""What an outbound fetch may reach: URL syntax, the host allowlist, public addresses.

Framework-free and I/O-free. ``voxhelm.fetch`` applies these rules before each request and
to every address a host resolves to (SSRF protection).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import quote

from voxhelm.config import normalize_host
from voxhelm.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Spelled out rather than left to ``ip.is_global``: its lists changed between Python patch
# releases, and these are exactly the ranges the security review asked for.
_DENIED_V4: tuple[ipaddress.IPv4Network, ...] = (
    _V4("0.0.0.0/8"),  # "this network", includes the unspecified address
    _V4("10.0.0.0/8"),  # RFC 1918
    _V4("100.64.0.0/10"),  # CGNAT; includes Alibaba metadata 100.100.100.200
    _V4("127.0.0.0/8"),  # loopback
    _V4("169.254.0.0/16"),  # link-local; includes 169.254.169.254 and ECS 169.254.170.2
    _V4("172.16.0.0/12"),  # RFC 1918
    _V4("192.0.0.0/24"),  # IETF protocol assignments; includes Oracle metadata 192.0.0.192
    _V4("192.0.2.0/24"),  # TEST-NET-1
    _V4("192.88.99.0/24"),  # deprecated 6to4 relay anycast
    _V4("192.168.0.0/16"),  # RFC 1918
    _V4("198.18.0.0/15"),  # benchmarking
    _V4("198.51.100.0/24"),  # TEST-NET-2
    _V4("203.0.113.0/24"),  # TEST-NET-3
    _V4("224.0.0.0/4"),  # multicast
    _V4("240.0.0.0/4"),  # reserved, includes broadcast 255.255.255.255
    _V4("168.63.129.16/32"),  # Azure wire server: a public address that is metadata
)

_DENIED_V6: tuple[ipaddress.IPv6Network, ...] = (
    _V6("::/96"),  # unspecified, loopback and deprecated IPv4-compatible ::a.b.c.d
    _V6("64:ff9b:1::/48"),  # local-use NAT64: the embedding is operator-defined, so refuse all
    _V6("100::/64"),  # discard-only
    _V6("2001::/23"),  # IETF protocol assignments: Teredo 2001::/32, benchmarking, ORCHID
    _V6("2001:db8::/32"),  # documentation
    _V6("3fff::/20"),  # documentation (RFC 9637)
    _V6("5f00::/16"),  # SRv6 SIDs
    _V6("fc00::/7"),  # unique local; includes AWS metadata fd00:ec2::254
    _V6("fe80::/10"),  # link-local
    _V6("fec0::/10"),  # deprecated site-local
    _V6("ff00::/8"),  # multicast
)

_MAPPED = _V6("::ffff:0:0/96")
_NAT64 = _V6("64:ff9b::/96")
_SIX_TO_FOUR = _V6("2002::/16")

DEFAULT_PORTS = {"http": 80, "https": 443}
STANDARD_PORTS = frozenset(DEFAULT_PORTS.values())
"""Ports a plain allowlist entry allows; any other needs ``host:port`` (or ``host:*``)."""
ANY_PORT = "*"
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x20\x7f\\]")  # whitespace, controls, backslash
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(.*)", re.DOTALL)
_HOST_NAME = re.compile(r"[a-z0-9_-]{1,63}(?:\.[a-z0-9_-]{1,63})*")
_PORT = re.compile(r"[0-9]{1,5}")
_ASCII_PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))
_DECIMAL = re.compile(r"[0-9]+")
_OCTAL = re.compile(r"0[0-7]*")
_HEX = re.compile(r"0[xX][0-9a-fA-F]+")
_HEXISH = re.compile(r"0[xX][0-9a-fA-F]*")


def is_public_address(ip: IPAddress) -> bool:
    """Whether ``ip`` is a public unicast address a fetch may connect to.

    IPv6 forms that carry an IPv4 address (mapped ``::ffff:a.b.c.d``, NAT64
    ``64:ff9b::/96``, 6to4 ``2002::/16``) are judged by the address they carry.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False
        if ip in _MAPPED or ip in _NAT64:
            return is_public_address(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip in _SIX_TO_FOUR:
            return is_public_address(ipaddress.IPv4Address((int(ip) >> 80) & 0xFFFFFFFF))
        if any(ip in net for net in _DENIED_V6):
            return False
    elif any(ip in net for net in _DENIED_V4):
        return False
    return ip.is_global and not (
        ip.is_multicast or ip.is_reserved or ip.is_link_local or ip.is_loopback
    )


def parse_ip_host(host: str) -> IPAddress | None:
    """Parse a lowercased URL host as an IP literal; ``[...]`` holds IPv6.

    Returns ``None`` for a host name. IPv4 is read the way ``inet_aton`` and browsers read
    it, so ``2130706433``, ``0x7f000001``, ``0177.0.0.1`` and ``127.1`` are all 127.0.0.1
    and can never slip through as names. Raises ``ValueError`` for a host that looks numeric
    but is not a valid address.
    """
    if "%" in host:  # zone ids and percent-encoded bytes have no place in a fetch host
        raise ValueError("percent sign in host")
    if host.startswith("[") and host.endswith("]"):
        return ipaddress.IPv6Address(host[1:-1])
    labels = host.split(".")
    if labels[-1] == "" and len(labels) > 1:
        labels.pop()
    last = labels[-1]
    if not (_DECIMAL.fullmatch(last) or _HEXISH.fullmatch(last)):
        return None
    return ipaddress.IPv4Address(_inet_aton(labels))


def _inet_aton(parts: list[str]) -> int:
    if len(parts) > 4:
        raise ValueError("too many parts for an IPv4 address")
    values: list[int] = []
    for part in parts:
        if _HEX.fullmatch(part):
            values.append(int(part[2:], 16))
        elif _OCTAL.fullmatch(part):
            values.append(int(part, 8))
        elif _DECIMAL.fullmatch(part) and not part.startswith("0"):
            values.append(int(part, 10))
        else:
            raise ValueError("not an IPv4 number")
    *head, last = values
    if any(v > 0xFF for v in head) or last >= 256 ** (4 - len(head)):
        raise ValueError("IPv4 part out of range")
    address = last
    for index, value in enumerate(head):
        address += value << (8 * (3 - index))
    return address


class UrlNotAllowed(InvalidInput):
    """The URL is refused by policy: malformed, not allowlisted, or not a public address."""

    code = "url_not_allowed"


@dataclass(frozen=True)
class TargetUrl:
    """A URL that passed :func:`parse_url`, split into what a request needs."""

    scheme: str  # http or https
    host: str  # canonical: lowercased name, dotted-quad IPv4, or bracketed IPv6
    port: int
    explicit_port: bool  # False when the port is the scheme's default
    target: str  # path and query, ASCII only, no fragment
    ip: IPAddress | None  # set when the host is an IP literal

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}" if self.explicit_port else self.host

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.authority}{self.target}"


def canonical_host(host: str) -> str:
    """Normalize a configured host the way URL hosts are (IP literals in canonical form);
    a port the entry names is dropped."""
    name, _port = _split_entry(host.strip().lower())
    name = normalize_host(name)
    if ":" in name and not name.startswith("["):
        name = f"[{name}]"
    try:
        ip = parse_ip_host(name)
    except ValueError:
        return name
    if ip is None:
        return name
    return f"[{ip}]" if ip.version == 6 else str(ip)


def allowlist_entry(entry: str) -> str:
    """Normalize an allowlist entry: ``host`` (ports 80 and 443), ``host:port`` (that port
    too) or ``host:*`` (any port); the host as :func:`canonical_host` writes it."""
    _name, port = _split_entry(entry.strip().lower())
    host = canonical_host(entry)
    return host if port is None else f"{host}:{port}"


def _split_entry(entry: str) -> tuple[str, str | None]:
    """``host[:port]`` -> (host, port or ``*`` or None); a bare IPv6 address has no port."""
    if entry.startswith("["):
        close = entry.find("]")
        rest = entry[close + 1 :] if close >= 0 else ""
        if rest.startswith(":") and (rest[1:] == ANY_PORT or _PORT.fullmatch(rest[1:])):
            return entry[: close + 1], rest[1:]
        return entry, None
    name, colon, port = entry.rpartition(":")
    if colon and ":" not in name and (port == ANY_PORT or _PORT.fullmatch(port)):
        return name, port
    return entry, None


def _host_listed(host: str, allowed: frozenset[str]) -> bool:
    return host in allowed or any(e.startswith(f"{host}:") for e in allowed)


def _port_allowed(host: str, port: int, allowed: frozenset[str]) -> bool:
    return (
        (port in STANDARD_PORTS and host in allowed)
        or f"{host}:{port}" in allowed
        or f"{host}:{ANY_PORT}" in allowed
    )


def parse_url(url: str, allowed: frozenset[str], trusted: frozenset[str]) -> TargetUrl:
    """Parse and check a URL against canonical host sets; raises :class:`UrlNotAllowed`.

    Checks, in the reference's order: a hostname, the allowlist, then the scheme (``https``;
    ``http`` only for ``trusted``). Stricter than ``urlsplit``: whitespace, control
    characters, backslashes, userinfo, percent-encoded or otherwise odd hosts and ports are
    refused outright rather than interpreted.
    """
    if _FORBIDDEN_CHARS.search(url):
        raise UrlNotAllowed("URL must not contain whitespace, control characters or backslashes.")
    match = _SCHEME.fullmatch(url)
    scheme, rest = (match[1].lower(), match[2]) if match else ("", url)
    if not rest.startswith("//"):
        raise UrlNotAllowed("URL input must include a hostname.")
    end = min((i for i in (rest.find(c, 2) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[2:end], rest[end:]
    if "@" in authority:
        raise UrlNotAllowed("URLs must not contain user credentials.")
    raw_host, port_text = _split_host_port(authority)
    if not raw_host:
        raise UrlNotAllowed("URL input must include a hostname.")
    host = normalize_host(raw_host)
    invalid = UrlNotAllowed("URL host is not a valid host name or IP address.")
    try:
        ip = parse_ip_host(host)
    except ValueError:
        raise invalid from None
    if ip is not None:
        host = f"[{ip}]" if ip.version == 6 else str(ip)
    elif len(host) > 253 or not _HOST_NAME.fullmatch(host):
        raise invalid
    if not _host_listed(host, allowed):
        raise UrlNotAllowed("URL host is not in the configured allowlist.")
    if scheme == "http" and host not in trusted:
        raise UrlNotAllowed("Plain HTTP URLs are only allowed for trusted internal hosts.")
    if scheme not in DEFAULT_PORTS:
        raise UrlNotAllowed("Only https URLs are allowed by default.")
    port = _checked_port(DEFAULT_PORTS[scheme], port_text, host, allowed)
    target = tail.split("#", 1)[0]
    target = target if target.startswith("/") else "/" + target
    # Non-ASCII path or query characters are percent-encoded; existing escapes stay as sent.
    target = quote(target, safe=_ASCII_PRINTABLE)
    return TargetUrl(scheme, host, port, port != DEFAULT_PORTS[scheme], target, ip)


def _checked_port(default: int, text: str | None, host: str, allowed: frozenset[str]) -> int:
    port = default
    if text is not None:
        if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
            raise UrlNotAllowed("URL port is not valid.")
        port = int(text)
    if not _port_allowed(host, port, allowed):
        raise UrlNotAllowed(
            f"URL port {port} is not allowed for this host; the allowlist names ports "
            "other than 80 and 443 as host:port."
        )
    return port


def _split_host_port(authority: str) -> tuple[str, str | None]:
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0 or (close + 1 < len(authority) and authority[close + 1] != ":"):
            raise UrlNotAllowed("URL host is not a valid host name or IP address.")
        rest = authority[close + 1 :]
        return authority[: close + 1], (rest[1:] if rest else None)
    host, colon, port = authority.partition(":")
    return host, (port if colon else None)
