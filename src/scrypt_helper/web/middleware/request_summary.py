"""The MozLog ``request.summary`` line of every request, with where its time went.

Nothing here ever sees a request body: the line is built from the ASGI scope and the
few numbers the scrypt route leaves in ``scope["state"]``.
"""

from __future__ import annotations

import logging
from typing import Any

from dockerflow.fastapi.middleware import MozlogRequestSummaryLogger

# Numbers the POST handler records in scope["state"] for the summary line.
SUMMARY_STATE_FIELDS = ("errno", "reason", "queue_ms", "hash_ms", "batch")


class RequestSummaryMiddleware(MozlogRequestSummaryLogger):
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
