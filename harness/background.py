"""Artefacts scripts/test builds in the background while the suite starts (the container image, the
sanitizer build of the C driver test): the tests that use one wait for its build to end.

scripts/test names a status file in an environment variable; the build's exit status is written to
it when the build ends, and the build's output to the same path plus ``.log``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

WAIT_SECONDS = 1200


def wait_for_build(status_env: str, what: str, timeout: float = WAIT_SECONDS) -> int | None:
    """Wait for the background build announced in ``status_env`` and return its exit status; None
    when none was announced (the caller builds for itself). TimeoutError when it did not end in
    ``timeout`` seconds."""
    path = os.environ.get(status_env)
    if not path:
        return None
    status = Path(path)
    deadline = time.monotonic() + timeout
    while not (status.exists() and status.read_text().strip()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the background build of {what} did not end in {timeout:.0f} s")
        time.sleep(0.5)
    return int(status.read_text().strip())


def build_output(status_env: str) -> str:
    """The end of the background build's output."""
    log = Path(f"{os.environ[status_env]}.log")
    return log.read_text(errors="replace")[-4000:] if log.exists() else ""


def build_failed(status_env: str, what: str) -> RuntimeError:
    """The error for a background build that failed, with the end of its output."""
    return RuntimeError(f"the background build of {what} failed:\n{build_output(status_env)}")


def built(status_env: str, what: str) -> bool:
    """True once the background build announced in ``status_env`` succeeded, False when none was
    announced; RuntimeError, with the end of its output, when it failed."""
    code = wait_for_build(status_env, what)
    if code is None:
        return False
    if code != 0:
        raise build_failed(status_env, what)
    return True
