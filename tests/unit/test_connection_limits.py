"""Whose connection it is, and when the per-client connection cap applies."""

from __future__ import annotations

import pytest

from scrypt_helper.core.config import Settings
from scrypt_helper.http.protocol import client_key
from scrypt_helper.runtime.server import max_connections_per_client


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        # One subscriber gets a /64: its addresses are one client.
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        # On a dual-stack socket an IPv4 client must stay itself, not share ::ffff:0:0/64 with all others.
        ("::ffff:203.0.113.7", "203.0.113.7"),
    ],
)
def test_client_key(host: str, key: str):
    assert client_key(host) == key


def test_the_per_client_cap_applies_only_while_no_proxy_is_trusted():
    assert max_connections_per_client(Settings(max_connections_per_client=7)) == 7
    assert max_connections_per_client(Settings(max_connections_per_client=7, trusted_proxies="1")) is None
    assert max_connections_per_client(Settings(trusted_proxies="10.0.0.0/8")) is None
