"""MozLog JSON logging on stdout, and the per-request ``request.summary`` line.

Nothing here ever sees a request body: the summary is built from the ASGI scope and
the few numbers the handler leaves in ``scope["state"]``.
"""

from __future__ import annotations

import logging.config
from typing import Any

from dockerflow.fastapi.middleware import MozlogRequestSummaryLogger

LOGGER_NAME = "scrypt-helper"
# Numbers the POST handler records in scope["state"] for the summary line.
SUMMARY_STATE_FIELDS = ("errno", "reason", "queue_ms", "hash_ms", "batch")


def configure_logging(level: str) -> None:
    """Send every log record, uvicorn's included, to stdout as MozLog JSON."""
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "mozlog": {"()": "dockerflow.logging.MozlogFormatter", "logger_name": LOGGER_NAME},
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


class RequestSummaryLogger(MozlogRequestSummaryLogger):
    """Dockerflow's request.summary, plus errno and where the time went."""

    def __init__(self, app: Any) -> None:
        super().__init__(app, logger=logging.getLogger("request.summary"))

    def _format(self, scope: Any, info: Any) -> dict[str, Any]:
        fields = super()._format(scope, info)
        state = scope.get("state") or {}
        for name in SUMMARY_STATE_FIELDS:
            if name in state:
                fields[name] = state[name]
        return fields
