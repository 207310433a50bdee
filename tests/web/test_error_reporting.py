"""Faults reach Sentry (a local HTTP server posing as its ingest) without the input or the API key."""

from __future__ import annotations

import gzip
import json
import os
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sentry_sdk

from scrypt_helper.core.config import Settings
from scrypt_helper.observability.error_reporting import configure_error_reporting, reporting_dsn, scrub
from scrypt_helper_client import request_body
from tests.conftest import SMALL

API_KEY = "k3y-" + os.urandom(12).hex()


class Ingest(ThreadingHTTPServer):
    """Keeps the decoded body of every envelope posted to it."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), IngestHandler)
        self.envelopes: list[bytes] = []
        self.arrived = threading.Event()

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.server_address[1]}/1"


class IngestHandler(BaseHTTPRequestHandler):
    server: Ingest

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding == "br":
            import brotli  # sentry-sdk only uses brotli where it is installed

            body = brotli.decompress(body)
        self.server.envelopes.append(body)
        self.server.arrived.set()
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def ingest() -> Iterator[Ingest]:
    server = Ingest()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        sentry_sdk.get_client().close(timeout=2)
        sentry_sdk.init()  # no DSN: reporting off again for the tests that follow
        server.shutdown()
        server.server_close()


def events(envelopes: list[bytes]) -> list[dict[str, object]]:
    """The event items of the envelopes (one JSON header line, then item header and payload pairs)."""
    found = []
    for envelope in envelopes:
        lines = envelope.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                found.append(json.loads(payload))
    return found


async def test_a_fault_is_reported_once_and_names_neither_the_input_nor_the_key(make_app, engine, ingest):
    assert configure_error_reporting(Settings(sentry_dsn=ingest.dsn))
    app = await make_app(api_keys=f"partner:{API_KEY}")
    engine.fault = RuntimeError("the engine failed")
    data = os.urandom(32)
    response = await app.post("/", json=request_body(SMALL, data), headers={"X-API-Key": API_KEY})
    assert response.status_code == 500
    sentry_sdk.flush(timeout=5)
    assert ingest.arrived.wait(5), "no event reached the ingest"
    reported = events(ingest.envelopes)
    faults = [e for e in reported if "the engine failed" in json.dumps(e.get("exception"))]
    assert len(faults) == 1
    (exception,) = faults[0]["exception"]["values"]  # type: ignore[index]
    assert exception["type"] == "RuntimeError"
    raw = b"".join(ingest.envelopes).lower()
    assert data.hex().encode() not in raw
    assert API_KEY.lower().encode() not in raw
    assert b'"vars"' not in raw  # no frame's local variables


def test_the_dsn_comes_from_the_setting_then_sentry_dsn_and_is_off_without_either(monkeypatch):
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    assert reporting_dsn(Settings()) is None
    assert not configure_error_reporting(Settings())
    monkeypatch.setenv("SENTRY_DSN", "http://k@127.0.0.1:9/2")
    assert reporting_dsn(Settings()) == "http://k@127.0.0.1:9/2"
    assert reporting_dsn(Settings(sentry_dsn="http://own@127.0.0.1:9/3")) == "http://own@127.0.0.1:9/3"


def test_an_event_keeps_only_safe_headers_and_no_body_cookies_user_or_locals():
    event = {
        "request": {
            "method": "POST",
            "url": "http://node/",
            "headers": {"User-Agent": "ua", "X-API-Key": API_KEY, "Authorization": "Bearer t", "Cookie": "c"},
            "data": '{"input": "00"}',
            "cookies": {"c": "1"},
            "query_string": "input=00",
            "env": {"REMOTE_ADDR": "192.0.2.1"},
        },
        "user": {"ip_address": "192.0.2.1"},
        "exception": {"values": [{"stacktrace": {"frames": [{"function": "f", "vars": {"data": "00"}}]}}]},
    }
    scrubbed = scrub(event, {})
    assert scrubbed["request"] == {"method": "POST", "url": "http://node/", "headers": {"User-Agent": "ua"}}
    assert "user" not in scrubbed
    assert scrubbed["exception"]["values"][0]["stacktrace"]["frames"] == [{"function": "f"}]
