"""Where an HTTP/HTTPS subscription may deliver: the guard against server-side request
forgery for subscriber URLs.

An API caller chooses the URL at Subscribe and pushgate POSTs to it later, from inside
the operator's network. Amazon SNS delivers only to public endpoints ("Amazon SNS does
not currently support private HTTP(S) endpoints",
https://docs.aws.amazon.com/sns/latest/dg/sns-http-https-endpoint-as-subscriber.html), so
pushgate refuses loopback, private, link-local (the cloud metadata service at
169.254.169.254 and fd00:ec2::254), shared, multicast and reserved addresses unless the
operator allows one explicitly.

Two settings, comma-separated like :func:`pushgate.providers.hosts.parse_allow_list`:
``PUSHGATE_SUBSCRIPTION_ALLOWED_HOSTS`` (empty: any public host) and
``PUSHGATE_SUBSCRIPTION_DENIED_HOSTS``. An entry is a host name (``hooks.example.com``), a
suffix wildcard (``*.example.com``: subdomains, not the bare domain), ``*`` (any host), an
IP address (``10.1.2.3``, ``[fd00::5]``) or a CIDR range (``10.0.0.0/8``). Names and
addresses may carry a port (``hooks.example.com:8443``, ``10.1.2.3:8080``,
``[fd00::5]:8080``); an entry without one matches every port, unlike the device-URL
allow-lists, because subscribers often listen on high ports and a deny entry must cover
them all. The deny list wins over the allow list: a denied name, or a denied address
among a name's addresses, refuses the URL.

A non-empty allow list is exclusive: a host passes when a name or wildcard entry lists
its name, when IP or CIDR entries cover its address (for a name: every address it
resolves to), or when there is a ``*`` entry (``*`` plus a few CIDR ranges keeps every
public host while allowing those private ones). At Subscribe time a name that no name
entry lists passes if the list has IP or CIDR entries, since only its addresses can
tell. Whatever the lists, a non-public address passes only when an IP or CIDR allow
entry covers it, or when the name that resolved to it is listed by a name or wildcard
entry (not by ``*``): ``localhost`` on the allow list admits 127.0.0.1 for that name.

Two checks: :meth:`SubscriberHosts.refusal` at Subscribe (no DNS) and
:meth:`SubscriberHosts.resolve` at send time, which resolves the name, checks every
address and returns the one to connect to. The sender must connect to that address and
no other (:func:`curl_connect_to` gives libcurl's ``CONNECT_TO`` entry), so
that a second DNS answer cannot swap in an internal address (DNS rebinding); it must also
not follow redirects, nor go through a proxy taken from the environment.

A URL may carry a user name and password (``https://user:pass@host/``) for the
subscriber's Basic or Digest authentication, as on SNS, over https only; the host checks
apply to the host after them.

Host spellings that the resolver reads as IPv4 but :mod:`ipaddress` does not
(``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``) are refused: a host that ends in
a number must be a dotted-quad address, as in the WHATWG URL standard's "ends in a number
checker" (https://url.spec.whatwg.org/#ends-in-a-number-checker). Names go through IDNA
first, so full-width digits (U+FF11 for 1 ...) become the address they spell.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import re
import socket
import time
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import urlsplit

from pushgate.providers.hosts import parse_allow_list

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_PORTS = {"http": 80, "https": 443}
RESOLVE_TTL = 30.0
RESOLVE_CACHE_SIZE = 10_000

# Never public, whatever this Python's is_global says (its tables changed in 2024, with
# CVE-2024-4032): the IANA IPv4 and IPv6 special-purpose address registries.
_NON_PUBLIC: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/96",  # unspecified, loopback and the deprecated IPv4-compatible addresses
        "64:ff9b:1::/48",  # local-use NAT64: the embedded IPv4 address cannot be read
        "100::/64",
        "2001::/23",  # IETF protocol assignments, Teredo (2001::/32) among them
        "2001:db8::/32",
        "fc00::/7",  # unique local, fd00:ec2::254 (the EC2 metadata service) among them
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LOOPBACK = ipaddress.IPv4Address("127.0.0.1")

_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
# RFC 3986 userinfo: a user name, and a password after a colon (SNS's Basic and Digest
# authentication for HTTPS subscribers); no "@", "\\" or "/", which parsers disagree on.
_USERINFO = re.compile(
    r"(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+(?::(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*)?"
)
_NUMBER = re.compile(r"[0-9]+|0x[0-9a-f]*")


class HostRefused(Exception):
    """A subscriber URL pushgate must not request; ``reason`` says why, in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ResolvedTarget:
    """A checked subscriber URL and the address (an IP, as text) to connect to for it."""

    url: str
    host: str  # lower-case ASCII (IDNA), no trailing dot, no brackets
    port: int
    address: str


class _Url(NamedTuple):
    host: str
    port: int
    ip: IPAddress | None  # when the host is an address literal


class _Listing(enum.Enum):
    """How the allow list admits a name, before its addresses are known."""

    BY_NAME = "by a name or wildcard entry: its addresses may be non-public"
    ANY = "by an empty allow list or a * entry: its addresses must be public"
    NO = "not by name: IP or CIDR entries must cover its addresses"


@dataclass(frozen=True)
class _Entry:
    """One parsed allow- or deny-list entry: a name pattern or a network, maybe a port."""

    name: str | None
    network: IPNetwork | None
    port: int | None

    def matches_name(self, host: str, port: int) -> bool:
        if self.name is None or self.port not in (None, port):
            return False
        if self.name == "*":
            return True
        if self.name.startswith("*."):
            return host.endswith(self.name[1:]) and host != self.name[2:]
        return host == self.name

    def matches_address(self, address: IPAddress, port: int) -> bool:
        if self.port not in (None, port):
            return False
        if self.name == "*":
            return True
        network = self.network
        return network is not None and any(form in network for form in _forms(address))


@dataclass(frozen=True)
class SubscriberHosts:
    """The operator's allow and deny lists for subscriber URLs (see the module docstring)."""

    allowed: tuple[str, ...] = ()
    denied: tuple[str, ...] = ()
    _allow: tuple[_Entry, ...] = field(init=False, repr=False, compare=False)
    _deny: tuple[_Entry, ...] = field(init=False, repr=False, compare=False)
    # Resolutions by (host, port), reused for RESOLVE_TTL seconds: a fan-out posts to the
    # same hosts over and over, and every lookup is a thread of the loop's executor. The
    # addresses are checked on every use all the same.
    _resolved: dict[tuple[str, int], tuple[float, list[IPAddress]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        """Parse the entries now, so that a bad setting stops start-up (ValueError)."""
        object.__setattr__(self, "_allow", tuple(map(_parse_entry, parse_allow_list(self.allowed))))
        object.__setattr__(self, "_deny", tuple(map(_parse_entry, parse_allow_list(self.denied))))

    @classmethod
    def from_settings(cls, allowed: str, denied: str) -> SubscriberHosts:
        return cls(parse_allow_list(allowed), parse_allow_list(denied))

    def refusal(self, url: str) -> str | None:
        """Why ``url`` may not be subscribed, or None; no DNS (Subscribe time).

        ``localhost`` and its subdomains are judged as 127.0.0.1 already, since resolvers
        must answer them with a loopback address (RFC 6761 sec. 6.3).
        """
        try:
            target = _split(url)
            if target.ip is None:
                listing = self._check_name(target)
                if target.host == "localhost" or target.host.endswith(".localhost"):
                    self._check_address(target, _LOOPBACK, listing)
            else:
                self._check_address(target, target.ip, _Listing.NO)
        except HostRefused as exc:
            return exc.reason
        return None

    async def resolve(self, url: str) -> ResolvedTarget:
        """Check ``url`` as :meth:`refusal` does, resolve its host and check every address.

        Raises :class:`HostRefused`, or ``OSError`` (``socket.gaierror``) when the name
        does not resolve: a transport failure, to be retried like a refused connection.
        The first address of the resolver's answer is the one to connect to.
        """
        target = _split(url)
        if target.ip is not None:
            self._check_address(target, target.ip, _Listing.NO)
            return ResolvedTarget(url, target.host, target.port, str(target.ip))
        listing = self._check_name(target)
        addresses = await self._addresses(target)
        for address in addresses:
            self._check_address(target, address, listing)
        return ResolvedTarget(url, target.host, target.port, str(addresses[0]))

    async def _addresses(self, target: _Url) -> list[IPAddress]:
        key = (target.host, target.port)
        now = time.monotonic()
        cached = self._resolved.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        infos = await asyncio.get_running_loop().getaddrinfo(
            target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
        addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0])) for info in infos))
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, f"{target.host} has no address")
        if len(self._resolved) >= RESOLVE_CACHE_SIZE:
            self._resolved.clear()
        self._resolved[key] = (now + RESOLVE_TTL, addresses)
        return addresses

    def _check_name(self, target: _Url) -> _Listing:
        """Refuse a denied name, or one the allow list cannot admit; say how it is listed."""
        host, port = target.host, target.port
        if any(entry.matches_name(host, port) for entry in self._deny):
            raise HostRefused(f"host {host} is on the deny list")
        if any(e.name != "*" and e.matches_name(host, port) for e in self._allow):
            return _Listing.BY_NAME
        if not self._allow or self._star(port):
            return _Listing.ANY
        if not any(entry.network is not None for entry in self._allow):
            raise HostRefused(f"host {host} is not on the allow list")
        return _Listing.NO

    def _check_address(self, target: _Url, address: IPAddress, listing: _Listing) -> None:
        port = target.port
        if any(entry.matches_address(address, port) for entry in self._deny):
            raise HostRefused(f"address {address} is on the deny list")
        covered = any(
            entry.network is not None and entry.matches_address(address, port)
            for entry in self._allow
        )
        if covered or listing is _Listing.BY_NAME:
            return
        if listing is _Listing.NO and (self._allow and not self._star(port)):
            raise HostRefused(f"address {address} is not on the allow list")
        if not is_public(address):
            raise HostRefused(f"address {address} is not public")

    def _star(self, port: int) -> bool:
        return any(entry.name == "*" and entry.port in (None, port) for entry in self._allow)


def is_public(address: IPAddress) -> bool:
    """Whether ``address`` is a globally reachable unicast address.

    An IPv6 address that carries an IPv4 one (IPv4-mapped ``::ffff:a.b.c.d``, NAT64
    ``64:ff9b::a.b.c.d``, 6to4 ``2002:AABB:CCDD::``) is judged by the IPv4 address,
    which is where the packets end up.
    """
    forms = _forms(address)
    inner = forms[-1]
    if inner is not address:
        return is_public(inner)
    return address.is_global and not any(address in net for net in _NON_PUBLIC)


def curl_connect_to(target: ResolvedTarget) -> str:
    """The ``CURLOPT_CONNECT_TO`` entry that pins libcurl to ``target.address``.

    libcurl keeps the URL's name for ``Host``, SNI and the certificate check and connects
    to the address given here; IPv6 addresses go in brackets
    (https://curl.se/libcurl/c/CURLOPT_CONNECT_TO.html).
    """
    address = _bracket(ipaddress.ip_address(target.address))
    host = _bracket(ipaddress.ip_address(target.host)) if ":" in target.host else target.host
    return f"{host}:{target.port}:{address}:{target.port}"


def _bracket(address: IPAddress) -> str:
    return f"[{address}]".replace("%", "%25") if address.version == 6 else str(address)


def _forms(address: IPAddress) -> tuple[IPAddress, ...]:
    """``address``, followed by the IPv4 address it carries, if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return (address,)
    if address.ipv4_mapped is not None:
        return (address, address.ipv4_mapped)
    if address in _NAT64:
        return (address, ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address.sixtofour is not None:
        return (address, address.sixtofour)
    return (address,)


def _split(url: str) -> _Url:
    """The scheme, normalised host and port of ``url``, or :class:`HostRefused`."""
    try:
        parts = urlsplit(url)
        explicit_port = parts.port
    except ValueError as exc:
        raise HostRefused("not a valid URL") from exc
    if parts.scheme not in DEFAULT_PORTS:
        raise HostRefused("not an http or https URL")
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at:
        if parts.scheme != "https":
            raise HostRefused("the URL carries credentials, which are sent over https only")
        if not _USERINFO.fullmatch(userinfo):
            raise HostRefused("the URL carries credentials that are not valid")
    if not parts.hostname:
        raise HostRefused("the URL has no host")
    if explicit_port == 0:
        raise HostRefused("port 0")
    host, ip = _normalise_host(parts.hostname)
    if "[" in parts.netloc and (ip is None or ip.version != 6):
        raise HostRefused("not a valid IPv6 address")
    return _Url(host, explicit_port or DEFAULT_PORTS[parts.scheme], ip)


def _normalise_host(raw: str) -> tuple[str, IPAddress | None]:
    """Lower-case ASCII without a trailing dot, and the address if the host is one."""
    if ":" in raw:
        if "%" in raw:
            raise HostRefused("IPv6 zone identifiers are not allowed")
        ip = _parse_ip(raw)
        if ip is None:
            raise HostRefused("not a valid IPv6 address")
        return str(ip), ip
    try:
        host = raw.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise HostRefused("not a valid host name") from exc
    host = host.removesuffix(".")
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise HostRefused("not a valid host name")
    if _NUMBER.fullmatch(labels[-1]):
        ip = _parse_ip(host)
        if not isinstance(ip, ipaddress.IPv4Address):
            raise HostRefused("not a dotted-quad IPv4 address")
        return str(ip), ip
    return host, None


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _parse_entry(text: str) -> _Entry:
    """One list entry (see the module docstring); ValueError names a malformed one."""
    if "/" in text:
        return _Entry(None, ipaddress.ip_network(text, strict=False), None)
    host, port = text, None
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"malformed host entry {text!r}")
        port = _entry_port(text, rest[1:]) if rest else None
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _entry_port(text, port_text)
    if (ip := _parse_ip(host)) is not None:
        return _Entry(None, ipaddress.ip_network(ip), port)
    if host == "*":
        return _Entry("*", None, port)
    wildcard = host.startswith("*.")
    try:
        name, address = _normalise_host(host[2:] if wildcard else host)
    except HostRefused as exc:
        raise ValueError(f"malformed host entry {text!r}: {exc.reason}") from exc
    if address is not None:
        if wildcard:
            raise ValueError(f"malformed host entry {text!r}: a wildcard over an address")
        return _Entry(None, ipaddress.ip_network(address), port)
    return _Entry(f"*.{name}" if wildcard else name, None, port)


def _entry_port(entry: str, text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"malformed port in host entry {entry!r}")
    return int(text)
