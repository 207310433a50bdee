"""A node of several HTTP front processes: bind its ports once, start the processes, relay signals.

The parent binds one socket per process on each port, all with ``SO_REUSEPORT``, and hands each
process its own: the kernel then spreads new connections evenly over the processes that listen,
where one shared socket lets whichever event loop wakes first accept a whole burst. The sockets
start listening together, once every process has built its node and reserved its workers' buffers,
so no connection waits on a process that is still starting and none piles onto the first one ready;
one whose process has gone takes no more. The processes are spawned, not forked: each starts a
fresh interpreter, builds its own node (engine, threads, event loop), and imports prometheus_client
with the node's multiprocess directory already in its environment.

The parent turns each SIGTERM or SIGINT into one ``STOP`` signal to every process, which drains
as a single-process node does on its first and stops on its second. The processes ignore SIGTERM
and SIGINT themselves: a terminal's Ctrl-C, or systemd's SIGTERM to the whole cgroup, reaches
them as well as the parent, and would otherwise count twice and skip the drain. They get ``STOP``
if the parent dies. A process that exits while the node is not stopping stops the node: the
others drain, and the parent exits 1 for the orchestrator to restart the node whole.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable, Iterator
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any, NamedTuple

from scrypt_helper.core.config import Settings
from scrypt_helper.observability.metrics import MULTIPROCESS_DIR_ENV, forget_process
from scrypt_helper.runtime.processes import ProcessPlan

logger = logging.getLogger("scrypt_helper.supervisor")

# What the parent takes from outside, and what it sends its processes for each.
RELAYED = (signal.SIGTERM, signal.SIGINT)
STOP = signal.SIGUSR1
# <linux/prctl.h>
PR_SET_PDEATHSIG = 1
# Memory, not disk, for the metrics files where the system has it (a read-only root file system
# in a container still has /dev/shm).
SHARED_MEMORY = "/dev/shm"  # noqa: S108 - only a parent for mkdtemp, which makes a private directory


class Listeners(NamedTuple):
    """One front process's sockets: the service port's, and the private metrics port's if set;
    and where the node's processes meet once each is built, so that they start listening together."""

    public: socket.socket
    metrics: socket.socket | None
    built: Any = None  # a multiprocessing Barrier of all the node's processes

    def wait_for_the_others(self) -> None:
        """Return once every process of the node is built. Were the port to open with the first
        process, the first clients' keep-alive connections would all stay with it, its one share of
        the workers busy and the others idle."""
        if self.built is not None:
            self.built.wait(START_TIMEOUT)


FrontProcess = Callable[[Settings, Listeners], None]
# Seconds a built process waits for the others (engine self-test, buffers) before it gives up.
START_TIMEOUT = 300.0


def bind(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets bound to one address with ``SO_REUSEPORT``, not listening yet.

    Port 0 binds the first to a free port and the others to the same one.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


@contextlib.contextmanager
def metrics_directory() -> Iterator[str]:
    """A fresh private directory (mode 0700) for the processes' metrics, named in the environment
    the processes inherit; removed, and the variable restored, at exit."""
    parent = SHARED_MEMORY if os.access(SHARED_MEMORY, os.W_OK | os.X_OK) else None
    directory = tempfile.mkdtemp(prefix="scrypt-helper-metrics-", dir=parent)
    previous = os.environ.get(MULTIPROCESS_DIR_ENV)
    os.environ[MULTIPROCESS_DIR_ENV] = directory
    try:
        yield directory
    finally:
        if previous is None:
            os.environ.pop(MULTIPROCESS_DIR_ENV, None)
        else:
            os.environ[MULTIPROCESS_DIR_ENV] = previous
        shutil.rmtree(directory, ignore_errors=True)


def supervise(plan: ProcessPlan, front: FrontProcess) -> int:
    """Run ``front`` in one process per share of ``plan`` until they all exit; the exit status:
    0 when each exited cleanly (or by the signal relayed to it), 1 when any failed."""
    settings = plan.shares[0]
    count = plan.processes
    public = bind(settings.host, settings.port, count)
    private: list[socket.socket | None] = [None] * count
    try:
        if settings.metrics_port is not None:
            private = list(bind(settings.host, settings.metrics_port, count))
    except OSError:
        for sock in public:
            sock.close()
        raise
    with metrics_directory() as directory:
        return Supervisor(plan, front, directory).run(public, private)


class Supervisor:
    """The parent of the front processes."""

    def __init__(self, plan: ProcessPlan, front: FrontProcess, directory: str) -> None:
        self.plan = plan
        self.front = front
        self.directory = directory
        self.children: list[BaseProcess] = []
        self.stopping = False
        self.failed = False

    def run(self, public: list[socket.socket], private: list[socket.socket | None]) -> int:
        context = multiprocessing.get_context("spawn")
        port = public[0].getsockname()[1]
        previous = {sig: signal.signal(sig, self.relay) for sig in RELAYED}
        built = context.Barrier(len(self.plan.shares))
        try:
            for index, share in enumerate(self.plan.shares):
                listeners = Listeners(public[index], private[index], built)
                if not self.stopping:
                    child = context.Process(
                        target=run_front_process,
                        args=(self.front, share, listeners, os.getpid()),
                        name=f"scrypt-helper-front-{index}",
                    )
                    child.start()
                    self.children.append(child)
                # The process holds its own copies now; closing the parent's means a socket closes
                # with the process that listens on it, and the kernel sends its share elsewhere.
                listeners.public.close()
                if listeners.metrics is not None:
                    listeners.metrics.close()
            logger.info(
                "serving port %d in %d processes (pids %s), %s workers, metrics in %s",
                port,
                len(self.children),
                ", ".join(str(child.pid) for child in self.children),
                "+".join(str(share.workers) for share in self.plan.shares),
                self.directory,
            )
            self.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 1 if self.failed else 0

    def relay(self, sig: int, frame: FrameType | None) -> None:
        """Send ``STOP`` to every running process (the first drains them, a second stops them)."""
        self.stopping = True
        for child in self.children:
            if child.exitcode is None and child.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, STOP)

    def wait(self) -> None:
        """Until every process has exited; one that exits unasked stops the node."""
        running = list(self.children)
        while running:
            ended = multiprocessing.connection.wait([child.sentinel for child in running])
            for child in [child for child in running if child.sentinel in ended]:
                child.join()
                running.remove(child)
                forget_process(child.pid or 0, self.directory)
                self.ended(child)

    def ended(self, child: BaseProcess) -> None:
        status = child.exitcode
        if not self.stopping:
            logger.error("%s (pid %s) exited with %s: stopping the node", child.name, child.pid, status)
            self.failed = True
            self.relay(signal.SIGTERM, None)
        elif status not in (0, -STOP):  # -STOP: stopped while still starting, before it could drain
            logger.error("%s (pid %s) exited with %s", child.name, child.pid, status)
            self.failed = True


def run_front_process(front: FrontProcess, settings: Settings, listeners: Listeners, parent: int) -> None:
    """A front process's entry: take stop signals from the parent only, stop with it, serve.

    ``front`` drains on ``STOP``, as a one-process node does on SIGTERM (``server.DrainingServer``).
    """
    for sig in RELAYED:
        signal.signal(sig, signal.SIG_IGN)
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, STOP, 0, 0, 0)
    try:
        if os.getppid() == parent:  # else the parent died before the line above took effect
            front(settings, listeners)
    except Exception:
        logger.exception("front process failed")
        raise SystemExit(1) from None
    finally:
        if os.getppid() != parent:
            forget_own_metrics()


def forget_own_metrics() -> None:
    """An orphan's cleanup, which its dead parent cannot do: remove this process's metrics files,
    and the directory once the last process has."""
    directory = os.environ.get(MULTIPROCESS_DIR_ENV)
    if not directory:
        return
    for path in glob.glob(os.path.join(glob.escape(directory), f"*_{os.getpid()}.db")):
        with contextlib.suppress(OSError):
            os.remove(path)
    with contextlib.suppress(OSError):
        os.rmdir(directory)
