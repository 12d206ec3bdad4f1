"""Where webhooks may post: public addresses only, unless an allowlist names the network.

A webhook URL comes from an API client, and Sigap posts to it from inside the network it
runs in; without a policy, a webhook is a way to reach the cloud metadata service, the
InfluxDB admin API on loopback or anything else on the private network (issue #22).
`EgressPolicy.check` resolves a host and refuses it when any of its addresses is not
globally routable; registration asks it, and so does every connection a `pinned_client`
opens, which then connects to the very address that was checked (DNS cannot change the
answer between the check and the connect).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Final
from urllib.parse import urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# host, port -> addresses as text; raises OSError (socket.gaierror) when the name is unknown.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

ALLOW_SETTING: Final = "SIGAP_DISPATCH_WEBHOOK_ALLOW_NETS"
RESOLVE_TIMEOUT_S: Final = 5.0
MAX_ERROR_CHARS: Final = 200  # a delivery's last_error, whatever it says


def _nets(*cidrs: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)


# Ranges with a name, so that a refusal says which rule it hit; `is_reserved` and
# `is_global` catch the rest (Python 3.11 lacks some of these, e.g. 3fff::/20).
_NAMED_RANGES: Final[tuple[tuple[str, tuple[IPNetwork, ...]], ...]] = (
    ("private", _nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")),
    ("unique-local", _nets("fc00::/7")),
    ("site-local", _nets("fec0::/10")),
    ("carrier-grade NAT", _nets("100.64.0.0/10")),
    (
        "documentation",
        _nets("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20"),
    ),
    ("benchmarking", _nets("198.18.0.0/15", "2001:2::/48")),
    ("'this network'", _nets("0.0.0.0/8")),
    ("broadcast", _nets("255.255.255.255/32")),
    ("IETF protocol", _nets("192.0.0.0/24")),
    ("6to4 relay", _nets("192.88.99.0/24")),
    ("local-use NAT64", _nets("64:ff9b:1::/48")),
    ("Teredo", _nets("2001::/32")),
    ("discard-only", _nets("100::/64")),
)
# NAT64 (RFC 6052): a translator connects to the IPv4 address in the last 32 bits.
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")


class EgressError(Exception):
    """A webhook target Sigap does not post to; `str()` explains it to the API client."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(host, reason)
        self.host = host
        self.reason = reason

    @property
    def short(self) -> str:
        """The delivery's last_error: short, and nothing a receiver wrote."""
        return f"refused: {self.reason}"[:MAX_ERROR_CHARS]

    def __str__(self) -> str:
        return f"webhook host {self.host!r}: {self.reason}"


class EgressRefused(EgressError):
    """The host is, or resolves to, an address that is not public (and not allowlisted)."""

    def __init__(self, host: str, address: IPAddress, why: str) -> None:
        judged = _judged(address)  # 169.254.169.254 for ::ffff:169.254.169.254
        literal = _is_literal(host)
        super().__init__(host, f"{'' if literal else 'resolves to '}{judged} ({why})")
        self.address = address
        self.why = why
        shown = str(judged) if judged == address else f"{judged} (as {address})"
        if not literal:
            where = f"resolves to {shown}, "
        elif host != str(address) or judged != address:  # 127.1, ::ffff:a9fe:a9fe ...
            where = f"is {shown}, "
        else:
            where = "is "
        self._sentence = (
            f"webhook host {host!r} {where}{_article(why)} {why} address; Sigap only posts "
            f"to public addresses unless {ALLOW_SETTING} lists it"
        )

    def __str__(self) -> str:
        return self._sentence


class UnresolvedHost(EgressError):
    """The host name did not resolve (unknown, or no answer in time)."""

    def __str__(self) -> str:
        return (
            f"webhook host {self.host!r} {self.reason}; Sigap checks where a webhook "
            "posts before it accepts or sends one"
        )

    @property
    def short(self) -> str:
        """The delivery's last_error for a name that does not resolve."""
        return f"UnresolvedHost: {self.reason}"[:MAX_ERROR_CHARS]


def forbidden_reason(address: IPAddress) -> str | None:
    """Why no webhook may go to this address ("loopback", "private" ...); None if public."""
    if isinstance(address, ipaddress.IPv6Address):
        # IPv4-mapped (::ffff:a.b.c.d) and NAT64 addresses reach the IPv4 address inside:
        # judge that one alone (Python 3.11's is_global does not look inside).
        inner = address.ipv4_mapped or (
            ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in _NAT64 else None
        )
        if inner is not None:
            return forbidden_reason(inner)
        if address.sixtofour is not None:  # 2002::/16 is routed to the IPv4 address inside
            why = forbidden_reason(address.sixtofour)
            if why is not None:
                return f"6to4-wrapped {why}"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    for name, networks in _NAMED_RANGES:
        if any(address in network for network in networks):
            return name
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "non-global"
    return None


def parse_networks(entries: Iterable[str | IPNetwork]) -> tuple[IPNetwork, ...]:
    """Networks from CIDR text ("10.20.0.0/16"; a bare address is a /32 or /128)."""
    networks: list[IPNetwork] = []
    for entry in entries:
        if isinstance(entry, str):
            entry = entry.strip()
            if not entry:
                continue
            try:
                entry = ipaddress.ip_network(entry)  # strict: 10.0.0.5/8 is a typo, not /8
            except ValueError as exc:
                raise ValueError(
                    f"{ALLOW_SETTING}: {entry!r} is not a network (CIDR such as 10.20.0.0/16, "
                    f"or one address): {exc}"
                ) from None
        networks.append(entry)
    return tuple(networks)


def url_problem(url: str) -> str | None:
    """What is wrong with a webhook URL without resolving anything, or None."""
    if any(ch <= " " or ch in "\\\x7f" for ch in url):
        # A backslash is a slash to some parsers and userinfo to others
        # (http://127.0.0.1\@169.254.169.254/): no reading of the host may differ.
        return "url must not contain spaces, control characters or backslashes"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port out of range
        parsed = httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as exc:
        return f"url is not valid: {exc}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "url must be an http:// or https:// URL with a host"
    if "@" in parts.netloc or parsed.userinfo:
        return "url must not contain a user name or password (user@host); put them in a header"
    if "%" in parts.hostname:
        return "url host must not be percent-encoded or carry an IPv6 zone"
    # Sigap posts with httpx: refuse any URL where it would read another host than this.
    if _httpx_host(parts.hostname) != parsed.host:
        return "url host is ambiguous"
    return None


class EgressPolicy:
    """Which addresses webhooks may reach: public ones, and the allowlisted networks."""

    def __init__(
        self,
        allow: Iterable[str | IPNetwork] = (),
        *,
        resolver: Resolver | None = None,
        resolve_timeout_s: float = RESOLVE_TIMEOUT_S,
    ) -> None:
        self.allow = parse_networks(allow)
        self._resolver = resolver or system_resolver
        self.resolve_timeout_s = resolve_timeout_s

    def reason(self, address: IPAddress) -> str | None:
        """Why this address is refused, or None (public, or in an allowed network)."""
        inner = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        if any(address in net or (inner is not None and inner in net) for net in self.allow):
            return None
        return forbidden_reason(address)

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Every address the host stands for (numeric forms as the socket would read them)."""
        try:
            # 127.1, 0x7f.0.0.1, 2852039166 ...: libc's reading, without any lookup.
            infos = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
            )
            found: Sequence[str] = [str(info[4][0]) for info in infos]
        except (OSError, UnicodeError):
            try:
                found = await asyncio.wait_for(
                    self._resolver(host, port), timeout=self.resolve_timeout_s
                )
            except TimeoutError:
                raise UnresolvedHost(
                    host, f"did not resolve within {self.resolve_timeout_s:g} s"
                ) from None
            except (OSError, UnicodeError):
                raise UnresolvedHost(host, "does not resolve") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(a) for a in found))
        if not addresses:
            raise UnresolvedHost(host, "does not resolve")
        return addresses

    async def check(self, host: str, port: int) -> list[str]:
        """The host's addresses, all allowed; EgressRefused if any one is not."""
        addresses = await self.resolve(host, port)
        for address in addresses:
            why = self.reason(address)
            if why is not None:
                raise EgressRefused(host, address, why)
        return [str(address) for address in addresses]

    async def check_url(self, url: str) -> None:
        """Refuse a webhook URL (EgressError, ValueError) unless it may be posted to."""
        problem = url_problem(url)
        if problem is not None:
            raise ValueError(problem)
        await self.check(*host_and_port(url))


async def system_resolver(host: str, port: int) -> list[str]:
    """The system's answer for a host name (getaddrinfo in the loop's worker threads)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def host_and_port(url: str) -> tuple[str, int]:
    """The host (as httpx sends it: IDNA, no brackets) and port a URL connects to."""
    parsed = httpx.URL(url)
    return parsed.raw_host.decode("ascii"), parsed.port or (443 if parsed.scheme == "https" else 80)


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """A network backend that connects only to addresses the policy allows, as checked."""

    def __init__(
        self, policy: EgressPolicy, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self.policy = policy
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve and check the host, then connect to a checked address (TLS keeps the name)."""
        failed: Exception | None = None
        for address in await self.policy.check(host, port):
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failed = exc  # the next address, as a resolver-driven connect would
        assert failed is not None  # check() returns at least one address
        raise failed

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Never: a webhook goes over TCP."""
        raise EgressError(path, "a Unix socket")

    async def sleep(self, seconds: float) -> None:
        """As the wrapped backend sleeps."""
        await self._inner.sleep(seconds)


class PinnedClient(httpx.AsyncClient):
    """An httpx client whose every connection went through `policy` (see pinned_client)."""

    def __init__(
        self, policy: EgressPolicy, transport: httpx.AsyncBaseTransport, timeout_s: float
    ) -> None:
        super().__init__(
            transport=transport, timeout=timeout_s, follow_redirects=False, trust_env=False
        )
        self.policy = policy


class _PinnedTransport(httpx.AsyncHTTPTransport):
    def __init__(
        self,
        backend: PinnedBackend,
        verify: ssl.SSLContext | bool,
        limits: httpx.Limits,
    ) -> None:
        super().__init__(verify=verify, trust_env=False, limits=limits)
        # httpx has no public way to give its pool a network backend. The pool built
        # above holds no connection yet; this one is the same but for the backend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


def pinned_client(
    policy: EgressPolicy,
    *,
    timeout_s: float = 10.0,
    verify: ssl.SSLContext | bool = True,
    inner: httpcore.AsyncNetworkBackend | None = None,
) -> PinnedClient:
    """An httpx client for webhooks: every connection checked and pinned, no redirects and
    no proxy from the environment (either could send a post somewhere unchecked)."""
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    transport = _PinnedTransport(PinnedBackend(policy, inner), verify, limits)
    return PinnedClient(policy, transport, timeout_s)


def http_error(status: int) -> str:
    """A failed answer as last_error: the status and its standard phrase, never the body."""
    phrase = httpx.codes.get_reason_phrase(status)
    return f"HTTP {status} {phrase}" if phrase else f"HTTP {status}"


_TRANSPORT_REASONS: Final[dict[type[httpx.HTTPError], str]] = {
    httpx.ConnectTimeout: "no connection within the timeout",
    httpx.ReadTimeout: "no answer within the timeout",
    httpx.WriteTimeout: "could not send within the timeout",
    httpx.PoolTimeout: "no free connection within the timeout",
    httpx.ConnectError: "could not connect",
    httpx.ReadError: "connection lost while reading",
    httpx.WriteError: "connection lost while sending",
    httpx.RemoteProtocolError: "the receiver broke the HTTP protocol",
}
_ERRNO_REASONS: Final[dict[int, str]] = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ECONNABORTED: "connection aborted",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ETIMEDOUT: "timed out",
    errno.EPIPE: "connection closed",
}


def transport_error(exc: httpx.HTTPError) -> str:
    """A transport failure as last_error: its class and a fixed reason, not the peer's text."""
    name = type(exc).__name__
    reason = _os_reason(exc) or next(
        (text for kind, text in _TRANSPORT_REASONS.items() if isinstance(exc, kind)), None
    )
    return (f"{name}: {reason}" if reason else name)[:MAX_ERROR_CHARS]


def _os_reason(exc: BaseException) -> str | None:
    # httpx wraps httpcore's error, which wraps the OSError (or the TLS error) underneath.
    seen: list[BaseException] = [exc]
    while seen and len(seen) < 32:
        current = seen.pop(0)
        if isinstance(current, ssl.SSLCertVerificationError):
            return "certificate not trusted"
        if isinstance(current, ssl.SSLError):
            return "TLS handshake failed"
        if isinstance(current, OSError) and current.errno in _ERRNO_REASONS:
            return _ERRNO_REASONS[current.errno]
        if isinstance(current, BaseExceptionGroup):
            seen.extend(current.exceptions)
        seen.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return None


def _judged(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _is_literal(host: str) -> bool:
    # An address rather than a name: 10.0.0.1, ::1, or a form only libc reads (127.1).
    try:
        socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError):
        return False
    return True


def _article(word: str) -> str:
    vowel = word[:1] in ("a", "e", "i", "o") or word.startswith(("un", "IETF"))
    return "an" if vowel and not word.startswith("uni") else "a"


def _httpx_host(hostname: str) -> str:
    try:
        return httpx.URL(scheme="http", host=hostname).host
    except httpx.InvalidURL:
        return ""
