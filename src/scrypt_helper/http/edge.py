"""Refusals below the app: each counted by reason, given a summary line under the refusal budget,
and, where one is sent, written by the one encoder (``http.answers``).

Early admission's answers to ``POST /`` are recorded here under the route ``/``; the protocol's own (the
HTTP parser's 400, a head too large, the connection caps' 503s and resets, read time-outs, upgrade
attempts) under ``unmatched``, as the request metrics count a request no route served.
"""

from __future__ import annotations

from scrypt_helper.core.errors import ApiError
from scrypt_helper.http.answers import Header, RefusalEncoder
from scrypt_helper.http.request_ids import request_id
from scrypt_helper.observability.log import SummaryLog
from scrypt_helper.observability.metrics import KNOWN_METHODS, Metrics, RequestSeries

UNMATCHED = "unmatched"
# The status a summary line gives a connection cut unanswered: nginx logs 408 for a client that
# took too long, and the connection caps' resets are refusals of the same kind as their 503.
TIMED_OUT = 408
RESET = 503


class EdgeRefusals:
    """Records and encodes the refusals written below ASGI, for one front process."""

    def __init__(self, metrics: Metrics, summary_log: SummaryLog) -> None:
        self.metrics = metrics
        self.series = RequestSeries(metrics)
        self.summary_log = summary_log
        self.encoder = RefusalEncoder()

    def answer(
        self,
        error: ApiError,
        *,
        rid: str | None = None,
        method: str = "",
        path: str = "",
        route: str = UNMATCHED,
        seconds: float = 0.0,
        agent: str | None = None,
        lang: str | None = None,
        cors: list[Header] | None = None,
        close: bool = True,
    ) -> bytes:
        """Record ``error`` and return the whole answer; ``close``: the connection ends after it."""
        rid = rid or request_id(None)
        self.record(
            error.status,
            error.reason,
            rid=rid,
            method=method,
            path=path,
            route=route,
            seconds=seconds,
            agent=agent,
            lang=lang,
            errno=int(error.errno),
        )
        return self.encoder.encode(error, rid, cors, close=close)

    def record(
        self,
        code: int,
        reason: str | None,
        *,
        rid: str | None = None,
        method: str = "",
        path: str = "",
        route: str = UNMATCHED,
        seconds: float = 0.0,
        agent: str | None = None,
        lang: str | None = None,
        errno: int | None = None,
    ) -> None:
        """Count a refusal (answered or not) and give it a summary line, within the budget."""
        if reason is not None and route == UNMATCHED:
            self.metrics.count_rejection(reason)
        self.series.record(route, method if method in KNOWN_METHODS else "OTHER", code, seconds)
        state: dict[str, object] = {}
        if errno is not None:
            state["errno"] = errno
        if reason is not None:
            state["reason"] = reason
        self.summary_log.write(
            agent=agent, path=path, method=method, code=code, lang=lang, seconds=seconds, rid=rid, state=state
        )
