"""MozLog JSON logging on stdout for every logger, uvicorn's included.

The per-request ``request.summary`` line comes from ``web.middleware.request_summary``.
"""

from __future__ import annotations

import logging
import logging.config

LOGGER_NAME = "scrypt-helper"


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
