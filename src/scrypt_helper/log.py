"""MozLog JSON logging on stdout for every logger, uvicorn's included.

The per-request ``request.summary`` line comes from ``web.middleware.request_summary``.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import socket

from dockerflow.logging import MozlogFormatter, SafeJSONEncoder

LOGGER_NAME = "scrypt-helper"
# The fields of a request.summary line, in their order (see web.middleware.request_summary).
SUMMARY_FIELDS = (
    "agent",
    "path",
    "method",
    "code",
    "lang",
    "t",
    "rid",
    "errno",
    "reason",
    "queue_ms",
    "hash_ms",
    "batch",
)


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
        if (
            record.name != "request.summary"
            or record.levelno != logging.INFO
            or record.msg
            or record.exc_info
        ):
            return super().format(record)
        attributes = record.__dict__
        fields = {name: attributes[name] for name in SUMMARY_FIELDS if name in attributes}
        body = json.dumps(fields, cls=SafeJSONEncoder)
        return self._head % (int(record.created * 1e9), record.process or os.getpid()) + body + "}"


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
            "filters": {"request_id": {"()": "dockerflow.logging.RequestIdLogFilter"}},
            "handlers": {
                "stdout": {
                    "class": "logging.StreamHandler",
                    "stream": "ext://sys.stdout",
                    "formatter": "mozlog",
                    "filters": ["request_id"],
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
