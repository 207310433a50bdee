"""deploy/nginx: the production config passes ``nginx -t`` and terminates TLS as configured; the loopback
variant answers nginx's own refusals in the service's JSON shape."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.cluster import NGINX_DIR, LocalNginx, find_nginx, nginx_test
from scrypt_helper.bench.local_servers import free_port
from scrypt_helper.bench.tls import http_get, http_post
from scrypt_helper_client import request_body
from tests.conftest import SMALL, allowed_json, local_node

NGINX = find_nginx()
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)")


def self_signed(tls_dir: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (apt-get install openssl)")
    tls_dir.mkdir(parents=True)
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-days", "1", "-subj", "/CN=localhost",
            "-keyout", str(tls_dir / "privkey.pem"), "-out", str(tls_dir / "fullchain.pem"),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip


def render_production(prefix: Path, upstream_port: int, http_port: int, https_port: int) -> Path:
    """deploy/nginx as shipped, with a self-signed certificate, one loopback node, loopback listeners
    and files under ``prefix`` instead of /var/run and the container's stdout."""
    conf = prefix / "conf"
    shutil.copytree(NGINX_DIR, conf)
    self_signed(conf / "tls")
    (conf / "upstream-servers.conf").write_text(f"server 127.0.0.1:{upstream_port} max_fails=0;\n")
    text = (conf / "nginx.conf").read_text()
    replacements = {
        r"listen \[::\]:\d+[^;]*;\n": "",
        r"listen 80 default_server;": f"listen 127.0.0.1:{http_port} default_server;",
        r"listen 443 ssl default_server;": f"listen 127.0.0.1:{https_port} ssl default_server;",
        r"pid /var/run/nginx.pid;": f"pid {prefix}/nginx.pid;\ndaemon off;\nuser root;",
        r"error_log /dev/stderr warn;": f"error_log {prefix}/error.log warn;",
        r"access_log /dev/stdout scrypt_json;": f"access_log {prefix}/access.log scrypt_json;",
    }
    for pattern, replacement in replacements.items():
        text, count = re.subn(pattern, replacement, text)
        assert count >= 1, f"nginx.conf no longer has {pattern!r}"
    (conf / "nginx.conf").write_text(text)
    return conf / "nginx.conf"


def test_the_production_config_passes_nginx_t(tmp_path: Path):
    conf = tmp_path / "conf"
    shutil.copytree(NGINX_DIR, conf)
    self_signed(conf / "tls")
    (conf / "upstream-servers.conf").write_text("server 127.0.0.1:9 max_fails=0;\n")
    checked = nginx_test(NGINX, conf / "nginx.conf", tmp_path)  # type: ignore[arg-type]
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


def test_the_config_has_every_control():
    text = "\n".join(
        path.read_text()
        for path in [NGINX_DIR / "nginx.conf", *sorted((NGINX_DIR / "scrypt-helper").glob("*"))]
    )
    # Round robin, never least_conn: no node is taken out (max_fails=0), and least_conn would send a
    # node that is down, holding no connection, nearly every request first.
    assert not re.search(r"^\s*least_conn;", text, re.MULTILINE)
    for directive in (
        "keepalive 64;",
        'proxy_set_header Connection "";',
        "proxy_next_upstream error timeout http_502 http_503 non_idempotent;",
        "proxy_next_upstream_tries 3;",
        "proxy_next_upstream_timeout 15s;",
        "limit_req zone=scrypt_post",
        "limit_conn per_addr",
        "client_max_body_size 8k;",
        "large_client_header_buffers 4 8k;",
        "client_body_timeout 10s;",
        "ssl_protocols TLSv1.2 TLSv1.3;",
        "Strict-Transport-Security",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "escape=json",
        "location = /metrics",
    ):
        assert directive in text, directive
    assert "scrypt is a pure function" in text
    assert "$request_body" not in text.replace("($request_body is not logged)", "")
    upstreams = (NGINX_DIR / "upstream-servers.conf").read_text()
    # A node's 503 (load shed, retried on the next node) must never take it out: no failure accounting.
    assert len(re.findall(r"^server \S+ max_fails=0;$", upstreams, re.MULTILINE)) == 3


def server_blocks(text: str) -> list[str]:
    """The text of each ``server { ... }`` block of an nginx config."""
    blocks = []
    for match in re.finditer(r"^\s*server \{", text, re.MULTILINE):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(text)):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            if depth == 0:
                break
        blocks.append(text[match.end() : end])
    return blocks


@pytest.mark.parametrize("name", ["nginx.conf", "local.conf.template"])
def test_every_server_limits_connections_per_client_address(name: str):
    # Nodes behind nginx trust its hop and so cap no peer's connections: this limit is the only one.
    text = (NGINX_DIR / name).read_text()
    assert re.search(r"^\s*limit_conn_zone \$\w+ zone=per_addr:", text, re.MULTILINE)
    blocks = server_blocks(text)
    assert blocks
    for block in blocks:
        assert re.search(r"^\s*limit_conn per_addr \S+;", block, re.MULTILINE), block


@pytest.fixture
def node():
    with local_node(engine="hashlib", allowed_params=allowed_json(SMALL), trusted_proxies=1) as running:
        yield running


@pytest.fixture
def production_nginx(tmp_path: Path, node) -> Iterator[tuple[int, int]]:
    http_port, https_port = free_port(), free_port()
    config = render_production(tmp_path, node.port, http_port, https_port)
    checked = nginx_test(NGINX, config, tmp_path)  # type: ignore[arg-type]
    assert checked.returncode == 0, checked.stderr
    stderr = (tmp_path / "stderr.log").open("wb")
    process = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(config)], stderr=stderr)  # type: ignore[list-item]
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", https_port), timeout=0.2).close()
                break
            except OSError:
                assert process.poll() is None, (tmp_path / "stderr.log").read_text()
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)
        yield http_port, https_port
    finally:
        process.send_signal(signal.SIGQUIT)
        process.wait(10)
        stderr.close()


def handshake(port: int, version: ssl.TLSVersion) -> tuple[str | None, tuple[str, str, int] | None]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0/1.1: the client must still offer them
        context.minimum_version = context.maximum_version = version
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return tls.version(), tls.cipher()


def test_the_production_config_terminates_tls_and_proxies(production_nginx, tmp_path: Path):
    http_port, https_port = production_nginx
    assert handshake(https_port, ssl.TLSVersion.TLSv1_3)[0] == "TLSv1.3"
    version, cipher = handshake(https_port, ssl.TLSVersion.TLSv1_2)
    assert version == "TLSv1.2"
    assert cipher is not None
    assert cipher[0].startswith("ECDHE-")
    assert "GCM" in cipher[0] or "CHACHA20" in cipher[0]
    for old in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        with pytest.raises(ssl.SSLError):
            handshake(https_port, old)

    url = f"https://127.0.0.1:{https_port}"
    with httpx.Client(base_url=url, verify=False, timeout=10) as client:  # noqa: S501 - self-signed test cert
        answer = client.post("/", json=request_body(SMALL, b"\x02" * 32))
        assert answer.status_code == 200
        assert answer.headers["strict-transport-security"].startswith("max-age=63072000")
        assert client.get("/metrics").status_code == 404
    plain = http_get(f"http://127.0.0.1:{http_port}/", headers={"Host": "scrypt.example"})
    assert plain.status_code == 301
    assert plain.headers["location"] == "https://scrypt.example/"
    assert http_get(f"http://127.0.0.1:{http_port}/__lbheartbeat__").status_code == 200
    assert '"status":200' in (tmp_path / "access.log").read_text()


def test_nginx_refusals_are_json_like_the_service():
    dead = free_port()  # nothing listens there: every node is down
    with LocalNginx([dead], rate="1r/m", burst=1) as nginx:
        too_big = http_post(nginx.url + "/", content=b"x" * 9000)
        assert too_big.status_code == 413
        assert too_big.json()["errno"] == 113
        unavailable = http_post(nginx.url + "/", json=request_body(SMALL, b"\x03"))
        assert unavailable.status_code == 503
        assert unavailable.json() == {
            "code": 503,
            "errno": 201,
            "error": "Service Unavailable",
            "message": "Service unavailable: no node answered",
        }
        assert unavailable.headers["retry-after"] == "1"
        statuses = [http_post(nginx.url + "/", json=request_body(SMALL, b"\x03")) for _ in range(3)]
        limited = [r for r in statuses if r.status_code == 429]
        assert limited, [r.status_code for r in statuses]
        assert limited[0].json()["errno"] == 114
        assert limited[0].headers["retry-after"] == "1"
        # Health checks and GETs are never counted against the POST rate.
        assert http_get(nginx.url + "/__lbheartbeat__").status_code == 503
        hidden = http_get(nginx.url + "/__heartbeat__")
        assert hidden.status_code == 404
        assert hidden.json()["errno"] == 404
        assert hidden.headers["content-type"] == "application/json"
        assert "limiting requests" in nginx.error_log()
