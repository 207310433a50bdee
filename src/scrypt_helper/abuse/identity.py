"""Who is asking: the client address behind trusted proxies, and its API key if any."""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import re
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
API_KEY_HEADER = "x-api-key"
_PORT = re.compile(r"[0-9]{1,5}")


@dataclass(frozen=True, slots=True)
class UnparsableAddress:
    """An ``X-Forwarded-For`` entry that is no address, known only by the trusted hop that reported it.

    Every such entry from one hop is one client: varying the text buys no fresh budget, and the
    hop's own address (the proxy, and everyone else behind it) is never charged for it.
    """

    reported_by: IPAddress

    def __str__(self) -> str:
        return f"unparsable@{self.reported_by}"


ClientAddress = IPAddress | UnparsableAddress


@dataclass(frozen=True, slots=True)
class PrefixLengths:
    """How many leading bits of an address make its ``ip_prefix``, per address family.

    /24 and /56 are each about 256 subscribers: a carrier-NAT or office range of IPv4
    addresses, or the /64s of one residential IPv6 allocation (RIPE-690) or carrier pool.
    """

    ipv4: int = 24
    ipv6: int = 56

    def prefix(self, address: ClientAddress) -> str:
        """The network an address counts in; an unparsable entry's hop forms a prefix of its own."""
        if isinstance(address, UnparsableAddress):
            return str(address)
        width = address.max_prefixlen
        bits = self.ipv4 if width == 32 else self.ipv6
        # Masking the integer costs a third of building an ip_network; the text is the same.
        network = type(address)(int(address) >> (width - bits) << (width - bits))
        return f"{address_text(network)}/{bits}"


def address_text(address: IPAddress) -> str:
    """``str(address)``. An IPv6 address is written by the C library where its text is the same
    (RFC 5952's), at a tenth of the cost of ``ipaddress``'s own; where it would differ (the
    C library writes the last 32 bits of some forms as dotted IPv4), by ``ipaddress``."""
    if address.version == 4:
        return str(address)
    text = socket.inet_ntop(socket.AF_INET6, address.packed)
    return str(address) if "." in text else text


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """The identity rules count: address, its prefix (see ``PrefixLengths``), and the API key's name.

    The texts of the address and its prefix are made once, when first asked for: the rules and
    ban markers of one request ask for them several times, and an IPv6 address's text is costly.
    """

    ip: ClientAddress
    api_key: str | None = None
    prefix_lengths: PrefixLengths = PrefixLengths()
    # Sent an X-API-Key that matches no key: counted by address (``bad_key`` rules), then refused.
    unknown_key: bool = False
    _address: str | None = field(default=None, init=False, repr=False, compare=False)
    _ip_prefix: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def presents_key(self) -> bool:
        """Whether the request carried an ``X-API-Key`` header, known or not."""
        return self.api_key is not None or self.unknown_key

    @property
    def address(self) -> str:
        """The address as text (an unparsable entry's hop, as ``unparsable@hop``)."""
        if self._address is None:
            ip = self.ip
            text = str(ip) if isinstance(ip, UnparsableAddress) else address_text(ip)
            object.__setattr__(self, "_address", text)  # a cache of a field: still the same identity
        return self._address  # type: ignore[return-value]

    @property
    def ip_prefix(self) -> str:
        if self._ip_prefix is None:
            object.__setattr__(self, "_ip_prefix", self.prefix_lengths.prefix(self.ip))
        return self._ip_prefix  # type: ignore[return-value]

    def within(self, networks: Iterable[IPNetwork]) -> bool:
        """Whether the address is in one of ``networks``; an unparsable one never is."""
        ip = self.ip
        return not isinstance(ip, UnparsableAddress) and any(ip in net for net in networks)

    def key(self, prop: str) -> str | None:
        """The value of a rule property for this client (None: the rule does not apply)."""
        if prop == "ip":
            return None if self.api_key else self.address
        if prop == "ip_prefix":
            return None if self.api_key else self.ip_prefix
        return self.api_key


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    """Which peers may tell us the client address in ``X-Forwarded-For``.

    Either a hop count (the last N entries were added by our own proxies) or a list of
    CIDRs (entries added by a proxy inside them are skipped, from the right).
    """

    hops: int = 0
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, spec: str | int) -> TrustedProxies:
        """A hop count (``"1"``) or comma-separated CIDRs; ValueError on a bad CIDR."""
        text = str(spec).strip()
        if text.isdigit():
            return cls(hops=int(text))
        return cls(networks=parse_networks(text))

    def client_ip(self, peer: str | None, forwarded_for: str | Sequence[str] | None) -> ClientAddress:
        """The address of the client: the peer unless a trusted proxy forwarded the request.

        ``forwarded_for`` is the header's every line, in order. An entry a trusted hop reported
        that is no address is that hop's ``UnparsableAddress``, never the hop itself.
        """
        peer_ip = parse_ip(peer) or ipaddress.IPv4Address(0)
        if not self.hops and not self.networks:
            return peer_ip
        entries = forwarded_entries(forwarded_for)
        if self.networks:
            return self._walk_trusted_networks(peer_ip, entries)
        if not entries:
            return peer_ip
        index = max(len(entries) - self.hops, 0)
        return parse_ip(entries[index]) or UnparsableAddress(_reporter(entries[index + 1 :], peer_ip))

    def _walk_trusted_networks(self, peer_ip: IPAddress, entries: Sequence[str]) -> ClientAddress:
        reporter = peer_ip
        if not self._trusted(reporter):
            return reporter
        for entry in reversed(entries):
            address = parse_ip(entry)
            if address is None:
                return UnparsableAddress(reporter)
            if not self._trusted(address):
                return address
            reporter = address
        return reporter  # every hop is ours: the leftmost one is the client

    def _trusted(self, address: IPAddress) -> bool:
        return any(address in net for net in self.networks)


def _reporter(right: Sequence[str], peer_ip: IPAddress) -> IPAddress:
    """The hop that appended an entry: the nearest address to its right, else the peer."""
    return next((address for entry in right if (address := parse_ip(entry))), peer_ip)


def forwarded_entries(header: str | Sequence[str] | None) -> list[str]:
    """The entries of every ``X-Forwarded-For`` line, in order (an empty line adds none).

    A proxy may add its own line rather than append to the client's; reading only the first
    line would let the client choose the address the node believes.
    """
    lines = [header] if isinstance(header, str) else header or ()
    return [entry for line in lines if line.strip() for entry in line.split(",")]


@functools.lru_cache(maxsize=4096)  # a pure function; recent peers and proxies are parsed once
def parse_ip(text: str | None) -> IPAddress | None:
    """The address in an entry: bare, with a port, in brackets, or IPv4-mapped; None if there is none.

    ``203.0.113.7:5678``, ``[2001:db8::1]:443``, ``[2001:db8::1]`` and ``::ffff:203.0.113.7``
    are the address itself, so a client cannot get a fresh budget by rewriting its own.
    """
    if not text:
        return None
    host = text.strip()
    if host.startswith("["):
        host, bracket, port = host[1:].partition("]")
        if not bracket or (port and not (port[0] == ":" and _PORT.fullmatch(port[1:]))):
            return None
    elif host.count(":") == 1:
        host, _, port = host.partition(":")
        if not _PORT.fullmatch(port):
            return None
    address = address_from_text(host)
    if address is None:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id is not None:  # a zone is local to the proxy; it names no other client
            return ipaddress.IPv6Address(address.packed)
    return address


def address_from_text(host: str) -> IPAddress | None:
    """The address ``host`` spells, None if it spells none. The C library reads the common forms
    at a tenth of the cost of ``ipaddress``'s parser (a fresh IPv6 client per request of a flood);
    any it does not read, a zone (``fe80::1%eth0``) among them, go to ``ipaddress``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        packed = socket.inet_pton(family, host)
    except (OSError, ValueError):
        try:
            return ipaddress.ip_address(host)
        except ValueError:
            return None
    return ipaddress.IPv6Address(packed) if family == socket.AF_INET6 else ipaddress.IPv4Address(packed)


def parse_networks(spec: str | Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs from a comma-separated string or an iterable of strings."""
    parts = spec.split(",") if isinstance(spec, str) else spec
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in parts if part.strip())


class ApiKeys:
    """Named API keys; a presented key is looked up by its SHA-256 in constant time."""

    def __init__(self, keys: Mapping[str, str]) -> None:
        self._by_digest = {hashlib.sha256(key.encode()).digest(): name for name, key in keys.items()}

    @classmethod
    def parse(cls, spec: str) -> ApiKeys:
        """``name:key`` pairs separated by commas; ValueError (naming no key) when malformed."""
        return cls(parse_api_keys(spec))

    def __repr__(self) -> str:  # names only: never a key, nor a digest of one
        return f"ApiKeys(names={sorted(self._by_digest.values())!r})"

    def __bool__(self) -> bool:
        return bool(self._by_digest)

    def name_of(self, presented: str) -> str | None:
        """The name of the key, or None if no key matches."""
        digest = hashlib.sha256(presented.encode()).digest()
        for known, name in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                return name
        return None


def parse_api_keys(spec: str) -> dict[str, str]:
    """``name:key`` pairs separated by commas."""
    keys = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        name, sep, key = part.strip().partition(":")
        if not sep or not name or len(key) < 16:
            raise ValueError("API keys are name:key pairs with keys of at least 16 characters")
        keys[name] = key
    return keys
