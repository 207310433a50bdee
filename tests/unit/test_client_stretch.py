"""The onepw stretch against the published Firefox Accounts vector computed locally; the client's parts."""

from __future__ import annotations

import re

import httpx
import pytest

from scrypt_helper_client import (
    AsyncClient,
    Client,
    HelperError,
    HelperUnavailable,
    async_stretch,
    first_pbkdf,
    retry_after_seconds,
    second_pbkdf,
    stretch,
)
from scrypt_helper_client.retries import answer_error, answer_output, backoff_delay

EMAIL = "andré@example.org"
PASSWORD = "pässwörd"  # noqa: S105 - the published test vector
K1 = bytes.fromhex("f84913e3d8e6d624689d0a3e9678ac8dcc79d2c2f3d9641488cd9d6ef6cd83dd")
K2 = bytes.fromhex("5b82f146a64126923e4167a0350bb181feba61f63cb1714012b19cb0be0119c5")
STRETCHED = bytes.fromhex("c16d46c31bee242cb31f916e9e38d60b76431d3f5304549cc75ae4bc20c7108c")


def test_first_pbkdf_gives_k1():
    assert first_pbkdf(EMAIL, PASSWORD) == K1


def test_local_scrypt_gives_k2():
    with Client(None) as client:
        assert client.hash(K1) == K2


def test_second_pbkdf_gives_stretched_password():
    assert second_pbkdf(EMAIL, PASSWORD, K2) == STRETCHED


def test_stretch_without_a_helper():
    assert stretch(EMAIL, PASSWORD) == STRETCHED


async def test_async_stretch_without_a_helper():
    assert await async_stretch(EMAIL, PASSWORD) == STRETCHED


def test_no_url_without_fallback_is_unavailable():
    with Client(None, fallback=False) as client, pytest.raises(HelperUnavailable, match="no helper URL"):
        client.hash(K1)


async def test_async_no_url_without_fallback_is_unavailable():
    async with AsyncClient(None, fallback=False) as client:
        with pytest.raises(HelperUnavailable, match="no helper URL"):
            await client.hash(K1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"deadline": 0}, "positive"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"url": "ftp://x"}, "http"),
        ({"url": "http://host:x"}, "invalid"),
        ({"url": "http://"}, "host"),
    ],
)
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Client(**{"url": None, **kwargs})


@pytest.mark.parametrize(
    ("header", "seconds"),
    [(None, None), ("2", 2.0), ("0.5", 0.5), ("-3", 0.0), ("soon", None), ("nan", None)],
)
def test_retry_after_header(header, seconds):
    assert retry_after_seconds(header) == seconds


def test_retry_after_http_date_in_the_past_means_now():
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_backoff_grows_with_jitter_and_never_undercuts_retry_after():
    assert all(0.05 <= backoff_delay(1, None) <= 0.1 for _ in range(50))
    assert all(0.4 <= backoff_delay(4, None) <= 0.8 for _ in range(50))
    assert all(2.5 <= backoff_delay(10, None) <= 5.0 for _ in range(50))
    assert all(1.0 <= backoff_delay(1, 1.0) <= 1.1 for _ in range(50))
    assert len({backoff_delay(3, None) for _ in range(10)}) > 1


def answer(status: int, **kwargs: object) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("POST", "http://helper/"), **kwargs)


def test_a_good_answer_gives_its_output():
    assert answer_output(answer(200, json={"output": "00FF" * 16}), 32) == b"\x00\xff" * 16


@pytest.mark.parametrize(
    "body",
    [
        {"json": {"output": "a5" * 31}},
        {"json": {"output": "a5" * 33}},
        {"json": {"output": "zz" * 32}},
        {"json": {"output": " a" * 32}},
        {"json": {"output": 42}},
        {"json": ["a5" * 32]},
        {"content": b"<html>"},
    ],
)
def test_a_bad_answer_is_a_helper_error_without_its_content(body):
    with pytest.raises(HelperError, match=r"32 bytes of hex|not JSON") as caught:
        answer_output(answer(200, **body), 32)
    assert caught.value.status == 200
    assert not re.search(r"a5a5|zz| a a|42|<html>", str(caught.value))


def test_an_error_answer_carries_status_errno_and_message():
    body = {"code": 401, "errno": 110, "error": "Unauthorized", "message": "Invalid API key"}
    error = answer_error(answer(401, json=body))
    assert (error.status, error.errno, error.message) == (401, 110, "Invalid API key")
    assert str(error) == "helper answered 401 (errno 110): Invalid API key"


def test_an_error_answer_that_is_not_json_keeps_the_status():
    error = answer_error(answer(403, content=b"<html>denied</html>"))
    assert (error.status, error.errno, error.message) == (403, None, "Forbidden")
