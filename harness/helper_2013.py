"""The service against the 2013 helper's shape, at one concurrency, alternated: py-scrypt (Tarsnap's
scrypt, which the 2013 helper ran) behind gunicorn with two sync workers, one hash per worker
process at a time, against a scrypt-helper node on its defaults; both on this machine, the clients
on the same cores.

    python -m harness.helper_2013 [--seconds 10] [--rounds 2] [--clients 64] [--engine auto] [--tiny]

Each round measures the node, then the 2013 shape, with the same closed loop of hash clients; the
figure is the ratio of their 200s per second, round by round and its median.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
from collections.abc import Callable, Iterable
from typing import Any

from harness.measurement import measurement_arguments, params_and_engine, report_name
from scrypt_helper.bench.criteria import Figure, table
from scrypt_helper.bench.hash_load import hash_clients
from scrypt_helper.bench.local_servers import LocalServer, free_port
from scrypt_helper.bench.report import run_header, write_report
from scrypt_helper.bench.server_process import ChildProcess
from scrypt_helper.bench.tls import http_get
from scrypt_helper.core.config import allowed_params_json

StartResponse = Callable[[str, list[tuple[str, str]]], object]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The 2013 helper's one endpoint: ``POST /`` JSON in, ``{"output": hex}`` out; ``GET /`` ok."""
    import scrypt  # type: ignore[import-untyped]  # py-scrypt, the bench extra

    def answer(status: str, document: dict[str, Any]) -> list[bytes]:
        body = json.dumps(document).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    if environ["REQUEST_METHOD"] == "GET":
        return answer("200 OK", {})
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = json.loads(environ["wsgi.input"].read(length))
        output = scrypt.hash(
            bytes.fromhex(request["input"]),
            request["salt"].encode(),
            request["N"],
            request["r"],
            request["p"],
            request["buflen"],
        )
    except (ValueError, KeyError, TypeError, scrypt.error):
        return answer("400 Bad Request", {"error": "bad request"})
    return answer("200 OK", {"output": output.hex()})


class Helper2013(ChildProcess):
    """``gunicorn -w 2`` (sync workers) serving ``app`` on a free loopback port."""

    name = "gunicorn"

    def __init__(self, workers: int = 2) -> None:
        super().__init__()
        self.port = free_port()
        self.workers = workers

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(self.workers),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--timeout",
            "120",
            "--backlog",
            "2048",
            "harness.helper_2013:app",
        ]

    def answers(self) -> bool:
        return http_get(self.url + "/", timeout=1).status_code == 200


def main(argv: list[str] | None = None) -> int:
    parser = measurement_arguments("python -m harness.helper_2013", __doc__)
    parser.add_argument("--rounds", type=int, default=2, help="rounds, each the node then the 2013 shape")
    parser.add_argument("--clients", type=int, default=64, help="hash clients in the closed loop")
    args = parser.parse_args(argv)
    params, engine = params_and_engine(args)
    node_flags: dict[str, object] = {
        "engine": engine,
        "allowed_params": allowed_params_json(params),
        "rules": "",  # every client is this one machine
        "max_connections_per_client": 4 * args.clients,
    }
    rates: dict[str, list[float]] = {"scrypt-helper": [], "2013 helper": []}
    with LocalServer(**node_flags) as node, Helper2013() as old:
        for round_ in range(1, args.rounds + 1):
            for label, url in (("scrypt-helper", node.url), ("2013 helper", old.url)):
                figure = asyncio.run(hash_clients(url, params, args.clients, args.seconds))
                if figure.failed:
                    raise RuntimeError(f"{label}: {figure.failed} requests failed")
                rates[label].append(figure.ok_per_second)
                print(f"round {round_}: {label} {figure.ok_per_second:.1f}/s", flush=True)
    ratios = [
        mine / theirs for mine, theirs in zip(rates["scrypt-helper"], rates["2013 helper"], strict=True)
    ]
    report: dict[str, Any] = {**run_header(params, engine), "clients": args.clients, "rates": rates}
    report["ratios"] = ratios
    report["median_ratio"] = statistics.median(ratios)
    print(
        f"the service against the 2013 helper (gunicorn -w 2, py-scrypt), {args.clients} clients; "
        f"{report['cpu']}, engine {engine}, N={params.n}"
    )
    print(
        table(
            [
                Figure(
                    "scrypt-helper, 200s/s by round",
                    statistics.median(rates["scrypt-helper"]),
                    "/s",
                    note=", ".join(f"{rate:.1f}" for rate in rates["scrypt-helper"]),
                ),
                Figure(
                    "2013 helper, 200s/s by round",
                    statistics.median(rates["2013 helper"]),
                    "/s",
                    note=", ".join(f"{rate:.1f}" for rate in rates["2013 helper"]),
                ),
                Figure(
                    "ratio, median",
                    report["median_ratio"],
                    "x",
                    note=", ".join(f"{ratio:.2f}" for ratio in ratios),
                ),
            ]
        )
    )
    write_report(report, args.out, report_name("helper-2013", engine, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
