"""Who is asking: the client address behind trusted proxies, and its API key if any."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
API_KEY_HEADER = "x-api-key"


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """The identity rules count: address, its /24 or /64, and the API key's name."""

    ip: IPAddress
    api_key: str | None = None

    @property
    def ip_prefix(self) -> str:
        bits = 24 if self.ip.version == 4 else 64
        return str(ipaddress.ip_network(f"{self.ip}/{bits}", strict=False))

    def key(self, prop: str) -> str | None:
        """The value of a rule property for this client (None: the rule does not apply)."""
        if prop == "ip":
            return None if self.api_key else str(self.ip)
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

    def client_ip(self, peer: str | None, forwarded_for: str | None) -> IPAddress:
        """The address of the client: the peer unless a trusted proxy forwarded the request."""
        peer_ip = parse_ip(peer) or ipaddress.IPv4Address(0)
        chain = [parse_ip(entry) for entry in (forwarded_for or "").split(",")] if forwarded_for else []
        if self.networks:
            hops = [*chain, peer_ip]
            for address in reversed(hops):
                if address is None or not any(address in net for net in self.networks):
                    return address or peer_ip
            return hops[0] or peer_ip
        if self.hops and chain:
            chosen = chain[-self.hops] if len(chain) >= self.hops else chain[0]
            return chosen or peer_ip
        return peer_ip


def parse_ip(text: str | None) -> IPAddress | None:
    if not text:
        return None
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


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
