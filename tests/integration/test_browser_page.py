"""The example page (examples/browser) in headless Chromium, served from an origin of its own.

The page and the client module come from a static server on 127.0.0.1; the nodes are real
``scrypt-helper serve`` processes on other ports, so every POST is cross-origin and preflighted,
as in production. ``http://localhost:PORT`` is the same page from an origin the node does not allow.
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlencode

import pytest

from scrypt_helper.bench.local_servers import LocalServer, free_port
from scrypt_helper.bench.tls import http_get, http_post
from scrypt_helper.engines.vectors import PICL_PARAMS
from scrypt_helper_client import request_body
from tests.conftest import SMALL, allowed_json, local_node

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
EMAIL = "andré@example.org"
PASSWORD = "pässwörd"  # noqa: S105 - the published test vector
STRETCHED = "c16d46c31bee242cb31f916e9e38d60b76431d3f5304549cc75ae4bc20c7108c"

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="Chromium is not installed (apt-get install chromium chromium-driver)",
)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def page_port() -> Iterator[int]:
    """The repository's files over HTTP: the page imports the client module from clients/js."""
    handler = functools.partial(QuietHandler, directory=str(ROOT))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        yield httpd.server_address[1]
        httpd.shutdown()


@pytest.fixture(scope="module")
def starting(page_port: int) -> Iterator[tuple[dict[str, LocalServer], list[Future[LocalServer]]]]:
    """The nodes, starting in threads while the browser starts (each takes seconds)."""
    # Refused before their bodies are read, so the page's production-set request is never parsed.
    small = {"engine": "hashlib", "allowed_params": allowed_json(SMALL)}
    servers = {
        # the page's origin only; one hash a second, so a second hash within it gets Retry-After: 1
        "main": local_node(
            allowed_params=allowed_json(PICL_PARAMS, SMALL),
            cors_origins=f"http://127.0.0.1:{page_port}",
            rules="scrypt : ip : 1 : 1s : 1s : block",
            drain_seconds=0,
        ),
        # one request a minute per address, then blocked for a minute: 429 with Retry-After: 60
        "blocking": local_node(**small, rules="request : ip : 1 : 60s : 60s : block", drain_seconds=0),
        # its Redis never answers and it fails closed: 503 with Retry-After: 1 to every request
        "unavailable": local_node(
            **small,
            rules="request : ip : 1000 : 60s : 60s : block",
            redis_url=f"redis://127.0.0.1:{free_port()}",
            redis_fail_closed="true",
            drain_seconds=0,
        ),
    }
    with ExitStack() as stack:
        for node in servers.values():
            stack.callback(node.stop, 5)
        pool = stack.enter_context(ThreadPoolExecutor(len(servers)))
        yield servers, [pool.submit(node.start) for node in servers.values()]


@pytest.fixture(scope="module")
def nodes(starting, browser) -> dict[str, LocalServer]:
    servers, started = starting
    for future in started:
        future.result()
    http_post(servers["blocking"].url + "/", json=request_body(SMALL, b"x"))  # its one request
    return servers


@pytest.fixture(scope="module")
def browser(starting) -> Iterator[object]:
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1000,760")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the page's console, on failure
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))  # no driver download
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def stretch_in_page(browser, tmp_path: Path, origin: str, helper: str, **query: object) -> dict[str, object]:
    """Open the page at ``origin``, stretch the published vector on ``helper``; what the page shows."""
    browser.get(f"{origin}/examples/browser/index.html?" + urlencode({"helper": helper, **query}))
    browser.find_element("id", "email").clear()
    browser.find_element("id", "email").send_keys(EMAIL)
    browser.find_element("id", "password").send_keys(PASSWORD)
    browser.find_element("id", "go").click()
    deadline = time.monotonic() + 30
    while browser.execute_script("return document.body.dataset.state") in (None, "working"):
        assert time.monotonic() < deadline, f"the page never finished: {browser.get_log('browser')}"
        time.sleep(0.05)
    browser.save_screenshot(str(tmp_path / "page.png"))
    shown = {name: browser.find_element("id", name).text for name in ("phase", "result", "error", "attempts")}
    return {**shown, "events": browser.execute_script("return window.stretchEvents")}


def hashes(node: LocalServer) -> float:
    match = re.search(r"^scrypt_helper_batch_size_count (\S+)$", http_get(node.url + "/metrics").text, re.M)
    return float(match.group(1)) if match else 0.0


def methods_logged(node: LocalServer) -> list[str]:
    lines = (json.loads(line) for line in node.logs().splitlines() if line.startswith("{"))
    return [line["Fields"]["method"] for line in lines if line.get("Type") == "request.summary"]


def test_the_published_vector_through_a_preflighted_json_post(browser, nodes, page_port, tmp_path):
    node = nodes["main"]
    before = hashes(node)
    shown = stretch_in_page(browser, tmp_path, f"http://127.0.0.1:{page_port}", node.url)
    assert shown["result"] == STRETCHED, shown
    assert shown["error"] == ""
    assert [event["phase"] for event in shown["events"]] == ["first-pbkdf", "scrypt", "second-pbkdf", "done"]
    assert hashes(node) == before + 1
    assert "OPTIONS" in methods_logged(node)  # the browser asked first, and was allowed


def test_an_origin_not_allowed_is_refused_by_the_browser_itself(browser, nodes, page_port, tmp_path):
    node = nodes["main"]
    before = hashes(node)
    shown = stretch_in_page(browser, tmp_path, f"http://localhost:{page_port}", node.url, attempts=1)
    assert shown["result"] == ""
    assert "No answer from the helper" in shown["error"], shown
    assert "not allowed from this origin" in shown["error"]
    assert hashes(node) == before  # the node never computed


def test_a_429_is_shown_as_a_readable_error(browser, nodes, page_port, tmp_path):
    shown = stretch_in_page(browser, tmp_path, f"http://127.0.0.1:{page_port}", nodes["blocking"].url)
    assert shown["result"] == ""
    assert "HTTP 429, errno 114" in shown["error"], shown
    assert "Client has sent too many requests" in shown["error"]
    assert "after 1 attempt(s)" in shown["error"]  # Retry-After: 60 is past the deadline: no retry


def test_a_503_is_shown_as_a_readable_error(browser, nodes, page_port, tmp_path):
    shown = stretch_in_page(
        browser, tmp_path, f"http://127.0.0.1:{page_port}", nodes["unavailable"].url, attempts=2
    )
    assert shown["result"] == ""
    assert "HTTP 503, errno 201" in shown["error"], shown
    assert "Service unavailable" in shown["error"]
    assert "after 2 attempt(s)" in shown["error"]  # retried once, after its Retry-After


def test_the_page_waits_as_retry_after_says(browser, nodes, page_port, tmp_path):
    node = nodes["main"]
    # The page must ask within the second whose hash was spent; a machine too busy to open it that
    # fast sets the scene again (at most six times) rather than test nothing.
    for _ in range(6):
        time.sleep(1.1)  # the block of an earlier hash has passed
        http_post(node.url + "/", json=request_body(SMALL, b"spend this second's hash"))
        shown = stretch_in_page(browser, tmp_path, f"http://127.0.0.1:{page_port}", node.url)
        assert shown["result"] == STRETCHED, shown
        events = shown["events"]
        if len(events) > 2 and events[2]["phase"] == "waiting":
            break
    assert [event["phase"] for event in events][1:4] == ["scrypt", "waiting", "scrypt"]
    waiting, retried = events[2], events[3]
    assert waiting["status"] == 429
    assert waiting["ms"] >= 1000  # read from Retry-After: 1, which the node lets the page read
    assert retried["at"] - waiting["at"] >= 1000
    assert "waiting" in shown["attempts"]
