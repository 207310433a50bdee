"""A node of several front processes, as ``scrypt-helper serve --processes 2`` runs it: every process
serves, the metrics add up to the node's, SIGTERM drains them all, a dead process stops the node,
and a node whose limits need one process keeps to one."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scrypt_helper.bench.local_servers import LocalServer, free_port
from scrypt_helper.bench.tls import http_get, http_post, shared_tls
from scrypt_helper.engines import ScryptParams
from scrypt_helper.engines.vectors import PICL_PARAMS
from scrypt_helper_client import request_body
from tests.conftest import SMALL, allowed_json, local_node

# Several processes without Redis: no rules, and a trusted proxy in charge of per-client connections.
SHARABLE = {"processes": 2, "workers": 2, "rules": "", "trusted_proxies": "1", "engine": "hashlib"}
# Connections a test opens to see every process answer: SO_REUSEPORT hashes each new connection,
# so all of them reaching one of 2 processes has a chance of 2**-59.
PROBES = 60


def wait_for(predicate, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} never became true"
        time.sleep(0.05)


def answering_pids(url: str, probes: int = PROBES) -> set[int]:
    """The pids that answer ``__heartbeat__`` on fresh connections, until two have answered."""
    pids: set[int] = set()
    for _ in range(probes):
        pids.add(http_get(url + "/__heartbeat__", timeout=10).json()["details"]["node"]["pid"])
        if len(pids) == 2:
            break
    return pids


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def summaries(logs: str, path: str, method: str) -> list[dict]:
    """request.summary lines for one route, each with the ``Pid`` of the process that answered."""
    found = []
    for line in logs.splitlines():
        if '"request.summary"' not in line:
            continue
        entry = json.loads(line)
        if entry["Fields"]["path"] == path and entry["Fields"]["method"] == method:
            found.append(entry)
    return found


def metric(text: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    assert match, f"{series} not in metrics"
    return float(match.group(1))


def scrypt(params: ScryptParams, data: bytes) -> str:
    return hashlib.scrypt(
        data, salt=params.salt, n=params.n, r=params.r, p=params.p, maxmem=2**28, dklen=params.buflen
    ).hex()


@pytest.fixture(scope="module")
def node() -> Iterator[LocalServer]:
    with local_node(**SHARABLE, allowed_params=allowed_json(SMALL)) as server:
        yield server


async def test_the_processes_start_listening_together():
    # LocalServer returns the moment the port answers; the connections opened right then must
    # reach both processes. Had the port opened with the first process built (its engine timed,
    # its buffers reserved, about a second), those first keep-alive connections would all be its.
    flags = {**SHARABLE, "engine": "native", "allowed_params": allowed_json(PICL_PARAMS)}
    with local_node(**flags) as server:
        pids: set[int] = set()
        async with httpx.AsyncClient(base_url=server.url, timeout=30, verify=shared_tls()) as client:
            for _ in range(2):  # 24 new connections at once, twice within 0.1 s
                answers = await asyncio.gather(
                    *(client.get("/__heartbeat__", headers={"Connection": "close"}) for _ in range(24))
                )
                pids |= {answer.json()["details"]["node"]["pid"] for answer in answers}
                await asyncio.sleep(0.1)
        assert len(pids) == 2


def test_two_processes_of_the_node_answer_each_with_a_pid_of_its_own(node):
    pids = answering_pids(node.url)
    assert len(pids) == 2
    assert node.process.pid not in pids
    assert {parent_of(pid) for pid in pids} == {node.process.pid}
    seen = {}
    for _ in range(PROBES):
        details = http_get(node.url + "/__heartbeat__").json()["details"]["node"]
        seen[details["pid"]] = details
    assert set(seen) == pids
    for details in seen.values():
        assert details["processes"] == 2
        assert details["workers"] == 1  # this process's share of the node's 2
        assert details["dumpable"] is False  # each process forbids core dumps itself


def test_both_processes_compute_correct_hashes(node):
    inputs = [os.urandom(32) for _ in range(30)]
    before = len(node.logs())
    for data in inputs:
        response = http_post(node.url + "/", json=request_body(SMALL, data), timeout=10)
        assert response.status_code == 200, response.text
        assert response.json() == {"output": scrypt(SMALL, data)}
    time.sleep(0.2)  # each process logs its answer as it sends it
    answered = summaries(node.logs()[before:], "/", "POST")
    assert len(answered) == len(inputs)
    assert len({entry["Pid"] for entry in answered}) == 2


def test_metrics_add_up_to_the_node_whichever_process_answers(node):
    posts = 'scrypt_helper_requests_total{method="POST",route="/",status="200"}'
    start = metric(http_get(node.url + "/metrics").text, posts)
    sent = 25
    for _ in range(sent):
        assert http_post(node.url + "/", json=request_body(SMALL, b"\x01"), timeout=10).status_code == 200
    before = len(node.logs())
    scrapes = [http_get(node.url + "/metrics").text for _ in range(12)]
    for text in scrapes:
        assert metric(text, posts) - start == sent
        assert metric(text, "scrypt_helper_batch_size_count") >= start + sent
        assert len(re.findall(r"^scrypt_helper_engine_info\{", text, re.MULTILINE)) == 1
        assert "pid=" not in text
    time.sleep(0.2)
    assert len({entry["Pid"] for entry in summaries(node.logs()[before:], "/metrics", "GET")}) == 2
    # Each process writes its gauges at least once a second for the others' scrapes.
    wait_for(lambda: metric(http_get(node.url + "/metrics").text, "scrypt_helper_workers") == 2)
    text = http_get(node.url + "/metrics").text
    assert metric(text, "scrypt_helper_queue_capacity") > 0
    assert metric(text, "scrypt_helper_in_flight") == 0


@pytest.mark.parametrize("whole_group", [False, True], ids=["parent", "every-process"])
async def test_sigterm_drains_every_process_answers_in_flight_and_exits_cleanly(whole_group):
    """SIGTERM to the parent (Kubernetes, docker) or to every process at once (systemd's default
    KillMode): either way each process drains once, then stops."""
    metrics_port = free_port()
    node = local_node(
        **SHARABLE,
        queue_size=16,
        max_queue_wait=30,
        drain_seconds=3.0,
        metrics_port=metrics_port,
        allowed_params=allowed_json(PICL_PARAMS),
    ).start()
    private = f"http://127.0.0.1:{metrics_port}"
    try:
        wait_for(lambda: len(answering_pids(node.url)) == 2, what="both processes answering")
        children = answering_pids(private)
        assert len(children) == 2  # the private port is served by every process too
        wait_for(lambda: metric(http_get(private + "/metrics").text, "scrypt_helper_workers") == 2)
        inputs = [os.urandom(32) for _ in range(6)]
        # One client per request: each connection lands on either process.
        clients = [httpx.AsyncClient(base_url=node.url, timeout=60, verify=shared_tls()) for _ in inputs]
        jobs = [
            asyncio.ensure_future(client.post("/", json=request_body(PICL_PARAMS, data)))
            for client, data in zip(clients, inputs, strict=True)
        ]

        async def in_flight() -> int:
            async with httpx.AsyncClient(base_url=node.url, timeout=10, verify=shared_tls()) as probe:
                return (await probe.get("/__heartbeat__")).json()["details"]["node"]["in_flight"]

        deadline = time.monotonic() + 15
        while await in_flight() == 0:
            assert time.monotonic() < deadline, "no hash ever in flight"
            await asyncio.sleep(0.01)
        for pid in [node.process.pid, *(children if whole_group else ())]:
            os.kill(pid, signal.SIGTERM)
        draining: set[int] = set()
        deadline = time.monotonic() + 2.5
        while draining != children:
            assert time.monotonic() < deadline, f"only {draining} of {children} drained"
            async with httpx.AsyncClient(base_url=node.url, timeout=5, verify=shared_tls()) as probe:
                details = (await probe.get("/__heartbeat__")).json()["details"]["node"]
                if details["draining"]:
                    assert (await probe.get("/__lbheartbeat__")).status_code == 503
                    draining.add(details["pid"])
        responses = await asyncio.gather(*jobs)
        for client in clients:
            await client.aclose()
        assert [r.json()["output"] for r in responses] == [scrypt(PICL_PARAMS, data) for data in inputs]
        assert await asyncio.to_thread(node.wait, 30) == 0
        assert not any(Path(f"/proc/{pid}").exists() for pid in children)
        assert not metrics_directory(node.logs()).exists()
        with pytest.raises(httpx.ConnectError):
            http_get(node.url + "/__lbheartbeat__")
        assert node.logs().count("draining for 3.0 s") == 2
    finally:
        node.stop()


def test_a_process_that_dies_stops_the_node_with_a_failure():
    with local_node(**SHARABLE, drain_seconds=0.2, allowed_params=allowed_json(SMALL)) as node:
        wait_for(lambda: len(answering_pids(node.url)) == 2, what="both processes answering")
        victim, survivor = sorted(answering_pids(node.url))
        os.kill(victim, signal.SIGKILL)
        assert node.wait(20) == 1
        assert not Path(f"/proc/{survivor}").exists()
        assert f"(pid {victim}) exited with -9: stopping the node" in node.logs()


def test_the_processes_stop_when_the_parent_is_killed():
    with local_node(**SHARABLE, drain_seconds=0.2, allowed_params=allowed_json(SMALL)) as node:
        wait_for(lambda: len(answering_pids(node.url)) == 2, what="both processes answering")
        children = answering_pids(node.url)
        directory = metrics_directory(node.logs())
        assert directory.is_dir()
        node.process.kill()
        node.process.wait(10)
        wait_for(lambda: not any(running(pid) for pid in children), timeout=20, what="the processes gone")
        # The orphans removed their metrics files, and the last one the directory.
        wait_for(lambda: not directory.exists(), timeout=5, what="the metrics directory removed")


def metrics_directory(logs: str) -> Path:
    match = re.search(r"metrics in (\S+?)\"", logs)
    assert match, "the parent never said where the metrics are"
    return Path(match.group(1))


def running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie waiting for a reaper."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        ({"rules": "scrypt : ip : 100 : 60s : 60s : block"}, "rate-limit rules without --redis-url"),
        ({"trusted_proxies": "0"}, "--max-connections-per-client applies"),
    ],
)
def test_a_node_whose_limits_need_one_process_falls_back_to_one_and_says_why(flags, reason):
    with local_node(**{**SHARABLE, **flags}, allowed_params=allowed_json(SMALL)) as node:
        pids = {http_get(node.url + "/__heartbeat__").json()["details"]["node"]["pid"] for _ in range(10)}
        assert pids == {node.process.pid}  # no child process: the node serves in the one started
        details = http_get(node.url + "/__heartbeat__").json()["details"]["node"]
        assert (details["processes"], details["workers"]) == (1, 2)
        warnings = [
            json.loads(line)
            for line in node.logs().splitlines()
            if "serving in one process" in line and reason in line
        ]
        assert len(warnings) == 1
        assert warnings[0]["Severity"] == 4  # a warning: the operator asked for 2


def test_with_redis_a_limit_holds_across_the_processes(redis_server):
    rules = "scrypt : ip : 6 : 60s : 60s : block"
    with local_node(
        **{**SHARABLE, "rules": rules}, redis_url=redis_server.url, allowed_params=allowed_json(SMALL)
    ) as node:
        wait_for(lambda: len(answering_pids(node.url)) == 2, what="both processes answering")
        before = len(node.logs())
        statuses = [
            http_post(node.url + "/", json=request_body(SMALL, b"\x02"), timeout=10).status_code
            for _ in range(12)
        ]
        assert statuses == [200] * 6 + [429] * 6
        time.sleep(0.2)
        assert len({entry["Pid"] for entry in summaries(node.logs()[before:], "/", "POST")}) == 2


def test_more_processes_than_workers_is_refused_at_start_up():
    flags = {**SHARABLE, "processes": 3, "port": free_port()}
    argv = [sys.executable, "-m", "scrypt_helper", "serve"]
    for name, value in flags.items():
        argv += ["--" + name.replace("_", "-"), str(value)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2  # a usage error, found before any engine starts
    assert "--processes 3 needs at least 3 --workers (one per process), but the node has 2" in result.stderr
