"""A client's budget across regions, measured: each region counting alone, each dividing the budget
(``RegionsSharingBudget`` in ``deploy/aws``), and one store shared across regions.

    python -m harness.region_budgets [--seconds 10] [--delay-ms 35] [--engine native] [--tiny]

Two regions are two nodes on this machine. A client that hops regions alternates between them, one
hash at a time, until both refuse; one that stays sends to one region only. Then both nodes share
one Redis, the second region's through a proxy that delays every byte by ``--delay-ms`` each way
(a round trip of twice that, as between two AWS regions), and hash clients at each node measure
what the distance costs a hash.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx

from harness.measurement import measurement_arguments, params_and_engine, report_name
from scrypt_helper.abuse.rules import divided_rules, parse_rules
from scrypt_helper.bench.criteria import Figure, table
from scrypt_helper.bench.hash_load import hash_clients
from scrypt_helper.bench.local_servers import LocalRedis, LocalServer, free_port
from scrypt_helper.bench.report import run_header, write_report
from scrypt_helper.bench.tls import shared_tls
from scrypt_helper.core.config import allowed_params_json
from scrypt_helper.engines import ScryptParams
from scrypt_helper_client import request_body

REGIONS = 2
BUDGET = "scrypt : ip : 8 : 60s : 60s : block"
CLIENTS = 4
HOPPING, STAYING = "203.0.113.7", "203.0.113.8"
# Enough tries for a client to be refused by every region whatever it was allowed.
MOST = 4 * REGIONS * parse_rules(BUDGET)[0].attempts


class DelayProxy:
    """A TCP proxy on a free loopback port to ``port`` that holds every chunk ``delay`` seconds, in
    order, in each direction; it runs its own event loop in a thread."""

    def __init__(self, port: int, delay: float) -> None:
        self.target = port
        self.delay = delay
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await queue.get()
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                if not chunk:
                    writer.close()
                    return
                writer.write(chunk)
                await writer.drain()

        delivering = asyncio.ensure_future(deliver())
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                queue.put_nowait((time.monotonic() + self.delay, chunk))
        queue.put_nowait((time.monotonic() + self.delay, b""))
        with contextlib.suppress(ConnectionError):
            await delivering

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target)
        await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))

    def __enter__(self) -> DelayProxy:
        self._thread.start()
        serving = asyncio.start_server(self._connection, "127.0.0.1", self.port)
        self._server = asyncio.run_coroutine_threadsafe(serving, self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def hashes_admitted(urls: list[str], params: ScryptParams, most: int, address: str) -> int:
    """The hashes of a client at ``address`` (behind the one proxy the nodes trust), sent in turn to
    each of ``urls`` until every one refuses (or ``most``)."""
    admitted, refusing = 0, set()
    body = request_body(params, b"\x07" * 32)
    with httpx.Client(timeout=60, headers={"X-Forwarded-For": address}, verify=shared_tls()) as client:
        for attempt in range(most):
            url = urls[attempt % len(urls)]
            status = client.post(url + "/", json=body).status_code
            if status == 200:
                admitted += 1
            elif status == 429:
                refusing.add(url)
                if refusing == set(urls):
                    break
            else:
                raise RuntimeError(f"{url} answered {status}")
    return admitted


@contextlib.contextmanager
def regions(
    rules: str, params: ScryptParams, engine: str, redis_urls: tuple[str | None, ...] = (None,) * REGIONS
) -> Iterator[list[LocalServer]]:
    """A node per region behind one trusted proxy, each with its own way to Redis (or none)."""
    flags: dict[str, object] = {
        "engine": engine,
        "allowed_params": allowed_params_json(params),
        "rules": rules,
        "trusted_proxies": 1,
    }
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(LocalServer(**flags, **({"redis_url": url} if url else {})))
            for url in redis_urls
        ]


def budgets(params: ScryptParams, engine: str) -> dict[str, dict[str, int]]:
    """Hashes a hopping and a staying client get, each region counting the whole budget or its share."""
    rules = parse_rules(BUDGET)
    report = {}
    for label, text in (("whole", BUDGET), ("divided", divided_rules(rules, REGIONS))):
        with regions(text, params, engine) as nodes:
            report[label] = {
                "hopping": hashes_admitted([node.url for node in nodes], params, MOST, HOPPING),
                "staying": hashes_admitted([nodes[0].url], params, MOST, STAYING),
            }
    return report


def shared_store(params: ScryptParams, engine: str, seconds: float, delay: float) -> dict[str, Any]:
    """One Redis for both regions, the second's ``delay`` away each way: what a hopping client gets,
    and the hash latency at each region (its clients each from another address)."""
    with contextlib.ExitStack() as stack:
        redis = stack.enter_context(LocalRedis())
        far = stack.enter_context(DelayProxy(redis.port, delay))
        nodes = stack.enter_context(
            regions(BUDGET, params, engine, (redis.url, f"redis://127.0.0.1:{far.port}/0"))
        )
        hopping = hashes_admitted([node.url for node in nodes], params, MOST, HOPPING)
        latency = {
            label: asyncio.run(hash_clients(node.url, params, CLIENTS, seconds, clients="users")).summary()
            for label, node in zip(("near", "far"), nodes, strict=True)
        }
    return {"delay_ms_each_way": delay * 1000, "hopping": hopping, "latency": latency}


def main(argv: list[str] | None = None) -> int:
    parser = measurement_arguments("python -m harness.region_budgets", __doc__)
    parser.add_argument("--delay-ms", type=float, default=35.0, help="one way from the far region to Redis")
    args = parser.parse_args(argv)
    params, engine = params_and_engine(args)
    report: dict[str, Any] = {**run_header(params, engine), "regions": REGIONS}
    report["budgets"] = budgets(params, engine)
    report["shared_store"] = shared = shared_store(params, engine, args.seconds, args.delay_ms / 1000)
    whole, divided, near, far = (
        report["budgets"]["whole"],
        report["budgets"]["divided"],
        shared["latency"]["near"],
        shared["latency"]["far"],
    )
    attempts = parse_rules(BUDGET)[0].attempts
    print(
        f"a client's budget of {attempts} hashes a minute across {REGIONS} regions; {report['cpu']}, "
        f"engine {engine}, N={params.n}; the far region {args.delay_ms:g} ms from Redis each way"
    )
    print(
        table(
            [
                Figure("each region counts alone: hopping client", whole["hopping"], "hashes"),
                Figure("each region counts alone: staying client", whole["staying"], "hashes"),
                Figure("divided budgets: hopping client", divided["hopping"], "hashes"),
                Figure("divided budgets: staying client", divided["staying"], "hashes"),
                Figure("one store for both: hopping client", shared["hopping"], "hashes"),
                Figure(
                    "one store: hash p50 near Redis", near["p50_ms"], "ms", note=f"p99 {near['p99_ms']} ms"
                ),
                Figure(
                    "one store: hash p50 far from Redis", far["p50_ms"], "ms", note=f"p99 {far['p99_ms']} ms"
                ),
            ]
        )
    )
    write_report(report, args.out, report_name("region-budgets", engine, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
