"""nginx's own refusals (413, 429, 503) carry the CORS headers, so a page on another origin reads them
and their ``Retry-After`` as it reads the node's."""

from __future__ import annotations

import httpx
import pytest

from harness.cluster import LocalNginx, find_nginx
from scrypt_helper.bench.local_servers import free_port
from scrypt_helper.bench.tls import http_post
from scrypt_helper_client import request_body
from tests.conftest import SMALL

pytestmark = pytest.mark.skipif(find_nginx() is None, reason="nginx is not installed (apt-get install nginx)")
BROWSER = {"Origin": "https://accounts.example", "Content-Type": "application/json"}


def readable_by_the_page(response: httpx.Response) -> None:
    assert response.headers["access-control-allow-origin"] == "*"
    exposed = {name.strip().lower() for name in response.headers["access-control-expose-headers"].split(",")}
    assert {"retry-after", "x-request-id"} <= exposed


def test_nginx_refusals_are_readable_cross_origin():
    with LocalNginx([free_port()], rate="1r/m", burst=1) as nginx:  # every node is down
        too_big = http_post(nginx.url + "/", content=b"x" * 9000, headers=BROWSER)
        assert too_big.status_code == 413
        readable_by_the_page(too_big)
        statuses = [
            http_post(nginx.url + "/", json=request_body(SMALL, b"\x03"), headers=BROWSER) for _ in range(3)
        ]
        codes = [r.status_code for r in statuses]
        assert {503, 429} <= set(codes), codes  # no node answered; then nginx's own rate limit
        for refusal in statuses:
            readable_by_the_page(refusal)
            assert refusal.headers["retry-after"] == "1"
