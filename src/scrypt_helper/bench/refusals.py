"""Cheap refusals: 429, 400 and 503 answers per second beside a bare app's 200s, and their CPU.

One generator process keeps 32 keep-alive connections to each target and measures them in turns
of short rounds (bare, 429, 400, 503, bare, ...), so that a slow spell of the machine hits every
kind alike; then the same through ``wrk`` where it is installed. Every answer of a round must carry
the status claimed for it: a round with any other is an error, not a figure.

How each answer is provoked:

- bare: ``bench.bare_app`` (uvicorn, httptools, uvloop, as many processes as the node);
- 429: a node whose one rule bans an address after a single request a minute; the generator's
  address is banned before the rounds, and every request carries a valid body;
- 400: a node without rate limits and with an idle worker (a node may refuse by early admission, before
  reading a body, when no worker is free), sent a body whose ``N`` is not allowed (errno 107);
- 503: a node without rate limits, one worker and no waiting room (``--queue-size 0``), sent
  valid bodies while a keeper's hash of a slow allowed set (``p=16``, a few seconds on libsodium)
  holds that worker: every request meets a full queue. The keeper is sent before each cycle of
  rounds and must still be running when each 503 round ends; the cycle's other rounds see the same
  busy worker, so it weighs on every kind alike.

The node's CPU per answer counts its main threads only (the event loops, not the hash workers).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from dataclasses import dataclass, field
from typing import Any

import httpx

from scrypt_helper.bench.bare_app import BareServer
from scrypt_helper.bench.load import Requests, ask, closed_loop, connect, request_bytes
from scrypt_helper.bench.load.child import Child, run_async
from scrypt_helper.bench.load.http1 import Stream
from scrypt_helper.bench.local_servers import LocalServer
from scrypt_helper.bench.report import progress
from scrypt_helper.bench.tls import shared_tls
from scrypt_helper.bench.wrk import WrkFigure, run_wrk, wrk_path
from scrypt_helper.core.config import allowed_params_json
from scrypt_helper.engines import ScryptParams
from scrypt_helper.observability.process_usage import tree_cpu_seconds
from scrypt_helper_client import request_body

CONNECTIONS = 32
ROUND_SECONDS = 0.25
WRK_SECONDS = 1  # wrk's shortest run
# As much memory as the production set, sixteen times its work: one hash holds a worker for seconds.
SLOW_PARAMS = ScryptParams(salt=b"bench-keeper", n=65536, r=8, p=16, buflen=32)
BAN_AFTER_ONE = "request : ip : 1 : 60s : 600s : ban"
# A keeper's hash alone took this long; rounds that must see it running end within this share of it.
KEEPER_BUDGET = 0.8
RATIO_TARGET = 0.65


class RoundError(RuntimeError):
    """A round whose answers were not all the status measured."""


def check_round(kind: str, statuses: dict[int, int], expect: int) -> None:
    """Raise RoundError unless every answer (at least one) has status ``expect`` (0: a failure)."""
    if not statuses.get(expect) or any(status != expect for status in statuses):
        raise RoundError(
            f"{kind} round: answers by status {dict(sorted(statuses.items()))}; every one must be {expect}"
        )


@dataclass(frozen=True, slots=True)
class Target:
    """One kind of answer: where to send which body, the status every answer must have, and the
    server process whose CPU time it costs."""

    kind: str
    host: str
    port: int
    body: bytes
    expect: int
    pid: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def request(self) -> bytes:
        return request_bytes(self.host, self.port, self.body)

    @property
    def requests(self) -> Requests:
        return Requests(self.host, self.port, self.body)


@dataclass(frozen=True, slots=True)
class Plan:
    """What the generator process measures: the targets in turn order, the keeper's node and body."""

    targets: tuple[Target, ...]
    keeper: Target
    seconds: float  # per kind, over all its rounds
    wrk_rounds: int


@dataclass(slots=True)
class Round:
    """One round of one kind: its answers by status, its length, and the CPU both sides used."""

    kind: str
    seconds: float
    statuses: dict[int, int]
    server_cpu: float
    generator_cpu: float
    tool: str = "bench"

    @property
    def answers(self) -> int:
        return sum(self.statuses.values())


@dataclass(slots=True)
class Measured:
    keeper_seconds: float
    round_seconds: float
    rounds: list[Round] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


async def _exchange(stream: Stream, request: bytes) -> int:
    return (await ask(stream, request)).status


@dataclass(slots=True)
class _Held:
    task: asyncio.Task[int]
    started: float


async def _hold(keeper: Target) -> _Held:
    """Send the keeper's slow hash; return once the node reports it running."""
    loop = asyncio.get_running_loop()
    stream = await connect(keeper.host, keeper.port)
    started = loop.time()
    task = loop.create_task(_exchange(stream, keeper.request))
    task.add_done_callback(lambda _: stream[1].close())
    beat = await connect(keeper.host, keeper.port)
    request = f"GET /__heartbeat__ HTTP/1.1\r\nHost: {keeper.host}:{keeper.port}\r\n\r\n".encode()
    try:
        while loop.time() < started + 10:
            answer = await ask(beat, request)
            if json.loads(answer.body)["details"]["node"]["in_flight"] >= 1:
                return _Held(task, started)
            if task.done():
                raise RoundError(f"the keeper was answered {task.result()} before it ran")
            await asyncio.sleep(0.002)
    finally:
        beat[1].close()
    raise RoundError("the keeper's hash did not start within 10 s")


async def _round(streams: list[Stream], target: Target, seconds: float) -> Round:
    """Every connection (kept open from round to round) sends, waits for the answer and sends
    again, for ``seconds``."""
    server_before = tree_cpu_seconds(target.pid, main_threads=True)
    run = await closed_loop(target.requests, connections=len(streams), seconds=seconds, pool=streams)
    return Round(
        kind=target.kind,
        seconds=run.seconds,
        statuses=run.statuses,
        server_cpu=tree_cpu_seconds(target.pid, main_threads=True) - server_before,
        generator_cpu=run.cpu_seconds,
    )


async def _time_keeper(keeper: Target) -> float:
    """How long one keeper hash takes on the idle node, from send to answer."""
    loop = asyncio.get_running_loop()
    stream = await connect(keeper.host, keeper.port)
    started = loop.time()
    try:
        status = await _exchange(stream, keeper.request)
    finally:
        stream[1].close()
    if status != 200:
        raise RoundError(f"the keeper's hash was answered {status}")
    return loop.time() - started


async def _wrk_round(target: Target, held: _Held) -> tuple[Round, WrkFigure]:
    server_before = tree_cpu_seconds(target.pid, main_threads=True)
    figure, wrk_cpu = await run_wrk(target.url, target.body, connections=CONNECTIONS, seconds=WRK_SECONDS)
    server_cpu = tree_cpu_seconds(target.pid, main_threads=True) - server_before
    # wrk counts only "not 2xx/3xx": one request right after says which status the node gave.
    probe = await connect(target.host, target.port)
    try:
        probed = await _exchange(probe, target.request)
    finally:
        probe[1].close()
    if target.expect == 503 and held.task.done():
        raise RoundError("the keeper's hash ended within a wrk 503 round")
    refused = figure.non_2xx if target.expect >= 400 else figure.requests - figure.non_2xx
    if refused != figure.requests or probed != target.expect:
        raise RoundError(
            f"wrk {target.kind} round: {figure.non_2xx} of {figure.requests} answers not 2xx/3xx, "
            f"a request right after answered {probed}; every one must be {target.expect}"
        )
    statuses = {target.expect: figure.requests}
    return Round(target.kind, figure.seconds, statuses, server_cpu, wrk_cpu, tool="wrk"), figure


async def measure(plan: Plan) -> Measured:
    """The interleaved rounds of ``plan`` through bench's generator, then through wrk."""
    loop = asyncio.get_running_loop()
    keeper_seconds = await _time_keeper(plan.keeper)
    budget = KEEPER_BUDGET * keeper_seconds
    # A whole cycle of rounds fits in the budget, with room for the keeper's start.
    round_seconds = min(ROUND_SECONDS, 0.85 * budget / len(plan.targets))
    result = Measured(keeper_seconds=keeper_seconds, round_seconds=round_seconds)
    streams = {
        target.kind: [await connect(target.host, target.port) for _ in range(CONNECTIONS)]
        for target in plan.targets
    }
    measured = {target.kind: 0.0 for target in plan.targets}
    try:
        while min(measured.values()) < plan.seconds:
            held = await _hold(plan.keeper)
            cycles = 0
            while loop.time() + len(plan.targets) * round_seconds <= held.started + budget:
                for target in plan.targets:
                    figure = await _round(streams[target.kind], target, round_seconds)
                    if target.expect == 503 and held.task.done():
                        raise RoundError("the keeper's hash ended within a 503 round")
                    check_round(target.kind, figure.statuses, target.expect)
                    result.rounds.append(figure)
                    measured[target.kind] += figure.seconds
                cycles += 1
                if min(measured.values()) >= plan.seconds:
                    break
            if await held.task != 200:
                raise RoundError("the keeper's hash was not answered 200")
            if not cycles:
                raise RoundError("no cycle of rounds fitted within the keeper's hash")
        if plan.wrk_rounds and wrk_path() is None:
            result.notes.append("wrk is not on PATH: its rounds were skipped (apt-get install wrk)")
        elif plan.wrk_rounds:
            await _wrk_rounds(plan, budget, result)
    finally:
        for connections in streams.values():
            for _, writer in connections:
                writer.close()
    return result


async def _wrk_rounds(plan: Plan, budget: float, result: Measured) -> None:
    # The 503 round goes first in each cycle, while the keeper's hash surely runs.
    ordered = sorted(plan.targets, key=lambda target: target.expect != 503)
    if budget < WRK_SECONDS + 0.3:
        ordered = [target for target in ordered if target.expect != 503]
        result.notes.append(f"wrk 503 skipped: the keeper's hash ({budget:.1f} s) is shorter than a wrk run")
    for _ in range(plan.wrk_rounds):
        held = await _hold(plan.keeper)
        for target in ordered:
            figure, _ = await _wrk_round(target, held)
            result.rounds.append(figure)
        if await held.task != 200:
            raise RoundError("the keeper's hash was not answered 200")


def _measure(plan: Plan) -> Measured:
    return run_async(measure(plan))


def summarise(measured: Measured) -> dict[str, Any]:
    """Per tool and kind: answers per second, the ratio to the bare app, the node's CPU per answer."""
    report: dict[str, Any] = {
        "keeper_seconds": round(measured.keeper_seconds, 2),
        "round_seconds": round(measured.round_seconds, 3),
        "notes": measured.notes,
    }
    for tool in ("bench", "wrk"):
        rows: dict[str, dict[str, Any]] = {}
        for kind in dict.fromkeys(r.kind for r in measured.rounds if r.tool == tool):
            rounds = [r for r in measured.rounds if r.tool == tool and r.kind == kind]
            seconds = sum(r.seconds for r in rounds)
            answers = sum(r.answers for r in rounds)
            rows[kind] = {
                "rounds": len(rounds),
                "answers": answers,
                "seconds": round(seconds, 2),
                "per_second": round(answers / seconds, 1),
                "server_cpu_us_per_answer": round(sum(r.server_cpu for r in rounds) / answers * 1e6, 1),
                "generator_cores": round(sum(r.generator_cpu for r in rounds) / seconds, 2),
            }
        if "bare" in rows:
            for row in rows.values():
                row["vs_bare"] = round(row["per_second"] / rows["bare"]["per_second"], 3)
        report[tool] = rows
    return report


def pid_of(process: subprocess.Popen[bytes] | None) -> int:
    if process is None:
        raise RuntimeError("the server is not running")
    return process.pid


def _ban(url: str, body: bytes) -> None:
    """Have the 429 node ban this address: its rule allows one request a minute."""
    with httpx.Client(base_url=url, timeout=10, verify=shared_tls()) as client:
        statuses = [client.post("/", content=body).status_code for _ in range(3)]
    if statuses[-1] != 429:
        raise RoundError(f"the ban did not take: statuses {statuses}")


def measure_refusals(
    params: ScryptParams,
    seconds: float,
    *,
    processes: int = 1,
    wrk_rounds: int = 2,
    node_flags: dict[str, object] | None = None,
) -> dict[str, Any]:
    """Start the bare app and the refusing nodes (with ``node_flags``, e.g. ``early_admission=false``),
    measure in a generator process, summarise."""
    valid = json.dumps(request_body(params, bytes(range(32)))).encode()
    bad = json.dumps({**request_body(params, bytes(range(32))), "N": params.n * 2}).encode()
    keeper_body = json.dumps(request_body(SLOW_PARAMS, bytes(range(32)))).encode()
    # Process count only once the node has the flag; until then every server runs one.
    extra: dict[str, object] = {"processes": processes} if processes > 1 else {}
    common = {
        "engine": "libsodium",  # one lane: start-up times a single slow hash, not a batch of them
        "workers": 1,
        "max_connections": 4096,
        "max_connections_per_client": 4096,
        **extra,
        **(node_flags or {}),
    }
    progress("refusals: starting the bare app and three nodes: one bans, one parses, one is kept busy")
    allowed = allowed_params_json(params)
    with (
        BareServer(processes) as bare,
        LocalServer(allowed_params=allowed, rules=BAN_AFTER_ONE, **common) as banning,
        LocalServer(allowed_params=allowed, rules="", **common) as parsing,
        LocalServer(
            allowed_params=allowed_params_json(params, SLOW_PARAMS), rules="", queue_size=0, **common
        ) as busy,
    ):
        bare_pid, banning_pid, parsing_pid, busy_pid = (
            pid_of(server.process) for server in (bare, banning, parsing, busy)
        )
        _ban(banning.url, valid)
        targets = (
            Target("bare", bare.host, bare.port, valid, 200, bare_pid),
            Target("429", banning.host, banning.port, valid, 429, banning_pid),
            Target("400", parsing.host, parsing.port, bad, 400, parsing_pid),
            Target("503", busy.host, busy.port, valid, 503, busy_pid),
        )
        keeper = Target("keeper", busy.host, busy.port, keeper_body, 200, busy_pid)
        plan = Plan(targets, keeper, seconds, wrk_rounds)
        progress(f"refusals: {seconds:.0f} s of rounds per kind, {CONNECTIONS} connections, then wrk")
        timeout = 4 * seconds * 4 + wrk_rounds * 30 + 120
        measured = Child(_measure, plan).start().result(timeout)
    return summarise(measured)
