"""The service's container image: build it with podman (on a local stand-in base where no registry
is reachable) and run it as a real container.

``python -m harness.image build`` builds ``IMAGE:test`` once (the tests then use it) and prints its tag.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from types import TracebackType

from harness.background import built

IMAGE = "ghcr.io/mozilla-services/scrypt-helper"
TEST_TAG = f"{IMAGE}:test"
# Debian's python3 with the same layout the Dockerfile needs of python:3.11-slim-bookworm: the venv
# module, Python's headers (for the builder) and libcrypto.
BASE = "localhost/scrypt-helper-base:bookworm"
BASE_PACKAGES = ("python3", "python3-dev", "python3-venv", "ca-certificates", "libssl3")
BASE_ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8")
DEBIAN_MIRROR = "http://deb.debian.org/debian"

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
# Handed to pip in the build as a secret (for a TLS-intercepting proxy), never copied into a layer.
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096")


def available() -> bool:
    """Whether podman is installed here."""
    return shutil.which("podman") is not None


def podman(*args: str) -> list[str]:
    """A podman command line; runc and cgroupfs work where crun and systemd do not."""
    return ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs", *args]


def run_podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a podman command and capture its output; CalledProcessError, with stderr, when it fails."""
    done = subprocess.run(podman(*args), capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, done.args, done.stdout, done.stderr)
    return done


def image_exists(name: str) -> bool:
    """Whether an image of that name or id is in podman's local store."""
    return run_podman("image", "exists", name, check=False).returncode == 0


def untag(name: str) -> None:
    """Remove one name from an image (``podman untag NAME`` alone would remove all of its names)."""
    run_podman("untag", name, name, check=False)


def inspect_image(name: str) -> dict:
    """``podman image inspect`` of one image."""
    (found,) = json.loads(run_podman("image", "inspect", name).stdout)
    return found


def run_once(
    image: str, *args: str, entrypoint: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a command in a throwaway container of ``image`` (no network, read-only root)."""
    options = ["--rm", "--network", "none", "--read-only", *ULIMITS]
    if entrypoint is not None:
        options += ["--entrypoint", entrypoint]
    return run_podman("run", *options, image, *args, timeout=timeout, check=False)


def build_base(name: str = BASE) -> str:
    """Make the stand-in base image with debootstrap (root and network to a Debian mirror needed),
    unless it exists; return its name."""
    if image_exists(name):
        return name
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise FileNotFoundError("debootstrap is not installed (apt-get install debootstrap)")
    with tempfile.TemporaryDirectory(prefix="scrypt-helper-base-") as root:
        subprocess.run(
            [
                debootstrap,
                "--variant=minbase",
                "--include=" + ",".join(BASE_PACKAGES),
                "bookworm",
                root,
                DEBIAN_MIRROR,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=900,
        )
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in Path(root, cache).glob("*"):
                if path.is_file():
                    path.unlink()
        changes = [arg for env in BASE_ENV for arg in ("--change", f"ENV {env}")]
        with subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE) as tar:
            subprocess.run(
                podman("import", *changes, "-", name),
                stdin=tar.stdout,
                stdout=sys.stderr,
                check=True,
                timeout=600,
            )
        if tar.returncode != 0:
            raise subprocess.CalledProcessError(tar.returncode, tar.args)
    return name


def project_version() -> str:
    """The version pyproject.toml declares."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def client_version() -> str:
    """The version of the client distribution in clients/python, which the image installs beside."""
    text = (ROOT / "clients" / "python" / "src" / "scrypt_helper_client" / "version.py").read_text()
    match = re.search(r'__version__ = "([^"]+)"', text)
    if match is None:
        raise ValueError("clients/python declares no __version__")
    return match[1]


def git_commit() -> str:
    """The checkout's HEAD, or ``unknown`` outside a git checkout."""
    done = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def build_image(
    tag: str = TEST_TAG,
    *,
    version: str | None = None,
    commit: str | None = None,
    base: str | None = BASE,
    build_url: str = "unknown",
    target: str | None = None,
) -> str:
    """Build deploy/docker/Dockerfile from the checkout's root and return the image's id.

    ``base`` is the image both stages start from (PYTHON_BASE): a ``localhost/`` one is made here
    if missing; None keeps the Dockerfile's digest-pinned base, which needs its registry. The host's
    CA bundle, if any, is handed to pip as the ``pip-ca`` build secret.
    """
    args = [
        "build",
        "--format",
        "docker",  # keeps HEALTHCHECK, which the OCI format drops
        "--file",
        str(DOCKERFILE),
        "--network",
        "host",
        *ULIMITS,
        "--build-arg",
        f"VERSION={version or project_version()}",
        "--build-arg",
        f"COMMIT={commit or git_commit()}",
        "--build-arg",
        f"BUILD_URL={build_url}",
        "--tag",
        tag,
    ]
    if base is not None:
        if base.startswith("localhost/"):
            build_base(base)
        args += ["--build-arg", f"PYTHON_BASE={base}"]
    if CA_BUNDLE.is_file():
        args += ["--secret", f"id=pip-ca,src={CA_BUNDLE}"]
    if target is not None:
        args += ["--target", target]
    with tempfile.TemporaryDirectory() as folder:
        iidfile = Path(folder) / "iid"
        # Its progress goes to stderr: stdout is left to the caller (``build`` prints the tag there).
        subprocess.run(
            podman(*args, "--iidfile", str(iidfile), str(ROOT)), check=True, timeout=1800, stdout=sys.stderr
        )
        return iidfile.read_text().strip()


# Set by scripts/test while it builds TEST_TAG in the background (harness.background).
BUILD_STATUS_ENV = "SCRYPT_HELPER_IMAGE_BUILD_STATUS"


def checkout_image() -> str:
    """TEST_TAG as this checkout builds it: waited for where scripts/test builds it in the
    background, else built now if absent (a build of the same checkout is mostly cached)."""
    if not built(BUILD_STATUS_ENV, "the container image") and not image_exists(TEST_TAG):
        build_image(TEST_TAG)
    return TEST_TAG


class Container:
    """A container of ``image`` run detached on the host's network with a read-only root filesystem.

    The service listens on a free port (and its metrics on another) unless ``env`` names them;
    ``podman_args`` go to ``podman run`` before the image, ``args`` after it (the command).
    """

    def __init__(
        self,
        image: str = TEST_TAG,
        *,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        podman_args: tuple[str, ...] = (),
        name: str | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        # The package is imported only where a container runs: ``python3 -m harness.image build``
        # needs the standard library alone, so scripts/test starts the build before any venv exists.
        from scrypt_helper.bench.local_servers import free_port

        self.image = image
        self.env = {
            "SCRYPT_HELPER_PORT": str(free_port()),
            "SCRYPT_HELPER_METRICS_PORT": str(free_port()),
            **(env or {}),
        }
        self.args = args
        self.podman_args = podman_args
        self.name = name or f"scrypt-helper-test-{os.getpid()}-{time.monotonic_ns()}"
        self.startup_timeout = startup_timeout
        self.started_at: float | None = None
        self._waiter: subprocess.Popen[str] | None = None
        self._status: int | None = None
        self._final_logs: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['SCRYPT_HELPER_PORT']}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.env['SCRYPT_HELPER_METRICS_PORT']}"

    def run_args(self) -> list[str]:
        """The ``podman run`` arguments (after ``run``)."""
        env = [arg for key, value in self.env.items() for arg in ("--env", f"{key}={value}")]
        return [
            "--detach",
            "--name",
            self.name,
            "--network",
            "host",
            "--read-only",
            *ULIMITS,
            *env,
            *self.podman_args,
            self.image,
            *self.args,
        ]

    def start(self) -> Container:
        """Run the container; its exit is watched by ``podman wait`` from then on."""
        self.started_at = time.monotonic()
        run_podman("run", *self.run_args())
        self._waiter = subprocess.Popen(
            podman("wait", self.name), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        return self

    def wait_ready(self, timeout: float | None = None) -> float:
        """Poll /__lbheartbeat__ until it answers 200; return the seconds since ``start``."""
        from scrypt_helper.bench.server_process import wait_until_answering
        from scrypt_helper.bench.tls import http_get

        assert self._waiter is not None
        assert self.started_at is not None
        wait_until_answering(
            f"container {self.name}",
            self._waiter,
            lambda: http_get(f"{self.url}/__lbheartbeat__", timeout=1).status_code == 200,
            self.logs,
            self.startup_timeout if timeout is None else timeout,
            self.stop,
        )
        return time.monotonic() - self.started_at

    def logs(self) -> str:
        """What the container wrote to stdout, then to stderr (kept after it is removed)."""
        if self._final_logs is not None:
            return self._final_logs
        done = run_podman("logs", self.name, check=False)
        return done.stdout + done.stderr

    def exec(self, *command: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command inside the running container (as its image's user unless ``user``)."""
        return run_podman("exec", *(("--user", user) if user else ()), self.name, *command, check=False)

    def signal(self, sig: int) -> None:
        """Send a signal to the container's main process."""
        run_podman("kill", "--signal", str(int(sig)), self.name)

    def wait(self, timeout: float) -> int:
        """Wait for the container to exit; its exit status (TimeoutExpired if it runs on)."""
        if self._status is None:
            assert self._waiter is not None
            out, _ = self._waiter.communicate(timeout=timeout)
            self._status = int(out.strip())
        return self._status

    def processes(self) -> list[dict[str, str]]:
        """Each process of the container: pid (inside), hpid (on the host), user, rss (KiB), args."""
        lines = run_podman("top", self.name, "pid", "hpid", "user", "rss", "args").stdout.splitlines()
        return [
            dict(zip(("pid", "hpid", "user", "rss", "args"), line.split(None, 4), strict=True))
            for line in lines[1:]
        ]

    def rss_bytes(self) -> int:
        """Resident memory of all the container's processes together."""
        return sum(int(process["rss"]) * 1024 for process in self.processes())

    def stop(self, timeout: float = 30.0) -> int | None:
        """Its STOPSIGNAL (SIGTERM), SIGKILL after ``timeout`` s; the exit status (None if never started)."""
        if self._waiter is None:
            return None
        if self._waiter.poll() is None:
            run_podman("stop", "--time", str(int(timeout)), self.name, timeout=timeout + 30, check=False)
        return self.wait(timeout=30)

    def remove(self) -> None:
        """Remove the container (its logs are kept for ``logs``)."""
        self._final_logs = self.logs()
        run_podman("rm", "--force", "--ignore", self.name, check=False)

    def __enter__(self) -> Container:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.stop()
        finally:
            self.remove()


def main(argv: list[str] | None = None) -> int:
    """``build``: build the image (default IMAGE:test on the stand-in base) and print its tag."""
    parser = argparse.ArgumentParser(prog="python -m harness.image", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build the image and print its tag")
    build.add_argument("--tag", default=TEST_TAG)
    build.add_argument("--version", default=None, help="default: pyproject.toml's")
    build.add_argument("--commit", default=None, help="default: the checkout's HEAD")
    build.add_argument("--build-url", default="unknown")
    build.add_argument(
        "--base",
        default=BASE,
        help=f"image to build on (PYTHON_BASE; default {BASE}, made with debootstrap if missing); "
        "'pinned' keeps the Dockerfile's digest-pinned python image",
    )
    commands.add_parser("base", help="make the stand-in base image if missing and print its name")
    args = parser.parse_args(argv)
    if args.command == "base":
        print(build_base())
        return 0
    build_image(
        args.tag,
        version=args.version,
        commit=args.commit,
        base=None if args.base == "pinned" else args.base,
        build_url=args.build_url,
    )
    print(args.tag)
    return 0


if __name__ == "__main__":
    sys.exit(main())
