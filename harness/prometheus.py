"""A real Prometheus on loopback, running the shipped configuration (deploy/prometheus) against local nodes.

``render_rules`` shortens the shipped alert rules' durations (``for`` and range windows) by one factor,
their expressions otherwise unchanged, so that an alert that waits minutes in production fires in
seconds in a test; ``LocalPrometheus`` runs the ``prometheus`` binary with a rendered copy of
``prometheus.yml`` (short scrape interval, targets written to its file discovery) on a free port with
a temporary data directory. Used by ``tests/cluster/test_monitoring.py`` and
``scripts/dashboard_figure.py``.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from harness.daemons import Daemon
from scrypt_helper.bench.local_servers import free_port
from scrypt_helper.bench.tls import shared_tls

PROMETHEUS_DIR = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"
JOB = "scrypt-helper"
# Prometheus durations: a sequence of number-unit pairs, largest unit first ("1h30m").
UNITS = {"y": 365 * 86400.0, "w": 7 * 86400.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
DURATION = re.compile(r"(?:\d+(?:ms|[ywdhms]))+")
PART = re.compile(r"(\d+)(ms|[ywdhms])")
RANGE = re.compile(r"\[((?:\d+(?:ms|[ywdhms]))+)\]")
T = TypeVar("T")


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration such as ``5m`` or ``1h30m``."""
    if not DURATION.fullmatch(text):
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(number) * UNITS[unit] for number, unit in PART.findall(text))


def format_duration(seconds: float) -> str:
    """A Prometheus duration for ``seconds``, in whole seconds where it is one, else milliseconds."""
    millis = round(seconds * 1000)
    if millis <= 0:
        raise ValueError(f"duration too short: {seconds} s")
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def render_rules(text: str, factor: float) -> str:
    """The rule file ``text`` with every ``for`` and every range window (``[5m]``) divided by ``factor``."""
    document = yaml.safe_load(text)

    def shorter(duration: str) -> str:
        return format_duration(parse_duration(duration) / factor)

    for group in document["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = shorter(rule["for"])
            rule["expr"] = RANGE.sub(lambda m: f"[{shorter(m.group(1))}]", rule["expr"])
    return yaml.safe_dump(document, sort_keys=False)


def render_config(text: str, *, scrape_interval: float, evaluation_interval: float) -> str:
    """The Prometheus configuration ``text`` with its intervals set (globally and in every job)."""
    document = yaml.safe_load(text)
    interval = format_duration(scrape_interval)
    document["global"].update(
        scrape_interval=interval,
        scrape_timeout=interval,
        evaluation_interval=format_duration(evaluation_interval),
    )
    for job in document["scrape_configs"]:
        for key in ("scrape_interval", "scrape_timeout"):
            job.pop(key, None)
    return yaml.safe_dump(document, sort_keys=False)


def find_prometheus() -> str | None:
    return shutil.which("prometheus")


class LocalPrometheus(Daemon):
    """``prometheus`` scraping ``targets`` (``group`` label -> ``host:port`` list) as job scrypt-helper.

    The shipped ``prometheus.yml`` and ``alerts.yml`` are rendered into a temporary directory:
    scrape and rule evaluation every ``interval`` seconds, rule durations divided by ``rule_factor``.
    """

    name = "prometheus"
    log_name = "prometheus.log"
    start_timeout = 30.0
    stop_timeout = 15.0

    def __init__(
        self,
        targets: Mapping[str, Iterable[str]],
        *,
        interval: float = 1.0,
        rule_factor: float = 30.0,
        config_dir: Path = PROMETHEUS_DIR,
    ) -> None:
        binary = find_prometheus()
        if binary is None:
            raise FileNotFoundError("prometheus is not installed (apt-get install prometheus)")
        super().__init__()
        self.binary = binary
        self.port = free_port()
        self.config = self.workdir / "prometheus.yml"
        self.config.write_text(
            render_config(
                (config_dir / "prometheus.yml").read_text(),
                scrape_interval=interval,
                evaluation_interval=interval,
            )
        )
        self.rule_factor = rule_factor
        (self.workdir / "alerts.yml").write_text(
            render_rules((config_dir / "alerts.yml").read_text(), rule_factor)
        )
        (self.workdir / "targets").mkdir()
        groups = [{"targets": list(hosts), "labels": {"group": name}} for name, hosts in targets.items()]
        (self.workdir / "targets" / "scrypt-helper.json").write_text(json.dumps(groups))
        self.client = httpx.Client(base_url=self.url, timeout=10, verify=shared_tls())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]

    def answers(self) -> bool:
        return self.client.get("/-/ready").status_code == 200

    def _get(self, path: str, **params: object) -> Any:
        response = self.client.get(path, params=params)
        document = response.json()
        if document.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {document}")
        return document["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector of ``expr`` now: ``[{"metric": {...}, "value": [t, "v"]}, ...]``."""
        data = self._get("/api/v1/query", query=expr)
        if data["resultType"] != "vector":
            raise ValueError(f"{expr} is a {data['resultType']}, not an instant vector")
        return data["result"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """The range matrix of ``expr`` between Unix times ``start`` and ``end``."""
        return self._get("/api/v1/query_range", query=expr, start=start, end=end, step=step)["result"]

    def alerts(self) -> list[dict[str, Any]]:
        """Every pending or firing alert, as ``/api/v1/alerts`` lists them."""
        return self._get("/api/v1/alerts")["alerts"]

    def firing(self, name: str) -> list[dict[str, Any]]:
        return [a for a in self.alerts() if a["labels"]["alertname"] == name and a["state"] == "firing"]

    def wait_for(self, check: Callable[[], T], timeout: float, poll: float = 0.25) -> T:
        """Poll ``check`` until it returns something true; return it, or raise after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"not within {timeout} s; alerts: {self.alerts()}")
            time.sleep(poll)

    def stop(self, timeout: float | None = None) -> None:
        super().stop(timeout)
        self.client.close()
