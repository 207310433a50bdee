"""Client identity: X-Forwarded-For only through trusted proxies; API keys by name."""

from __future__ import annotations

import ipaddress

import pytest

from scrypt_helper.abuse.identity import ApiKeys, ClientIdentity, TrustedProxies, parse_api_keys

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


def test_an_unparsable_entry_falls_back_to_the_peer():
    assert TrustedProxies.parse("1").client_ip("10.0.0.1", "not-an-ip") == ip("10.0.0.1")


def test_bad_cidr_is_an_error():
    with pytest.raises(ValueError, match=r"10\.0\.0\.0/33"):
        TrustedProxies.parse("10.0.0.0/33")


@pytest.mark.parametrize(
    ("address", "prefix"), [("203.0.113.9", "203.0.113.0/24"), ("2001:db8:1:2:3::4", "2001:db8:1:2::/64")]
)
def test_ip_prefix(address, prefix):
    assert ClientIdentity(ip(address)).ip_prefix == prefix


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
