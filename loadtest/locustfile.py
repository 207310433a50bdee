"""Load test of a scrypt helper: the 2013 traffic mix, every answer checked, success criteria enforced.

    locust -f loadtest/locustfile.py --headless -H URL -u USERS -r RATE -t TIME [criteria]
    python -m loadtest.run --workers N -H URL -u USERS -r RATE -t TIME [criteria]   # distributed

Mix: ~75% valid requests (a 200 with an output of the right size), ~10% known-answer requests
(the output must be exactly right), ~15% malformed requests (must get a 400 in the JSON error
shape). The run exits non-zero when a criterion is missed: any failed check
(``--max-fail-ratio``, default 0), fewer good answers per second than ``--min-ops``, a p99
above ``--max-p99-ms``. 503s are failures unless ``--allow-503`` (above capacity they are
the expected graceful answer, and must carry Retry-After).

Distributed (``--master`` and ``--worker``), the master judges the criteria on the figures of every
worker: workers hand it their count of 503s with each stats report. Each criterion can also come
from the environment (``LOCUST_MIN_OPS``, ...), as Locust's own options can.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from typing import Any

from locust import FastHttpUser, constant, events, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

try:
    from scrypt_helper.bench.criteria import LoadTestCriteria, missed
except ImportError:  # a stock Locust image: the same module is mounted beside this file
    from criteria import LoadTestCriteria, missed  # type: ignore[no-redef]

PICL = {"salt": "identity.mozilla.com/picl/v1/scrypt", "N": 65536, "r": 8, "p": 1, "buflen": 32}
PICL_ANSWERS = {
    "f84913e3d8e6d624689d0a3e9678ac8dcc79d2c2f3d9641488cd9d6ef6cd83dd": (
        "5b82f146a64126923e4167a0350bb181feba61f63cb1714012b19cb0be0119c5"
    ),
    "abcdef0123": "8158f3aae9044369c4c6ba5eda6f679cca8adc1186eb29637a75c9e4b4b940f1",
}
HASHES = ("hash", "known-answer")
REJECTED = "scrypt_rejected"  # the key of the 503 count in a worker's report to the master
logger = logging.getLogger("loadtest")


@events.init_command_line_parser.add_listener
def add_arguments(parser: Any) -> None:
    parser.add_argument(
        "--scrypt-params", default=json.dumps(PICL), help="JSON parameter set the helper allows"
    )
    parser.add_argument(
        "--min-ops", type=float, default=0.0, env_var="LOCUST_MIN_OPS", help="least good answers per second"
    )
    parser.add_argument(
        "--max-p99-ms",
        type=float,
        default=0.0,
        env_var="LOCUST_MAX_P99_MS",
        help="largest p99 of valid requests (0: any)",
    )
    parser.add_argument(
        "--max-fail-ratio",
        type=float,
        default=0.0,
        env_var="LOCUST_MAX_FAIL_RATIO",
        help="largest share of failed checks",
    )
    parser.add_argument(
        "--allow-503",
        action="store_true",
        env_var="LOCUST_ALLOW_503",
        help="503 with Retry-After is not a failure",
    )
    parser.add_argument(
        "--think-time",
        type=float,
        default=0.0,
        env_var="LOCUST_THINK_TIME",
        help="seconds each user waits between requests",
    )


def known_answers(params: dict[str, Any]) -> dict[str, str]:
    """Inputs with their outputs: the published ones, or computed here for other parameters."""
    if params == PICL:
        return PICL_ANSWERS
    answers = {}
    for _ in range(4):
        data = os.urandom(32)
        output = hashlib.scrypt(
            data,
            salt=params["salt"].encode(),
            n=params["N"],
            r=params["r"],
            p=params["p"],
            dklen=params["buflen"],
            maxmem=2**31 - 1,
        )
        answers[data.hex()] = output.hex()
    return answers


def malformed_bodies(params: dict[str, Any]) -> list[bytes]:
    good = {"input": "00" * 32, **params}
    variants: list[object] = [
        {**good, "input": "abc"},
        {**good, "input": "zz" * 8},
        {**good, "input": ""},
        {**good, "input": "00" * 257},
        {**good, "N": params["N"] * 2},
        {**good, "r": params["r"] + 1},
        {**good, "salt": "not the salt"},
        {key: value for key, value in good.items() if key != "buflen"},
        [good],
    ]
    return [json.dumps(v).encode() for v in variants] + [b"not json", b"{"]


@events.test_start.add_listener
def prepare(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if environment.host:  # as people type the endpoint's URL: "http://node:8080/" must not POST to "//"
        environment.host = environment.host.rstrip("/")
    params = json.loads(options.scrypt_params)
    environment.scrypt = {  # type: ignore[attr-defined]
        "params": params,
        "answers": list(known_answers(params).items()),
        "malformed": malformed_bodies(params),
        "allow_503": options.allow_503,
        "rejected": 0,
    }
    ScryptUser.wait_time = constant(options.think_time)


@events.init.add_listener
def share_refusals(environment: Environment, **_: Any) -> None:
    """Distributed, the master judges the criteria: each worker adds its 503s since the last report."""
    if isinstance(environment.runner, WorkerRunner):

        def send(client_id: str, data: dict[str, Any], **_: Any) -> None:
            settings = getattr(environment, "scrypt", None)
            if settings is not None:
                data[REJECTED], settings["rejected"] = settings["rejected"], 0

        environment.events.report_to_master.add_listener(send)
    elif isinstance(environment.runner, MasterRunner):

        def receive(client_id: str, data: dict[str, Any], **_: Any) -> None:
            settings = getattr(environment, "scrypt", None)
            if settings is not None:
                settings["rejected"] += data.get(REJECTED, 0)

        environment.events.worker_report.add_listener(receive)


class ScryptUser(FastHttpUser):
    """A device that asks the helper for its scrypt, now and then with a broken client."""

    wait_time = constant(0)

    def post(self, name: str, body: bytes, check: Any) -> None:
        with self.client.post(
            "/", data=body, headers={"Content-Type": "application/json"}, name=name, catch_response=True
        ) as response:
            settings = self.environment.scrypt  # type: ignore[attr-defined]
            if response.status_code == 503 and settings["allow_503"] and response.headers.get("Retry-After"):
                settings["rejected"] += 1
                response.success()
                return
            problem = check(response)
            if problem:
                response.failure(problem)
            else:
                response.success()

    @task(75)
    def valid(self) -> None:
        params = self.environment.scrypt["params"]  # type: ignore[attr-defined]
        body = json.dumps({"input": os.urandom(32).hex(), **params}).encode()

        def check(response: Any) -> str | None:
            if response.status_code != 200:
                return f"status {response.status_code}"
            output = response.json().get("output", "")
            if len(output) != 2 * params["buflen"]:
                return "output of the wrong size"
            return None

        self.post("hash", body, check)

    @task(10)
    def known_answer(self) -> None:
        settings = self.environment.scrypt  # type: ignore[attr-defined]
        data, expected = random.choice(settings["answers"])
        body = json.dumps({"input": data, **settings["params"]}).encode()

        def check(response: Any) -> str | None:
            if response.status_code != 200:
                return f"status {response.status_code}"
            return None if response.json().get("output") == expected else "WRONG ANSWER"

        self.post("known-answer", body, check)

    @task(15)
    def malformed(self) -> None:
        body = random.choice(self.environment.scrypt["malformed"])  # type: ignore[attr-defined]

        def check(response: Any) -> str | None:
            if response.status_code != 400:
                return f"status {response.status_code} for a malformed request"
            document = response.json()
            if document.get("errno") not in (106, 107, 108) or "message" not in document:
                return "error body not in the documented shape"
            return None

        self.post("malformed", body, check)


@events.quitting.add_listener
def enforce_criteria(environment: Environment, **_: Any) -> None:
    """Set a non-zero exit code, and say why, when a success criterion is missed.

    A worker's stats are only its share since its last report: the master judges, never a worker.
    """
    if isinstance(environment.runner, WorkerRunner):
        return
    options = environment.parsed_options
    stats = environment.stats
    total = stats.total
    rejected = getattr(environment, "scrypt", {}).get("rejected", 0)
    good = sum(stats.get(name, "POST").num_requests - stats.get(name, "POST").num_failures for name in HASHES)
    good -= rejected
    duration = max(1e-9, total.last_request_timestamp - total.start_time) if total.num_requests else 1.0
    ops = good / duration
    p99 = stats.get("hash", "POST").get_response_time_percentile(0.99) or 0
    criteria = LoadTestCriteria(options.min_ops, options.max_p99_ms, options.max_fail_ratio)
    misses = missed(criteria.figures(ops=ops, p99_ms=p99, fail_ratio=total.fail_ratio))
    if total.num_requests == 0:
        misses.insert(0, "no request was made")
    summary = f"good answers {ops:.1f}/s, p99 {p99:.0f} ms, failed {total.fail_ratio:.2%}, 503s {rejected}"
    if misses:
        logger.error("success criteria missed: %s (%s)", "; ".join(misses), summary)
        environment.process_exit_code = 1
    else:
        logger.info("success criteria met (%s)", summary)
        environment.process_exit_code = 0
