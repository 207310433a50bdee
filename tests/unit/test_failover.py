"""A client's memory of failed base URLs: live ones first, down ones last until their cool-down ends."""

from __future__ import annotations

import pytest

from scrypt_helper_client import Client, UrlHealth
from scrypt_helper_client.failover import base_urls
from tests.clock import Clock

A, B, C = "https://a.example", "https://b.example", "https://c.example"


def test_urls_keep_their_order_while_all_answer():
    health = UrlHealth([A, B, C], 30, clock=Clock())
    assert health.order() == [A, B, C]


def test_a_failed_url_is_tried_last_until_its_cool_down_ends():
    clock = Clock()
    health = UrlHealth([A, B, C], 30, clock=clock)
    health.failed(A)
    assert health.order() == [B, C, A]
    assert health.is_down(A)
    clock.now += 29.9
    assert health.order() == [B, C, A]
    clock.now += 0.2
    assert health.order() == [A, B, C]
    assert not health.is_down(A)


def test_down_urls_come_back_in_the_order_they_failed():
    clock = Clock()
    health = UrlHealth([A, B, C], 30, clock=clock)
    health.failed(B)
    clock.now += 1
    health.failed(A)
    clock.now += 1
    health.failed(C)
    assert health.order() == [B, A, C]  # every URL still tried, the longest failed first


def test_an_answer_clears_the_mark_at_once():
    health = UrlHealth([A, B], 30, clock=Clock())
    health.failed(A)
    health.answered(A)
    assert health.order() == [A, B]


def test_a_url_failing_again_restarts_its_cool_down():
    clock = Clock()
    health = UrlHealth([A, B], 10, clock=clock)
    health.failed(A)
    clock.now += 8
    health.failed(A)
    clock.now += 8
    assert health.order() == [B, A]


@pytest.mark.parametrize(
    ("given", "urls"),
    [(None, ()), (A, (A,)), ([A, B], (A, B)), ((B, A, B), (B, A))],
)
def test_base_urls(given, urls):
    assert base_urls(given) == urls


@pytest.mark.parametrize(("given", "message"), [([], "at least one"), ([A, 3], "strings")])
def test_bad_base_urls_are_refused(given, message):
    with pytest.raises(ValueError, match=message):
        base_urls(given)


def test_a_client_checks_every_url_and_keeps_the_first_as_url():
    with Client([A, "http://127.0.0.1:1"]) as client:
        assert (client.url, client.urls) == (A, (A, "http://127.0.0.1:1"))
    with pytest.raises(ValueError, match=r"plain http:// to b\.example"):
        Client([A, "http://b.example"])
    with pytest.raises(ValueError, match="negative"):
        Client(A, cooldown=-1)
