"""deploy/nginx keys its limits by an IPv4 address or the /64 of an IPv6 one, whatever form nginx writes.

nginx's realip module stands in for IPv6 clients on loopback: each request names, in X-Real-IP, the
address it is to come from, and nginx parses it and writes ``$remote_addr`` as for a real connection.
"""

from __future__ import annotations

import ipaddress
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.cluster import NGINX_DIR, find_nginx, nginx_test
from scrypt_helper.bench.local_servers import free_port
from scrypt_helper.bench.tls import http_post, shared_tls

NGINX = find_nginx()
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)")

# The shared http{} settings as shipped, a one-request-a-minute POST zone, and a server that reports
# the key of each request or applies the zone to it.
CONFIG = """\
@USER@
daemon off;
worker_processes 1;
pid @PREFIX@/nginx.pid;
error_log @PREFIX@/error.log warn;
events { worker_connections 64; }
http {
    include scrypt-helper/http.conf;
    access_log off;
    client_body_temp_path @PREFIX@/temp/body;
    proxy_temp_path @PREFIX@/temp/proxy;
    fastcgi_temp_path @PREFIX@/temp/fastcgi;
    uwsgi_temp_path @PREFIX@/temp/uwsgi;
    scgi_temp_path @PREFIX@/temp/scgi;
    limit_req_zone $scrypt_limit_key zone=scrypt_post:1m rate=1r/m;
    server {
        listen 127.0.0.1:@PORT@;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Real-IP;
        location = /key { return 200 "$remote_addr|$client_limit_addr"; }
        location = / { limit_req zone=scrypt_post nodelay; proxy_pass http://127.0.0.1:@PORT@/ok; }
        location = /ok { return 200 "ok"; }
    }
}
"""


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    conf = tmp_path / "conf"
    shutil.copytree(NGINX_DIR / "scrypt-helper", conf / "scrypt-helper")
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / "temp" / sub).mkdir(parents=True)
    values = {
        "@USER@": "user root;" if os.geteuid() == 0 else "",
        "@PREFIX@": str(tmp_path),
        "@PORT@": str(port),
    }
    text = CONFIG
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    (conf / "nginx.conf").write_text(text)
    checked = nginx_test(NGINX, conf / "nginx.conf", tmp_path)  # type: ignore[arg-type]
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(
        [NGINX, "-p", str(tmp_path), "-c", str(conf / "nginx.conf")],  # type: ignore[list-item]
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert process.poll() is None, (tmp_path / "error.log").read_text()
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGQUIT)
        process.wait(10)


def addresses() -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Every pattern of zero and non-zero groups (so "::" stands everywhere), groups of 1 to 4 digits,
    the forms nginx writes with a dotted quad, and IPv4."""
    rng = random.Random(64)
    found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for pattern in range(256):
        for _ in range(3):
            groups = [
                rng.randint(1, 0xF << (4 * rng.randrange(4))) if pattern >> i & 1 else 0 for i in range(8)
            ]
            found.append(ipaddress.IPv6Address(sum(g << (16 * (7 - i)) for i, g in enumerate(groups))))
    extra = ("::ffff:198.51.100.7", "::198.51.100.7", "::", "::1", "198.51.100.7", "2001:db8::", "fe80::1")
    return found + [ipaddress.ip_address(text) for text in extra]


def test_the_key_is_the_ipv4_address_or_the_ipv6_slash_64(nginx):
    with httpx.Client(base_url=nginx, timeout=5, verify=shared_tls()) as client:
        for address in addresses():
            body = client.get("/key", headers={"X-Real-IP": str(address)}).content
            remote, _, key = body.partition(b"|")
            assert ipaddress.ip_address(remote.decode()) == address, body
            if address.version == 4 or b"." in remote:  # IPv4, or IPv4-mapped: the address itself
                assert key == address.packed, (remote, key)
            else:
                first_four = address.exploded.split(":")[:4]
                assert key == (":".join(f"{int(group, 16):x}" for group in first_four) + "::/64").encode(), (
                    remote,
                    key,
                )


def test_ipv6_clients_are_limited_by_their_slash_64(nginx):
    def post(address: str) -> int:
        return http_post(nginx + "/", content=b"{}", headers={"X-Real-IP": address}, timeout=5).status_code

    assert post("2001:db8:1:2::1") == 200
    assert post("2001:db8:1:2:ffff:ffff:ffff:ffff") == 429  # another address of the same /64
    assert post("2001:db8:1:3::1") == 200  # the next /64
    assert post("198.51.100.1") == 200
    assert post("198.51.100.2") == 200  # IPv4 clients are still told apart by address
    assert post("198.51.100.1") == 429
