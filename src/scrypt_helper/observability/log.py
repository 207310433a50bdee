"""MozLog JSON logging on stdout for every logger, uvicorn's included, and the per-request
``request.summary`` line (``SummaryLog``), written by ``http.middleware.request_summary`` and early admission.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import logging.config
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from dockerflow.logging import MozlogFormatter, SafeJSONEncoder, request_id_context

LOGGER_NAME = "scrypt-helper"
# The numbers the endpoint of ``/`` leaves in ``scope["state"]`` for the summary line.
SUMMARY_STATE_FIELDS = ("errno", "reason", "queue_ms", "hash_ms", "batch")
# The fields of a request.summary line, in their order (see ``SummaryLog.write``).
SUMMARY_FIELDS = ("agent", "path", "method", "code", "lang", "t", "rid", *SUMMARY_STATE_FIELDS)
_ENCODER = SafeJSONEncoder()


class ServiceFormatter(MozlogFormatter):
    """Dockerflow's MozLog JSON. The ``request.summary`` line, written for every request, is made
    from its known fields after a head serialised once, instead of from a walk over every record
    attribute: the same line at a third of the cost."""

    def __init__(self, logger_name: str = LOGGER_NAME) -> None:
        super().__init__(logger_name=logger_name)
        self._head = (
            '{"Timestamp": %d, "Type": "request.summary", "Logger": '
            + json.dumps(logger_name).replace("%", "%%")
            + ', "Hostname": '
            + json.dumps(socket.gethostname()).replace("%", "%%")
            + ', "EnvVersion": "2.0", "Severity": 6, "Pid": %d, "Fields": '
        )

    def format(self, record: logging.LogRecord) -> str:
        # uvicorn's copy of its message with terminal colour escapes: never in a JSON line.
        record.__dict__.pop("color_message", None)
        if (
            record.name != "request.summary"
            or record.levelno != logging.INFO
            or record.msg
            or record.exc_info
        ):
            return super().format(record)
        attributes = record.__dict__
        fields = {name: attributes[name] for name in SUMMARY_FIELDS if name in attributes}
        body = _ENCODER.encode(fields)
        return self._head % (int(record.created * 1e9), record.process or os.getpid()) + body + "}"


# Set in the task of a server that runs beside the node's own (the private metrics port): its
# uvicorn lifecycle lines would repeat the node's.
companion_server: contextvars.ContextVar[bool] = contextvars.ContextVar("companion_server", default=False)


class CompanionLifecycleFilter(logging.Filter):
    """Drops uvicorn's INFO lines (started, running on, shutting down) of a companion server."""

    def filter(self, record: logging.LogRecord) -> bool:
        lifecycle = record.name == "uvicorn.error" and record.levelno == logging.INFO
        return not (lifecycle and companion_server.get())


class RequestIdFilter(logging.Filter):
    """Each record's ``rid``: the one it was given (a summary line written below ASGI, where no
    request's context is set), else the request id of the context it was logged in."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "rid", None) is None:
            record.rid = request_id_context.get()
        return True


def configure_logging(level: str) -> None:
    """Send every log record, uvicorn's included, to stdout as MozLog JSON."""
    # MozLog lines carry neither the caller's source line nor thread names: skip collecting them
    # (the logging HOWTO's "Optimization"), which is a third of a request.summary line's cost.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logMultiprocessing = False
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "mozlog": {"()": ServiceFormatter},
            },
            "filters": {
                "request_id": {"()": RequestIdFilter},
                "companion_lifecycle": {"()": CompanionLifecycleFilter},
            },
            "handlers": {
                "stdout": {
                    "class": "logging.StreamHandler",
                    "stream": "ext://sys.stdout",
                    "formatter": "mozlog",
                    "filters": ["request_id", "companion_lifecycle"],
                },
            },
            "root": {"handlers": ["stdout"], "level": level},
            "loggers": {
                "request.summary": {"level": "INFO"},
                "uvicorn": {"handlers": [], "propagate": True},
                "uvicorn.error": {"handlers": [], "propagate": True},
                # request.summary replaces the access log, which would repeat each request.
                "uvicorn.access": {"handlers": [], "propagate": False, "level": "CRITICAL"},
            },
        }
    )


def is_refusal(code: int) -> bool:
    """A client error (a client gone, 499, too) or an overload answer: what a flood is made of."""
    return 400 <= code <= 499 or code == 503


class SummaryLog:
    """The ``request.summary`` line of each request, with refusals held to a budget a second.

    Under a flood nearly every answer is a refusal, and a line for each would turn the flood into
    a log flood: the node's CPU (a line costs more than the rest of a refusal) and the central log
    store's volume. So the first ``refusals_per_second`` refusals of each second get a line each;
    the rest are counted by status and told in one ``request.refusals`` line when that second
    ends. Every other answer (a hash, a health check, a fault) always gets its line; 0 gives every
    refusal its line too. The metrics count every request either way.
    """

    def __init__(self, refusals_per_second: int = 100, clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logging.getLogger("request.summary")
        self.refusals_logger = logging.getLogger("request.refusals")
        self.refusals_per_second = refusals_per_second
        self._clock = clock
        self._second_ends = float("-inf")
        self._left = 0  # lines still allowed this second
        self._unlogged: Counter[int] = Counter()  # refusals of this second without a line, by status
        self._timer: asyncio.TimerHandle | None = None  # the flush at this second's end

    def write(
        self,
        *,
        agent: str | None,
        path: str,
        method: str,
        code: int,
        lang: str | None,
        seconds: float,
        rid: str | None,
        state: dict[str, Any],
    ) -> None:
        """Log one request (``rid`` None: a fresh id), unless it is a refusal over this second's budget."""
        if not self.logger.isEnabledFor(logging.INFO) or not self._wants_line(code):
            return
        fields: dict[str, Any] = {
            "agent": agent or "",
            "path": path,
            "method": method,
            "code": code,
            "lang": lang,
            "t": int(seconds * 1000),
            "rid": rid or str(uuid.uuid4()),
        }
        for name in SUMMARY_STATE_FIELDS:
            if name in state:
                fields[name] = state[name]
        self.logger.info("", extra=fields)

    def flush(self) -> None:
        """Log the count of refusals left without a line, if any."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._unlogged:
            by_code = {str(code): count for code, count in sorted(self._unlogged.items())}
            self._unlogged.clear()
            fields = {"unlogged": sum(by_code.values()), "by_code": by_code}
            # An empty context: the line belongs to no one request, so it carries no request id.
            contextvars.Context().run(
                self.refusals_logger.info, "", extra={**fields, "per_second": self.refusals_per_second}
            )

    def _wants_line(self, code: int) -> bool:
        if not self.refusals_per_second or not is_refusal(code):
            return True
        now = self._clock()
        if now >= self._second_ends:
            self.flush()
            self._second_ends = now + 1.0
            self._left = self.refusals_per_second
        if self._left:
            self._left -= 1
            return True
        if self._timer is None:  # the first refusal left without a line this second
            # Without a running loop, the next second's first refusal tells the count instead.
            with contextlib.suppress(RuntimeError):
                self._timer = asyncio.get_running_loop().call_later(self._second_ends - now, self.flush)
        self._unlogged[code] += 1
        return False
