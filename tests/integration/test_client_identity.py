"""Who the node believes a client is, over real HTTP: every X-Forwarded-For line, entries with ports,
brackets or IPv4-mapped forms, entries that are no address, and IPv6 prefixes.

The test client is the trusted proxy (127.0.0.1): each request carries the lines a proxy would send.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import httpx
import pytest

from scrypt_helper.bench.tls import shared_tls
from scrypt_helper_client import request_body
from tests.conftest import SMALL, allowed_json, local_node

Start = Callable[..., httpx.Client]


@pytest.fixture
def start() -> Iterator[Start]:
    """Start a node with these flags (hashlib engine, the small parameter set) and a client for it."""
    with ExitStack() as stack:

        def run(**flags: object) -> httpx.Client:
            node = stack.enter_context(
                local_node(engine="hashlib", allowed_params=allowed_json(SMALL), drain_seconds=0, **flags)
            )
            return stack.enter_context(httpx.Client(base_url=node.url, timeout=10, verify=shared_tls()))

        yield run


def post(client: httpx.Client, *lines: str) -> int:
    """POST a valid hash request with one X-Forwarded-For header line per argument, in order."""
    headers = [("X-Forwarded-For", line) for line in lines]
    return client.post("/", json=request_body(SMALL, b"\x01"), headers=headers).status_code


def test_a_client_cannot_choose_its_address_with_a_header_line_of_its_own(start):
    client = start(trusted_proxies=1, rules="scrypt : ip : 2 : 60s : 60s : block")
    victim, attacker = "198.51.100.1", "203.0.113.66"
    # The client's own line names the victim; the proxy adds the address it saw as a line of its own.
    assert [post(client, victim, attacker) for _ in range(3)] == [200, 200, 429]
    assert post(client, victim) == 200  # the victim was never charged
    assert post(client, "198.51.100.2", attacker) == 429  # another name buys no fresh budget


def test_ports_brackets_and_mapped_forms_are_the_address_itself(start):
    client = start(trusted_proxies=1, rules="scrypt : ip : 3 : 60s : 60s : block")
    forms = ("203.0.113.7:5678", "::ffff:203.0.113.7", "[::ffff:203.0.113.7]:443")
    assert [post(client, form) for form in forms] == [200] * 3
    assert post(client, "203.0.113.7") == 429
    forms = ("[2001:db8::1]:443", "[2001:db8::1]", "2001:db8::1")
    assert [post(client, form) for form in forms] == [200] * 3
    assert post(client, "[2001:db8::1]:80") == 429
    # A proxy that writes ports does not make all its clients one client.
    assert post(client, "203.0.113.8:5678") == 200


def test_entries_that_are_no_address_are_one_client_per_hop_never_the_hop(start):
    # Every 127.0.0.0/8 address is one of our proxies; the peer, 127.0.0.1, is the last one.
    client = start(trusted_proxies="127.0.0.0/8", rules="request : ip : 3 : 60s : 60s : ban")
    assert [post(client, f"junk-{n}") for n in range(4)] == [200, 200, 200, 429]  # no fresh budgets
    assert post(client, "junk-5") == 429
    assert post(client) == 200  # the proxy itself is not banned ...
    assert post(client, "203.0.113.9") == 200  # ... nor its other clients
    # Junk that the proxy at 127.0.0.2 reported is a client of its own, limited like an address.
    assert [post(client, f"junk-{n}, 127.0.0.2") for n in range(6, 10)] == [200, 200, 200, 429]


def test_ipv6_clients_in_one_slash_56_share_one_prefix_budget(start):
    client = start(trusted_proxies=1, rules="scrypt : ip_prefix : 3 : 60s : 60s : block")
    # Three /64s of one residential /56, then a fourth.
    assert [post(client, f"2001:db8:0:{subnet:x}::1") for subnet in (0x00, 0x01, 0xFF)] == [200] * 3
    assert post(client, "2001:db8:0:42::99") == 429
    assert post(client, "2001:db8:0:100::1") == 200  # the next /56


def test_prefix_lengths_are_set_per_address_family(start):
    rules = "scrypt : ip_prefix : 2 : 60s : 60s : block"
    client = start(trusted_proxies=1, rules=rules, ipv4_prefix=16, ipv6_prefix=48)
    one_slash_16 = ("198.51.0.1", "198.51.200.1", "198.51.7.7")
    assert [post(client, address) for address in one_slash_16] == [200, 200, 429]
    one_slash_48 = ("2001:db8::1", "2001:db8:0:ff00::1", "2001:db8::2")
    assert [post(client, address) for address in one_slash_48] == [200, 200, 429]
    assert post(client, "198.52.0.1") == 200
    assert post(client, "2001:db8:1::1") == 200
