"""One call's retries: which URL each attempt goes to, how long to wait, what an answer means.

Answers 429 and 5xx, connection errors and time-outs are retried with jittered exponential backoff,
never sooner than ``Retry-After`` and never past the call's deadline; any other error answer is final.
A connection error, time-out or 5xx moves the call to the next base URL at once and marks the one
that failed down (``failover``); a 429 is asked again of the same URL, since it limits this client and
not the region.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import re
import time
from dataclasses import dataclass
from datetime import UTC

import httpx

from scrypt_helper_client.errors import HelperError
from scrypt_helper_client.failover import UrlHealth
from scrypt_helper_client.params import ScryptParameters

logger = logging.getLogger("scrypt_helper_client")

#: First backoff step (seconds); it doubles with each attempt up to BACKOFF_CAP.
BACKOFF_BASE = 0.1
BACKOFF_CAP = 5.0
#: An attempt is not started with less time than this left before the deadline.
MIN_ATTEMPT_SECONDS = 0.05

_RANDOM = random.SystemRandom()
_HEX = re.compile(r"[0-9a-fA-F]*")


@dataclass(frozen=True, slots=True)
class Options:
    """What a client was asked to keep to: parameters, time-outs, deadline, attempts, fallback."""

    params: ScryptParameters
    connect_timeout: float
    read_timeout: float
    deadline: float
    max_attempts: int
    fallback: bool

    def __post_init__(self) -> None:
        if min(self.connect_timeout, self.read_timeout, self.deadline) <= 0:
            raise ValueError("timeouts and deadline must be positive")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")


def retry_after_seconds(value: str | None) -> float | None:
    """The wait a ``Retry-After`` header asks for (seconds or an HTTP date); None if absent or bad."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def backoff_delay(attempt: int, retry_after: float | None) -> float:
    """Seconds to wait after ``attempt`` (1-based): Retry-After plus a jittered exponential step."""
    step = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
    return (retry_after or 0.0) + _RANDOM.uniform(step / 2, step)


def answer_error(response: httpx.Response) -> HelperError:
    """A HelperError from an error answer's JSON body ``{code, errno, error, message}``."""
    try:
        body = response.json()
    except ValueError:
        body = None
    errno = body.get("errno") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    return HelperError(
        response.status_code,
        errno if isinstance(errno, int) and not isinstance(errno, bool) else None,
        message[:200] if isinstance(message, str) else response.reason_phrase,
    )


def answer_output(response: httpx.Response, buflen: int) -> bytes:
    """The output of a 200 answer: exactly ``buflen`` bytes of hex, else HelperError."""
    try:
        body = response.json()
    except ValueError:
        raise HelperError(response.status_code, None, "the body is not JSON") from None
    output = body.get("output") if isinstance(body, dict) else None
    if not isinstance(output, str) or len(output) != 2 * buflen or not _HEX.fullmatch(output):
        raise HelperError(response.status_code, None, f"the output is not {buflen} bytes of hex")
    return bytes.fromhex(output)


class Attempts:
    """Retry state of one hash call: the URL of each attempt, attempts made, time left, waits asked for.

    The call tries the URLs in ``health``'s order as it began, moving to the next one after a
    failure; a URL not tried yet in this call is tried at once, one tried already after a backoff
    and never before its ``Retry-After``. A URL whose wait would end past the deadline is passed over.
    """

    def __init__(self, options: Options, health: UrlHealth) -> None:
        self._options = options
        self._health = health
        self._ends = time.monotonic() + options.deadline
        self._plan = health.order()
        self._tries = dict.fromkeys(self._plan, 0)
        self._not_before = dict.fromkeys(self._plan, 0.0)  # when each URL's Retry-After ends
        self._stay = False  # the last answer was a 429: ask the same URL again
        self.url = self._plan[0]
        self.count = 0
        self.last_failure = "no attempt made"

    def left(self) -> float:
        """Seconds until the deadline."""
        return self._ends - time.monotonic()

    def start(self) -> httpx.Timeout:
        """Count a new attempt (to ``self.url``); its timeouts, cut to the time left."""
        self.count += 1
        self._tries[self.url] += 1
        self._stay = False
        left = max(MIN_ATTEMPT_SECONDS, self.left())
        connect = min(self._options.connect_timeout, left)
        return httpx.Timeout(
            connect=connect, read=min(self._options.read_timeout, left), write=connect, pool=connect
        )

    def failed(self, exc: Exception) -> None:
        """Record a connection error or timeout: the URL is down."""
        self.last_failure = type(exc).__name__
        self._health.failed(self.url)
        logger.info("scrypt helper attempt %d to %s failed: %s", self.count, self.url, self.last_failure)

    def judge(self, response: httpx.Response) -> bytes | None:
        """The output of a good answer; None for a retryable one; HelperError for any other."""
        if response.status_code != 429 and not response.is_server_error:
            self._health.answered(self.url)
            if response.status_code == 200:
                return answer_output(response, self._options.params.buflen)
            raise answer_error(response)
        retry_after = retry_after_seconds(response.headers.get("retry-after"))
        if retry_after is not None:
            self._not_before[self.url] = time.monotonic() + retry_after
        if response.status_code == 429:
            self._stay = True  # a limit on this client: another region would only be hopping it
        else:
            self._health.failed(self.url)
        self.last_failure = f"{response.status_code} {response.reason_phrase}"
        logger.info("scrypt helper attempt %d to %s answered %s", self.count, self.url, self.last_failure)
        return None

    def pause(self) -> float | None:
        """Pick the next attempt's URL; seconds to wait first, or None when none fits in attempts and time."""
        if self.count >= self._options.max_attempts:
            return None
        here = self._plan.index(self.url)
        candidates = [self.url] if self._stay else self._plan[here + 1 :] + self._plan[: here + 1]
        for url in candidates:
            delay = self._delay(url)
            if delay + MIN_ATTEMPT_SECONDS <= self.left():
                self.url = url
                return delay
        return None

    def _delay(self, url: str) -> float:
        """No wait for a URL this call has not tried; else a backoff step after its Retry-After."""
        if self._tries[url] == 0:
            return 0.0
        return backoff_delay(self._tries[url], max(0.0, self._not_before[url] - time.monotonic()))

    def summary(self) -> str:
        return f"no answer after {self.count} attempt(s); last: {self.last_failure}"
