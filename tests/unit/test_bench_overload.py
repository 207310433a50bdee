"""``bench overload``'s pure parts: arrival schedules, requests, criteria marks, round checks, the
node's and wrk's figures read back, and the summaries built from them."""

from __future__ import annotations

import ipaddress
import itertools
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import time

import pytest

from scrypt_helper.bench.criteria import MISS, NO_DATA, PASS, Figure, at_least, at_most, table
from scrypt_helper.bench.engine import TINY_PARAMS
from scrypt_helper.bench.honest import flood_requests
from scrypt_helper.bench.load import OpenLoopResult, Schedule, hash_requests
from scrypt_helper.bench.overload import level_report, node_refusals, parse_variant, post_summaries
from scrypt_helper.bench.refusals import Measured, Round, RoundError, check_round, summarise
from scrypt_helper.bench.wrk import parse_wrk, post_script
from scrypt_helper.core import scrypt_request
from scrypt_helper.core.errors import ApiError, Errno
from scrypt_helper.observability.process_usage import cpu_seconds, tree_cpu_seconds


def test_a_poisson_schedule_keeps_its_mean_rate_with_exponential_gaps():
    arrivals = Schedule(rate=500, seconds=20, seed=7).arrivals()
    assert 9_700 <= len(arrivals) <= 10_300  # 10,000 expected, 3 standard deviations either side
    assert arrivals == sorted(arrivals)
    assert arrivals[0] >= 0
    assert arrivals[-1] < 20
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    # An exponential gap's standard deviation equals its mean; an evenly paced one's is zero.
    assert statistics.stdev(gaps) / statistics.mean(gaps) == pytest.approx(1, abs=0.05)
    assert Schedule(rate=500, seconds=20, seed=7).arrivals() == arrivals
    assert Schedule(rate=500, seconds=20, seed=8).arrivals() != arrivals


def test_a_paced_schedule_sends_evenly_at_exactly_its_rate():
    arrivals = Schedule(rate=2000, seconds=1.5, kind="paced").arrivals()
    assert len(arrivals) == 3000
    assert arrivals[:3] == [0, 0.0005, 0.001]
    assert max(b - a for a, b in itertools.pairwise(arrivals)) == pytest.approx(0.0005)


def request_body(request: bytes) -> bytes:
    return request.partition(b"\r\n\r\n")[2]


def test_hash_requests_carry_a_valid_body_with_a_fresh_input_each():
    maker = hash_requests("127.0.0.1", 8080, TINY_PARAMS)
    rng = random.Random(1)
    first, second = maker.make(rng, 1), maker.make(rng, 2)
    assert first.startswith(b"POST / HTTP/1.1\r\n")
    assert b"X-Forwarded-For" not in first
    jobs = [scrypt_request.parse_request(request_body(r), (TINY_PARAMS,)) for r in (first, second)]
    assert jobs[0].params == TINY_PARAMS
    assert jobs[0].data != jobs[1].data
    assert len(jobs[0].data) == 32


def test_flood_requests_are_refused_by_the_parser_and_each_comes_from_a_fresh_ipv6_address():
    maker = flood_requests("127.0.0.1", 8080, TINY_PARAMS)
    rng = random.Random(1)
    requests = [maker.make(rng, index) for index in range(1, 51)]
    with pytest.raises(ApiError) as refused:
        scrypt_request.parse_request(request_body(requests[0]), (TINY_PARAMS,))
    assert (refused.value.status, refused.value.errno) == (400, Errno.INVALID_PARAMETER)
    addresses = set()
    for request in requests:
        header = next(line for line in request.split(b"\r\n") if line.startswith(b"X-Forwarded-For: "))
        addresses.add(ipaddress.IPv6Address(header.split(b": ", 1)[1].decode()))
    assert len(addresses) == 50
    assert len({ipaddress.IPv6Network(f"{address}/56", strict=False) for address in addresses}) == 50


def test_criteria_mark_pass_miss_and_no_data():
    assert at_least(85).mark(85.0) == PASS
    assert at_least(85).mark(84.9) == MISS
    assert at_most(20).mark(20.0) == PASS
    assert at_most(20).mark(20.1) == MISS
    assert at_most(20).mark(math.nan) == NO_DATA
    assert Figure("capacity", 51.7, "/s").mark == ""
    assert Figure("goodput at 5x", 70.6, "%", at_least(85)).mark == MISS


def test_the_table_shows_each_figure_with_its_criterion_and_mark():
    figures = [
        Figure("capacity", 51.7, "/s"),
        Figure("goodput at 5x", 88.2, "%", at_least(85), generator_cores=0.26, note="45.6/s"),
        Figure("refusal p99", 37.0, "ms", at_most(20)),
    ]
    lines = table(figures).splitlines()
    assert len(lines) == 4
    assert lines[1].split() == ["capacity", "51.7/s"]
    assert lines[2].split() == ["goodput", "at", "5x", "88.2%", ">=", "85.0%", "PASS", "0.26", "45.6/s"]
    assert lines[3].split() == ["refusal", "p99", "37.0", "ms", "<=", "20.0", "ms", "MISS"]
    row = figures[1].as_dict()
    assert (row["criterion"], row["mark"], row["generator_cores"]) == (">= 85", PASS, 0.26)
    assert Figure("x", math.nan, "ms", at_most(20)).as_dict()["value"] is None


def test_a_round_counts_only_if_every_answer_has_the_claimed_status():
    check_round("429", {429: 1000}, 429)
    for statuses in ({429: 999, 200: 1}, {429: 10, 0: 1}, {}, {503: 5}):
        with pytest.raises(RoundError, match="every one must be 429"):
            check_round("429", statuses, 429)


def summary_line(method: str, path: str, code: int, t: int) -> str:
    fields = {"method": method, "path": path, "code": code, "t": t, "agent": ""}
    return json.dumps({"Type": "request.summary", "Logger": "scrypt-helper", "Fields": fields})


def test_the_nodes_refusals_come_from_its_post_summaries():
    logs = "\n".join(
        [
            json.dumps({"Type": "scrypt_helper.server", "Fields": {"msg": "ready"}}),
            summary_line("POST", "/", 200, 900),
            summary_line("POST", "/", 503, 1),
            summary_line("POST", "/", 503, 2000),
            summary_line("POST", "/", 429, 3),
            summary_line("POST", "/", 499, 2500),  # the client left: no refusal
            summary_line("GET", "/__lbheartbeat__", 200, 0),
            summary_line("GET", "/", 503, 4000),
        ]
    )
    view = node_refusals(post_summaries(logs), max_wait_ms=2000)
    assert view["codes"] == {"200": 1, "429": 1, "499": 1, "503": 2}
    assert view["refusals"] == 3
    assert view["late_pct"] == pytest.approx(100 / 3)
    assert node_refusals([], 2000)["refusals"] == 0
    assert math.isnan(node_refusals([], 2000)["late_pct"])


def test_a_level_reports_goodput_against_capacity_and_late_refusals_as_the_client_saw_them():
    result = OpenLoopResult(seconds=10, offered=1000, sent=1000, late=3)
    result.statuses = {200: 450, 503: 550}
    result.latencies_ms = {200: [100.0] * 450, 503: [2.0] * 539 + [2100.0] * 11}
    result.ok_in_window = 425
    result.cpu_seconds, result.wall_seconds = 2.6, 10.4
    node = node_refusals([], 2000)
    level = level_report(5, capacity=50.0, result=result, node=node, max_wait=2.0)
    assert level["offered_per_second"] == 250.0
    assert level["goodput_per_second"] == 42.5
    assert level["goodput_pct"] == 85.0
    assert level["client_late_pct"] == 2.0
    assert level["generator_cores"] == 0.25
    assert level["late_sends"] == 3


def test_refusal_rounds_sum_to_rates_cpu_per_answer_and_ratios_to_the_bare_app():
    measured = Measured(keeper_seconds=2.9, round_seconds=0.25)
    for _ in range(2):
        measured.rounds += [
            Round("bare", 0.25, {200: 2500}, server_cpu=0.1, generator_cpu=0.1),
            Round("429", 0.25, {429: 1000}, server_cpu=0.2, generator_cpu=0.05),
        ]
    measured.rounds.append(Round("bare", 1.0, {200: 20000}, 0.7, 0.3, tool="wrk"))
    report = summarise(measured)
    assert report["bench"]["bare"]["per_second"] == 10_000
    assert report["bench"]["429"] == {
        "rounds": 2,
        "answers": 2000,
        "seconds": 0.5,
        "per_second": 4000,
        "server_cpu_us_per_answer": 200.0,
        "generator_cores": 0.2,
        "vs_bare": 0.4,
    }
    assert report["wrk"]["bare"]["server_cpu_us_per_answer"] == 35.0


WRK_OUTPUT = """\
Running 1s test @ http://127.0.0.1:40000/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     8.11ms    1.02ms  18.20ms   91.00%
    Req/Sec     3.95k   201.00     4.20k    70.00%
  3932 requests in 1.00s, 1.02MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 3932
Requests/sec:   3921.55
Transfer/sec:      1.02MB
"""


def test_wrks_summary_gives_requests_time_refusals_and_socket_errors():
    figure = parse_wrk(WRK_OUTPUT)
    assert (figure.requests, figure.seconds, figure.non_2xx, figure.socket_errors) == (3932, 1.0, 3932, 3)
    assert figure.rate == 3932
    plain = parse_wrk("  20862 requests in 1001.50ms, 2.1MB read\nRequests/sec: 20831.00\n")
    assert (plain.requests, plain.seconds, plain.non_2xx, plain.socket_errors) == (20862, 1.0015, 0, 0)
    with pytest.raises(ValueError, match="no request count"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_the_wrk_script_posts_the_body_as_json():
    script = post_script(b'{"input": "00", "salt": "a\\"b"}')
    assert 'wrk.method = "POST"' in script
    assert 'wrk.body = "{\\"input\\": \\"00\\", \\"salt\\": \\"a\\\\\\"b\\"}"' in script
    assert 'wrk.headers["Content-Type"] = "application/json"' in script


def test_a_servers_cpu_counts_its_child_processes_and_can_leave_out_worker_threads():
    with subprocess.Popen([sys.executable, "-c", CHILD_AND_THREAD], stdout=subprocess.PIPE) as parent:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())  # the child is running and the thread has spun
        try:
            deadline = time.monotonic() + 30
            while cpu_seconds(child) < 0.2:  # the child's own spin
                assert time.monotonic() < deadline, "the child never spun"
                time.sleep(0.05)
            parent_alone, child_alone = cpu_seconds(parent.pid), cpu_seconds(child)
            assert tree_cpu_seconds(parent.pid) >= parent_alone + child_alone
            # The spinning thread's CPU counts in the process, not in its main thread.
            assert tree_cpu_seconds(parent.pid) >= tree_cpu_seconds(parent.pid, main_threads=True) + 0.1
        finally:
            os.kill(child, signal.SIGKILL)
            parent.kill()


CHILD_AND_THREAD = """
import subprocess, sys, threading, time
SPIN = "import time\\nend = time.process_time() + 0.2\\nwhile time.process_time() < end: pass\\ntime.sleep(9)"
child = subprocess.Popen([sys.executable, "-c", SPIN])
def spin():
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass
thread = threading.Thread(target=spin)
thread.start()
thread.join()
print(child.pid, flush=True)
time.sleep(60)
"""


def test_node_variants_are_serve_flags():
    variant = parse_variant("processes=2, --max-queue-wait=0.5,workers=1")
    assert variant.flags == {"processes": "2", "max_queue_wait": "0.5", "workers": "1"}
    assert (variant.processes, variant.max_queue_wait) == (2, 0.5)
    default = parse_variant("")
    assert (default.flags, default.processes, default.max_queue_wait) == ({}, 1, 2.0)
    with pytest.raises(ValueError, match="name=value"):
        parse_variant("processes")


def test_overload_plots_are_drawn_for_every_node(tmp_path):
    from scrypt_helper.bench.plots import draw_overload_plots

    def variant(label: str) -> dict[str, object]:
        side = {"ok_per_second": 20.0, "p99_ms": 300.0, "heartbeat_p99_ms": 7.0}
        return {
            "label": label,
            "open_loop": [{"multiple": m, "goodput_pct": 100.0 - m} for m in (2, 5, 20)],
            "flood": {"alone": side, "during_flood": side, "flood": {"target_per_second": 2000.0}},
        }

    report = {"engine": "native", "cores": 2, "variants": [variant("processes=1"), variant("processes=2")]}
    paths = draw_overload_plots(report, tmp_path, "bench-overload")
    assert [path.name for path in paths] == ["bench-overload-goodput.png", "bench-overload-flood.png"]
    for path in paths:
        assert path.read_bytes().startswith(b"\x89PNG")


def test_batching_figures_mark_the_criteria_for_keeping_a_window():
    from scrypt_helper.bench.batching import batching_figures

    def row(clients: int, none: float, window: float, p50: tuple[float, float]) -> dict[str, object]:
        return {
            "clients": clients,
            "none": {"ok_per_second": none, "p50_ms": p50[0]},
            "window": {"ok_per_second": window, "p50_ms": p50[1]},
        }

    report = {
        "rows": [
            row(1, 20.0, 20.0, (40.0, 43.0)),
            row(16, 50.0, 53.0, (300, 290)),
            row(64, 60.0, 58.0, (900, 900)),
        ]
    }
    figures = {figure.name: figure for figure in batching_figures(report)}
    assert figures["worst load's throughput with the window"].value == pytest.approx(100 * 58 / 60)
    assert figures["worst load's throughput with the window"].mark == "MISS"  # lost 3.3% at 64 clients
    assert figures["best load's throughput with the window"].mark == "PASS"  # won 6% at 16
    assert figures["a lone client's p50 cost"].value == pytest.approx(3.0)
    assert figures["a lone client's p50 cost"].mark == "PASS"


def test_the_largest_node_one_loop_feeds_follows_from_its_cost_per_request():
    from scrypt_helper.bench.overload import feeding_figures

    capacity = {"loop_us_per_request": 250.0, "ok_per_second": 90.0, "workers": 2}
    cost, largest = feeding_figures(capacity, "")
    assert cost.value == 250.0
    # 4,000 requests/s at 45 hashes/s per core.
    assert largest.value == pytest.approx(4000 / 45)


def test_overload_parts_are_chosen_by_name_and_only_those_are_drawn(tmp_path):
    from scrypt_helper.bench.plots import draw_overload_plots
    from scrypt_helper.cli.main import build_parser

    args = build_parser().parse_args(["bench", "overload", "--parts", "refusals,open-loop"])
    assert args.parts == ["refusals", "open-loop"]
    assert build_parser().parse_args(["bench", "overload"]).parts == [
        "open-loop",
        "refusals",
        "flood",
        "batching",
    ]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "overload", "--parts", "open-loop,goodput"])
    only_open_loop = {
        "engine": "native",
        "cores": 2,
        "variants": [{"label": "workers=1", "open_loop": [{"multiple": 2, "goodput_pct": 99.0}]}],
    }
    paths = draw_overload_plots(only_open_loop, tmp_path, "bench-overload")
    assert [path.name for path in paths] == ["bench-overload-goodput.png"]


@pytest.mark.parametrize("seconds", [0.5, 2.0, 10.0])
def test_the_normal_client_beside_a_flood_starts_after_it_and_ends_before_it(seconds):
    from scrypt_helper.bench.abuse import flood_phases

    settle, beside = flood_phases(seconds)
    assert settle > 0
    assert beside > 0
    assert settle + beside < seconds
    assert settle == min(0.5, seconds / 4)
