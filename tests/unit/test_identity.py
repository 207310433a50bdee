"""Client identity: X-Forwarded-For only through trusted proxies; API keys by name."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scrypt_helper.abuse.identity import (
    ApiKeys,
    ClientIdentity,
    PrefixLengths,
    TrustedProxies,
    UnparsableAddress,
    address_from_text,
    address_text,
    forwarded_entries,
    parse_api_keys,
    parse_ip,
)

ip = ipaddress.ip_address


@pytest.mark.parametrize("forwarded", [None, "", "6.6.6.6", "6.6.6.6, 7.7.7.7", "garbage"])
def test_without_trusted_proxies_only_the_peer_counts(forwarded):
    assert TrustedProxies.parse("0").client_ip("10.0.0.1", forwarded) == ip("10.0.0.1")


def test_one_trusted_hop_takes_the_entry_our_proxy_added():
    proxies = TrustedProxies.parse("1")
    assert proxies.client_ip("10.0.0.1", "203.0.113.9") == ip("203.0.113.9")
    # A client's own spoofed entries stand left of what our proxy appended.
    assert proxies.client_ip("10.0.0.1", "6.6.6.6, 203.0.113.9") == ip("203.0.113.9")
    assert proxies.client_ip("10.0.0.1", None) == ip("10.0.0.1")


def test_two_trusted_hops():
    proxies = TrustedProxies.parse("2")
    assert proxies.client_ip("10.0.0.1", "6.6.6.6, 203.0.113.9, 10.0.0.2") == ip("203.0.113.9")
    assert proxies.client_ip("10.0.0.1", "203.0.113.9") == ip("203.0.113.9")


def test_trusted_cidrs_skip_our_proxies_from_the_right():
    proxies = TrustedProxies.parse("10.0.0.0/8, fd00::/8")
    assert proxies.client_ip("10.0.0.1", "6.6.6.6, 203.0.113.9, 10.1.2.3") == ip("203.0.113.9")
    # A peer outside the trusted networks is the client, whatever it claims.
    assert proxies.client_ip("198.51.100.7", "203.0.113.9") == ip("198.51.100.7")
    assert proxies.client_ip("fd00::1", "2001:db8::5") == ip("2001:db8::5")


@pytest.mark.parametrize(
    ("entry", "address"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("203.0.113.7:5678", "203.0.113.7"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("[::ffff:203.0.113.7]:80", "203.0.113.7"),
        ("::ffff:cb00:7107", "203.0.113.7"),
        ("fe80::1%eth0", "fe80::1"),
    ],
)
def test_entries_resolve_to_the_address_itself(entry, address):
    assert parse_ip(entry) == ip(address)
    assert TrustedProxies.parse("1").client_ip("10.0.0.1", entry) == ip(address)


@pytest.mark.parametrize(
    "entry",
    ["", " ", "unknown", "_hidden", "not-an-ip", "203.0.113.7:", "203.0.113.7:port", "203.0.113.7:123456",
     "[2001:db8::1", "[2001:db8::1]443", "[2001:db8::1]:", "[junk]:80", "203.0.113.007", "2001:db8::1::2"],
)  # fmt: skip
def test_entries_that_are_no_address(entry):
    assert parse_ip(entry) is None


def test_every_header_line_counts_in_order():
    lines = ["6.6.6.6", "203.0.113.9"]  # the client's own line, then the one our proxy added
    assert forwarded_entries(lines) == ["6.6.6.6", "203.0.113.9"]
    assert TrustedProxies.parse("1").client_ip("10.0.0.1", lines) == ip("203.0.113.9")
    assert TrustedProxies.parse("10.0.0.0/8").client_ip("10.0.0.1", lines) == ip("203.0.113.9")
    assert TrustedProxies.parse("2").client_ip("10.0.0.1", ["6.6.6.6, 203.0.113.9", "10.0.0.2"]) == ip(
        "203.0.113.9"
    )
    assert forwarded_entries(["", "203.0.113.9"]) == ["203.0.113.9"]
    assert forwarded_entries(None) == forwarded_entries([]) == []


def test_an_unparsable_entry_is_its_reporting_hop_never_the_hop_itself():
    one_hop = TrustedProxies.parse("1")
    junk = one_hop.client_ip("10.0.0.1", "not-an-ip")
    assert junk == UnparsableAddress(ip("10.0.0.1"))
    assert junk != ip("10.0.0.1")
    assert str(junk) == "unparsable@10.0.0.1"
    # Varying the junk changes nothing: one identity per hop.
    assert one_hop.client_ip("10.0.0.1", "6.6.6.6, other-junk") == junk
    assert one_hop.client_ip("10.0.0.2", "not-an-ip") == UnparsableAddress(ip("10.0.0.2"))
    # Two hops: the entry our first proxy wrote was reported by it, the address to its right.
    two_hops = TrustedProxies.parse("2")
    assert two_hops.client_ip("10.0.0.1", "junk, 10.0.0.2") == UnparsableAddress(ip("10.0.0.2"))
    cidrs = TrustedProxies.parse("10.0.0.0/8")
    assert cidrs.client_ip("10.0.0.1", "junk") == UnparsableAddress(ip("10.0.0.1"))
    assert cidrs.client_ip("10.0.0.1", "6.6.6.6, junk, 10.0.0.2") == UnparsableAddress(ip("10.0.0.2"))
    # An untrusted peer is the client, whatever it sends.
    assert cidrs.client_ip("198.51.100.7", "junk") == ip("198.51.100.7")


def test_bad_cidr_is_an_error():
    with pytest.raises(ValueError, match=r"10\.0\.0\.0/33"):
        TrustedProxies.parse("10.0.0.0/33")


@pytest.mark.parametrize(
    ("address", "prefix"), [("203.0.113.9", "203.0.113.0/24"), ("2001:db8:1:2:3::4", "2001:db8:1::/56")]
)
def test_ip_prefix_defaults(address, prefix):
    assert ClientIdentity(ip(address)).ip_prefix == prefix


def test_ip_prefix_lengths_per_family():
    lengths = PrefixLengths(ipv4=16, ipv6=48)
    assert ClientIdentity(ip("203.0.113.9"), prefix_lengths=lengths).ip_prefix == "203.0.0.0/16"
    assert ClientIdentity(ip("2001:db8:1:ff00::4"), prefix_lengths=lengths).ip_prefix == "2001:db8:1::/48"
    # Every /64 of a /56 allocation is one prefix by default.
    assert {ClientIdentity(ip(f"2001:db8:0:{n:x}::1")).ip_prefix for n in range(256)} == {"2001:db8::/56"}
    assert ClientIdentity(ip("2001:db8:0:100::1")).ip_prefix == "2001:db8:0:100::/56"


def test_an_unparsable_client_is_limited_like_an_address_but_on_no_list():
    client = ClientIdentity(UnparsableAddress(ip("10.0.0.1")))
    assert (client.key("ip"), client.key("ip_prefix")) == ("unparsable@10.0.0.1", "unparsable@10.0.0.1")
    assert not client.within([ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")])
    assert ClientIdentity(ip("10.0.0.1")).within([ipaddress.ip_network("10.0.0.0/8")])


def test_a_client_with_an_api_key_is_counted_by_its_key_only():
    keyed = ClientIdentity(ip("203.0.113.9"), api_key="partner")
    assert (keyed.key("ip"), keyed.key("ip_prefix"), keyed.key("api_key")) == (None, None, "partner")
    plain = ClientIdentity(ip("203.0.113.9"))
    assert (plain.key("ip"), plain.key("ip_prefix"), plain.key("api_key")) == (
        "203.0.113.9",
        "203.0.113.0/24",
        None,
    )


def test_api_keys_are_found_by_value_and_named():
    keys = ApiKeys(parse_api_keys("partner:0123456789abcdef, other:fedcba9876543210xyz"))
    assert keys.name_of("0123456789abcdef") == "partner"
    assert keys.name_of("fedcba9876543210xyz") == "other"
    assert keys.name_of("0123456789abcdeF") is None
    assert not ApiKeys({})


@pytest.mark.parametrize("spec", ["partner", "partner:short", ":0123456789abcdef"])
def test_bad_api_key_specs(spec):
    with pytest.raises(ValueError, match="name:key"):
        parse_api_keys(spec)


# IPv6 addresses built from hextets that are mostly zero or mostly not: runs of zeros of every
# length and position, the forms whose compression rules differ between writers.
hextets = st.lists(st.sampled_from([0, 0, 0, 1, 0xFFFF, 0x2001, 0xDB8, 0xABCD]), min_size=8, max_size=8)


@given(hextets)
def test_an_ipv6_address_has_the_text_ipaddress_gives_it(words):
    address = ipaddress.IPv6Address(b"".join(word.to_bytes(2, "big") for word in words))
    assert address_text(address) == str(address)


@given(hextets, st.integers(min_value=0, max_value=128))
def test_an_ipv6_prefix_has_the_text_ipaddress_gives_it(words, bits):
    address = ipaddress.IPv6Address(b"".join(word.to_bytes(2, "big") for word in words))
    expected = str(ipaddress.ip_network(f"{address}/{bits}", strict=False))
    assert PrefixLengths(ipv6=bits).prefix(address) == expected
    assert ClientIdentity(address, prefix_lengths=PrefixLengths(ipv6=bits)).ip_prefix == expected


def ipaddress_reads(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@given(st.ip_addresses())
def test_every_address_is_read_from_its_texts_as_ipaddress_reads_it(address):
    texts = {str(address), address.exploded}
    if address.version == 6:
        texts.add(address.exploded.upper())
        if address.ipv4_mapped is not None:
            texts.add(f"::ffff:{address.ipv4_mapped}")
    for text in texts:
        assert address_from_text(text) == address == ipaddress_reads(text)


@given(st.text(alphabet="0123456789abcdefABCDEF:.%x ", max_size=45))
def test_any_text_is_an_address_exactly_when_ipaddress_reads_one(text):
    assert address_from_text(text) == ipaddress_reads(text)


def test_a_client_identity_asked_twice_gives_the_same_texts_and_stays_equal():
    client = ClientIdentity(ip("2001:db8::1"))
    assert (client.address, client.ip_prefix) == ("2001:db8::1", "2001:db8::/56")
    assert (client.address, client.ip_prefix) == ("2001:db8::1", "2001:db8::/56")
    fresh = ClientIdentity(ip("2001:db8::1"))
    assert client == fresh
    assert hash(client) == hash(fresh)
