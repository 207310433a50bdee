"""Request ids: a client's own ``X-Request-Id`` when it is well formed, else a fresh one."""

from __future__ import annotations

import itertools
import re
import uuid

# Long enough for a UUID, a trace id or a proxy's own id; short enough and plain enough to log and
# to send back as they came (no spaces, quotes or control characters).
WELL_FORMED = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


# Fresh ids in a UUID's shape: a random prefix per process, then a count. Unique in the process,
# and across processes and nodes as far as 92 random bits go; at a tenth of uuid4's cost, which
# every refusal of a flood would pay.
_PREFIX = str(uuid.uuid4())[:23]
_COUNT = itertools.count()


def request_id(sent: bytes | None) -> str:
    """The id of a request whose ``X-Request-Id`` header is ``sent`` (None: it sent none)."""
    if sent is not None and WELL_FORMED.fullmatch(sent):
        return sent.decode("ascii")
    return f"{_PREFIX}-{next(_COUNT) & 0xFFFFFFFFFFFF:012x}"
