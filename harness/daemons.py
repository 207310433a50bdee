"""The test harness's servers (nginx, HAProxy, Prometheus): ``Daemon``, a ``ChildProcess`` in a work
directory of its own."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

from scrypt_helper.bench.server_process import ChildProcess


class Daemon(ChildProcess):
    """A server the harness runs in the foreground in a work directory of its own, its output in
    ``log_name`` there; the directory is removed when it stops (``cleanup``).

    A subclass names itself, builds its configuration in ``workdir`` and gives its ``command()``
    and ``answers()``; ``check_config()`` runs the server's own check of it, where it has one."""

    name = "daemon"
    log_name = "stderr.log"
    start_timeout = 15.0

    def __init__(self) -> None:
        super().__init__()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"scrypt-helper-{self.name}-"))
        self.log_path = self.workdir / self.log_name

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        self.cleanup()


def run_check(command: list[str], what: str) -> None:
    """Run a server's own configuration check; RuntimeError with its output if it refuses."""
    checked = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    if checked.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{checked.stdout}{checked.stderr}")
