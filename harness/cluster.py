"""A real cluster on loopback: nginx (deploy/nginx) in front of scrypt-helper nodes sharing one Redis.

Used by ``tests/cluster``, ``tests/deploy`` and ``scripts/cluster_figures.py``; needs this source checkout
(for ``deploy/nginx``), the ``nginx`` binary and, for shared limits, ``redis-server``. Everything listens on
127.0.0.1.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx
from prometheus_client.parser import text_string_to_metric_families

from harness.daemons import Daemon
from harness.topology import compose_topology
from scrypt_helper.bench.load import Reply, closed_loop, request_bytes
from scrypt_helper.bench.local_servers import LocalRedis, LocalServer, free_port
from scrypt_helper.bench.server_process import read_log
from scrypt_helper.bench.tls import http_get

NGINX_DIR = Path(__file__).resolve().parents[1] / "deploy" / "nginx"
PLACEHOLDER = re.compile(r"@[A-Z_]+@")


def find_nginx() -> str | None:
    """The nginx binary (Debian installs it in /usr/sbin, which a user's PATH may lack)."""
    return shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(path, os.X_OK)), None
    )


def production_server_parameters(nginx_dir: Path = NGINX_DIR) -> str:
    """The passive health-check parameters of the production upstream lines (``max_fails=...``)."""
    text = (nginx_dir / "upstream-servers.conf").read_text()
    match = re.search(r"^server\s+\S+\s+([^;]*);", text, re.MULTILINE)
    if match is None:
        raise ValueError("no server line in upstream-servers.conf")
    return match.group(1).strip()


def render_local_config(
    workdir: Path,
    *,
    port: int,
    upstream_ports: Iterable[int],
    rate: str = "100000r/s",
    burst: int = 10000,
    connections: int = 4096,
    nginx_dir: Path = NGINX_DIR,
) -> Path:
    """Write ``local.conf.template`` rendered for these ports, with the shared includes, under ``workdir``.

    The upstream lines take their ``max_fails``/``fail_timeout`` from the production
    ``upstream-servers.conf``; ``rate``, ``burst`` and ``connections`` are nginx's per-address limits
    (every local client is 127.0.0.1, so tests keep them loose). Returns the config file's path.
    """
    conf_dir = workdir / "conf"
    shutil.copytree(nginx_dir / "scrypt-helper", conf_dir / "scrypt-helper", dirs_exist_ok=True)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (workdir / "temp" / sub).mkdir(parents=True, exist_ok=True)
    params = production_server_parameters(nginx_dir)
    servers = "\n".join(f"        server 127.0.0.1:{p} {params};" for p in upstream_ports)
    values = {
        "@USER@": "user root;" if os.geteuid() == 0 else "",
        "@PREFIX@": str(workdir),
        "@RATE@": rate,
        "@SERVERS@": servers,
        "@PORT@": str(port),
        "@BURST@": str(burst),
        "@CONNECTIONS@": str(connections),
    }
    text = (nginx_dir / "local.conf.template").read_text()
    text = PLACEHOLDER.sub(lambda m: values[m.group(0)], text)
    path = conf_dir / "nginx.conf"
    path.write_text(text)
    return path


def nginx_test(binary: str, config: Path, prefix: Path) -> subprocess.CompletedProcess[str]:
    """``nginx -t`` on a config; the result's ``returncode`` is 0 when it is valid."""
    return subprocess.run(
        [binary, "-t", "-p", str(prefix), "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


class LocalNginx(Daemon):
    """nginx in the foreground (a master and one worker) proxying 127.0.0.1 ports."""

    name = "nginx"
    stop_signal = signal.SIGQUIT  # graceful: finish the requests in flight

    def __init__(self, upstream_ports: Iterable[int], *, port: int | None = None, **limits: object) -> None:
        binary = find_nginx()
        if binary is None:
            raise FileNotFoundError("nginx is not installed (apt-get install nginx)")
        super().__init__()
        self.binary = binary
        self.port = port or free_port()
        try:
            self.config = render_local_config(
                self.workdir, port=self.port, upstream_ports=list(upstream_ports), **limits
            )
        except BaseException:
            self.cleanup()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def check_config(self) -> None:
        checked = nginx_test(self.binary, self.config, self.workdir)
        if checked.returncode != 0:
            raise RuntimeError(f"nginx -t failed:\n{checked.stderr}")

    def command(self) -> list[str]:
        return [self.binary, "-p", str(self.workdir), "-c", str(self.config)]

    def answers(self) -> bool:
        return http_get(self.url + "/__lbheartbeat__", timeout=1).status_code > 0  # any answer

    def error_log(self) -> str:
        """nginx's error log, then what it wrote to stderr."""
        return read_log(self.workdir / "error.log") + super().logs()

    def logs(self) -> str:
        return self.error_log()

    def access_log(self) -> str:
        return read_log(self.workdir / "access.log")


class LocalCluster:
    """The cluster of ``deploy/docker/docker-compose.yml`` on loopback (``harness.topology``): its
    nodes, with the settings that shape it (behind one proxy hop, the same allowed origins), sharing
    a Redis, the shipped nginx config in front.

    ``nodes`` and ``redis`` default to compose's; ``node_flags`` are ``serve`` flags for every node,
    over compose's, as for ``LocalServer``; ``nginx_limits`` go to ``render_local_config``.
    """

    def __init__(
        self,
        nodes: int | None = None,
        *,
        redis: bool | None = None,
        nginx_limits: Mapping[str, object] | None = None,
        **node_flags: object,
    ) -> None:
        topology = compose_topology()
        nodes = topology.nodes if nodes is None else nodes
        self.redis = LocalRedis() if (topology.redis if redis is None else redis) else None
        self.node_flags: dict[str, object] = {**topology.shape_flags(), **node_flags}
        if self.redis is not None:
            self.node_flags["redis_url"] = self.redis.url
        self.ports = [free_port() for _ in range(nodes)]
        self.nodes: list[LocalServer] = []
        self.nginx_limits = dict(nginx_limits or {})
        self.nginx: LocalNginx | None = None

    @property
    def url(self) -> str:
        assert self.nginx is not None
        return self.nginx.url

    def _new_node(self, port: int) -> LocalServer:
        return LocalServer(port=port, **self.node_flags)

    def start(self) -> LocalCluster:
        try:
            if self.redis is not None:
                self.redis.start()
            self.nodes = [self._new_node(port) for port in self.ports]
            with ThreadPoolExecutor(len(self.nodes)) as pool:
                list(pool.map(LocalServer.start, self.nodes))
            self.nginx = LocalNginx(self.ports, **self.nginx_limits).start()
        except BaseException:
            self.stop()
            raise
        return self

    def restart_node(self, index: int) -> LocalServer:
        """Start a fresh node on the port of node ``index`` (after it was killed or drained)."""
        old = self.nodes[index]
        old.stop()
        self.nodes[index] = self._new_node(old.port).start()
        return self.nodes[index]

    def ensure_healthy(self) -> None:
        """Restart any node that exited and Redis if it was stopped."""
        if self.redis is not None and (self.redis.process is None or self.redis.process.poll() is not None):
            self.redis.start()
        for index, node in enumerate(self.nodes):
            if node.process is None or node.process.poll() is not None:
                self.restart_node(index)

    def metrics(self, index: int) -> str:
        return http_get(self.nodes[index].url + "/metrics", timeout=5).text

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
            self.nginx.cleanup()
        with ThreadPoolExecutor(max(1, len(self.nodes))) as pool:
            list(pool.map(LocalServer.stop, self.nodes))
        if self.redis is not None:
            self.redis.stop()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def metric_value(text: str, sample: str, **labels: str) -> float:
    """The sum of every sample called ``sample`` whose labels include ``labels`` (0 if none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


# -- load ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request of a load run: when it started and ended (monotonic), and its status or error."""

    started: float
    finished: float
    status: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class LoadResult:
    outcomes: list[Outcome] = field(default_factory=list)
    began: float = 0.0
    ended: float = 0.0

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def in_window(self, start: float, end: float) -> list[Outcome]:
        """Requests that finished within [start, end)."""
        return [o for o in self.outcomes if start <= o.finished < end]

    def throughput(self, start: float | None = None, end: float | None = None) -> float:
        """Successful requests per second finished within the window (default: the whole run)."""
        start = self.began if start is None else start
        end = self.ended if end is None else end
        if end <= start:
            return 0.0
        return sum(o.ok for o in self.in_window(start, end)) / (end - start)

    def latency_quantile(self, q: float, start: float | None = None, end: float | None = None) -> float:
        """The ``q`` quantile of latency (seconds) of requests finished within the window."""
        start = self.began if start is None else start
        end = self.ended if end is None else end
        latencies = sorted(o.finished - o.started for o in self.in_window(start, end))
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]


@dataclass(frozen=True, slots=True)
class PostedBodies:
    """``POST /`` requests, each with a fresh ``body()`` as JSON and ``headers``: a request source of
    ``scrypt_helper.bench.load``."""

    host: str
    port: int
    body: Callable[[], Mapping[str, object]]
    headers: Mapping[str, str]

    def make(self, rng: random.Random, index: int) -> bytes:
        return request_bytes(self.host, self.port, json.dumps(dict(self.body())).encode(), self.headers)


async def run_load(
    url: str,
    body: Callable[[], Mapping[str, object]],
    *,
    concurrency: int,
    duration: float,
    max_requests: int,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    local_address: str | None = None,
    think: float = 0.0,
) -> LoadResult:
    """``concurrency`` clients each POSTing ``body()`` to ``url``, for at most ``duration`` seconds
    and ``max_requests`` requests in all; every outcome is recorded. Each client waits ``think``
    seconds after each reply (0: back to back, as fast as the cluster answers).
    """
    target = httpx.URL(url)
    requests = PostedBodies(target.host, target.port or 80, body, dict(headers or {}))
    result = LoadResult(began=time.monotonic())

    def record(reply: Reply | None, sent_at: float, replied_at: float) -> None:
        status, error = (reply.status, None) if reply else (None, "no reply")
        result.outcomes.append(Outcome(sent_at, replied_at, status, error))

    await closed_loop(
        requests,
        connections=concurrency,
        seconds=duration,
        total=max_requests,
        on_reply=record,
        timeout=timeout,
        local_address=local_address,
        pause=(lambda _reply: think) if think > 0 else None,
    )
    result.ended = time.monotonic()
    return result
