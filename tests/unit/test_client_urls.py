"""The client library sends inputs over plain HTTP only to this machine's loopback, unless told otherwise."""

from __future__ import annotations

import asyncio

import pytest

from scrypt_helper_client import AsyncClient, Client, async_stretch, stretch
from scrypt_helper_client.urls import is_loopback

LOOPBACK = [
    "http://127.0.0.1:8080",
    "http://127.8.9.10",
    "http://[::1]:8080",
    "http://localhost:8080",
    "http://LOCALHOST./",
    "http://[::ffff:127.0.0.1]:8080",
]
ELSEWHERE = [
    "http://scrypt.example.com",
    "http://10.0.0.1:8080",
    "http://192.168.1.20",
    "http://[2001:db8::1]:8080",
    "http://0.0.0.0:8080",
    "http://[::]:8080",
    "http://127.0.0.1.example.com",
    "http://localhost.example.com",
    "http://[::ffff:10.0.0.1]",
]


@pytest.mark.parametrize("url", LOOPBACK)
def test_plain_http_to_loopback_is_allowed(url):
    Client(url).close()
    asyncio.run(AsyncClient(url).close())


@pytest.mark.parametrize("url", ELSEWHERE)
def test_plain_http_beyond_loopback_is_refused_before_any_request(url):
    with pytest.raises(ValueError, match="refusing to send secrets over plain http://"):
        Client(url)
    with pytest.raises(ValueError, match="allow_insecure_http=True"):
        AsyncClient(url)
    with pytest.raises(ValueError, match="refusing to send secrets"):
        stretch("andré@example.org", "password", url)
    with pytest.raises(ValueError, match="refusing to send secrets"):
        asyncio.run(async_stretch("andré@example.org", "password", url))


@pytest.mark.parametrize("url", ELSEWHERE)
def test_plain_http_beyond_loopback_is_allowed_when_asked_for(url):
    Client(url, allow_insecure_http=True).close()
    asyncio.run(AsyncClient(url, allow_insecure_http=True).close())


@pytest.mark.parametrize("url", ["https://scrypt.example.com", "https://10.0.0.1:8443", "https://127.0.0.1"])
def test_https_goes_anywhere(url):
    Client(url).close()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.255.255.254", True),
        ("::1", True),
        ("localhost", True),
        ("::ffff:127.0.0.1", True),
        ("128.0.0.1", False),
        ("::2", False),
        ("localhost.localdomain", False),
        ("", False),
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback
