"""HAProxy (Debian's ``haproxy``) on loopback as the global router of a multi-region rehearsal.

It stands in for Route 53 latency records with health checks (or Global Accelerator): one frontend per
region is the service's name as the clients nearest that region resolve it. Its backend sends them to
that region's proxy while an active check of ``/__lbheartbeat__`` passes, else to the other regions
(``backup`` servers). ``stats()`` reads HAProxy's CSV statistics: each server's state and the 2xx
answers it gave. Used by ``harness/rehearsal.py``.
"""

from __future__ import annotations

import csv
import io
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from harness.daemons import Daemon, run_check
from scrypt_helper.bench.local_servers import free_port
from scrypt_helper.bench.tls import shared_tls


def find_haproxy() -> str | None:
    """The haproxy binary (Debian installs it in /usr/sbin, which a user's PATH may lack)."""
    return shutil.which("haproxy") or next(
        (path for path in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if Path(path).exists()), None
    )


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """HAProxy's active check: every ``inter_ms``, ``fall`` failures mark a region down, ``rise`` up."""

    inter_ms: int = 1000
    fall: int = 3
    rise: int = 2


def render_config(
    regions: Mapping[str, int], frontends: Mapping[str, int], stats_port: int, check: HealthCheck
) -> str:
    """haproxy.cfg: per region a frontend on ``frontends[name]`` whose backend prefers that region.

    ``regions`` maps each region's name to the port of its proxy (nginx).
    """
    lines = [
        "global",
        "    maxconn 4096",
        "defaults",
        "    mode http",
        "    timeout connect 1s",
        "    timeout client 30s",
        "    timeout server 30s",
        "    timeout check 1s",
        # a connection refused is answered 503 at once, as a client of DNS or an anycast address meets a
        # dead region until the health check takes it out (HAProxy's own retry would stall a second)
        "    retries 0",
        "listen stats",
        f"    bind 127.0.0.1:{stats_port}",
        "    stats enable",
        "    stats uri /stats",
    ]
    for name, port in frontends.items():
        lines += [
            f"frontend {name}",
            f"    bind 127.0.0.1:{port}",
            f"    default_backend {name}",
            f"backend {name}",
            "    option httpchk GET /__lbheartbeat__",
            "    http-check expect status 200",
            f"    default-server check inter {check.inter_ms}ms fall {check.fall} rise {check.rise}",
        ]
        for region, region_port in regions.items():
            backup = "" if region == name else " backup"
            lines.append(f"    server {region} 127.0.0.1:{region_port}{backup}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class ServerStats:
    """One server line of one backend: its state (``UP``, ``DOWN``, ``UP 1/3``...) and 2xx answers."""

    backend: str
    server: str
    status: str
    answered_2xx: int

    @property
    def up(self) -> bool:
        """Whether HAProxy sends it traffic (``UP 1/3``, going down, still counts as up)."""
        return self.status.startswith("UP")


class LocalHAProxy(Daemon):
    """``haproxy`` in the foreground with one frontend per region (``url(name)``) and a stats page."""

    name = "haproxy"
    start_timeout = 10.0

    def __init__(self, regions: Mapping[str, int], *, check: HealthCheck | None = None) -> None:
        binary = find_haproxy()
        if binary is None:
            raise FileNotFoundError("haproxy is not installed (apt-get install haproxy)")
        super().__init__()
        self.binary = binary
        self.ports = {name: free_port() for name in regions}
        self.stats_port = free_port()
        self.check = check or HealthCheck()
        self.config = self.workdir / "haproxy.cfg"
        self.config.write_text(render_config(regions, self.ports, self.stats_port, self.check))
        self._http = httpx.Client(timeout=2, verify=shared_tls())

    def url(self, region: str) -> str:
        """The frontend of the clients nearest ``region``."""
        return f"http://127.0.0.1:{self.ports[region]}"

    def check_config(self) -> None:
        run_check([self.binary, "-c", "-f", str(self.config)], "haproxy -c")

    def command(self) -> list[str]:
        return [self.binary, "-db", "-f", str(self.config)]

    def answers(self) -> bool:
        return self.stats() is not None

    def stats(self) -> list[ServerStats]:
        """Every server line of every backend, from the CSV stats page."""
        text = self._http.get(f"http://127.0.0.1:{self.stats_port}/stats;csv").text
        rows = csv.DictReader(io.StringIO(text.removeprefix("# ")))
        return [
            ServerStats(row["pxname"], row["svname"], row["status"], int(row["hrsp_2xx"] or 0))
            for row in rows
            if row["svname"] not in ("FRONTEND", "BACKEND") and row["pxname"] in self.ports
        ]

    def wait_all_up(self, timeout: float = 15.0) -> None:
        """Wait until every server of every backend passed its checks (``UP``, not ``UP 1/3``)."""
        deadline = time.monotonic() + timeout
        while not all(server.status == "UP" for server in self.stats()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"haproxy servers not all up: {self.stats()}")
            time.sleep(0.05)

    def stop(self, timeout: float | None = None) -> None:
        """Stop (SIGTERM, SIGKILL if it lingers); the work directory is removed."""
        self._http.close()
        super().stop(timeout)
        self.cleanup()
