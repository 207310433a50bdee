"""Which helper URLs a client may send secrets to."""

from __future__ import annotations

import ipaddress

import httpx


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine's loopback: ``localhost``, 127.0.0.0/8 or ::1."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def check_url(url: str, allow_insecure_http: bool) -> None:
    """ValueError unless ``url`` is an http(s) URL with a host, and https unless loopback or allowed."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"invalid helper URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError("the helper URL must be http:// or https:// with a host")
    if parsed.scheme == "http" and not allow_insecure_http and not is_loopback(parsed.host):
        raise ValueError(
            f"refusing to send secrets over plain http:// to {parsed.host}: use https://, or allow it "
            "explicitly (allow_insecure_http=True, --allow-insecure-http) on a network you trust"
        )
