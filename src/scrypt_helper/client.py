"""Client library: ask a scrypt-helper node for scrypt, retrying politely, else compute it here.

``Client(url).hash(data)`` posts ``data`` to the helper and returns the checked output. Answers 429
and 5xx, connection errors and timeouts are retried with jittered exponential backoff, never sooner
than ``Retry-After`` and never past ``deadline`` seconds after the call began; other error answers
raise ``HelperError`` at once. ``url`` may list several base URLs (one per region): a connection
error, time-out or 5xx moves the call to the next one at once, and marks the URL that failed as down
for ``cooldown`` seconds, during which calls try it last (``failover``); a 429 is asked again of
the same URL, after its ``Retry-After``, since it limits this client and not the region. A helper
that stays unreachable or refusing (or ``url=None``) means local computation, or
``HelperUnavailable`` with ``fallback=False``. ``AsyncClient`` is the same for asyncio. ``stretch``
is the Firefox Accounts onepw password stretch built on them.

Inputs and outputs are secrets: they are never logged nor put into exception messages, and never
sent over plain ``http://`` to a host other than this machine's loopback unless the caller says
``allow_insecure_http=True``.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import ipaddress
import logging
import math
import random
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from types import TracebackType
from typing import Self

import httpx

from scrypt_helper import __version__
from scrypt_helper.engines import Engine, ScryptParams, select_engine
from scrypt_helper.engines.vectors import PICL_PARAMS
from scrypt_helper.failover import DEFAULT_COOLDOWN, UrlHealth, base_urls
from scrypt_helper.wire import request_body

__all__ = [
    "AsyncClient",
    "Client",
    "ClientError",
    "HelperError",
    "HelperUnavailable",
    "async_stretch",
    "first_pbkdf",
    "local_hash",
    "second_pbkdf",
    "stretch",
]

logger = logging.getLogger("scrypt_helper.client")

#: First backoff step (seconds); it doubles with each attempt up to BACKOFF_CAP.
BACKOFF_BASE = 0.1
BACKOFF_CAP = 5.0
#: An attempt is not started with less time than this left before the deadline.
MIN_ATTEMPT_SECONDS = 0.05
_HEADERS = {"User-Agent": f"scrypt-helper-client/{__version__}"}

FIRST_PBKDF_SALT = b"identity.mozilla.com/picl/v1/first-PBKDF:"
SECOND_PBKDF_SALT = b"identity.mozilla.com/picl/v1/second-PBKDF:"
PBKDF2_ROUNDS = 20000
PBKDF2_BYTES = 32

_RANDOM = random.SystemRandom()
_HEX = re.compile(r"[0-9a-fA-F]*")


class ClientError(Exception):
    """Base of the errors this module raises."""


class HelperError(ClientError):
    """The helper answered with an error (other than a retryable one) or with an invalid answer."""

    def __init__(self, status: int, errno: int | None, message: str) -> None:
        self.status = status
        self.errno = errno
        self.message = message
        code = "" if errno is None else f" (errno {errno})"
        super().__init__(f"helper answered {status}{code}: {message}")


class HelperUnavailable(ClientError):
    """No answer from the helper within the deadline or attempts, and local fallback is off."""


# -- local computation -----------------------------------------------------------------------------------

_engine_lock = threading.Lock()
_engines: list[Engine] = []


def _local_engine() -> Engine:
    """The self-tested engine ``auto`` picks; selected once per process (it takes a while)."""
    with _engine_lock:
        if not _engines:
            _engines.append(select_engine("auto"))
        return _engines[0]


def local_hash(params: ScryptParams, data: bytes) -> bytes:
    """scrypt of ``data`` computed in this process."""
    return _local_engine().hash(params, data)


# -- one call's retry bookkeeping ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Options:
    params: ScryptParams
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


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine's loopback: ``localhost``, 127.0.0.0/8 or ::1."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _check_url(url: str, allow_insecure_http: bool) -> None:
    """ValueError unless ``url`` is an http(s) URL with a host, and https unless loopback or allowed."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"invalid helper URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError("the helper URL must be http:// or https:// with a host")
    if parsed.scheme == "http" and not allow_insecure_http and not is_loopback(parsed.host):
        raise ValueError(
            f"refusing to send secrets over plain http:// to {parsed.host}: use https://, or allow it "
            "explicitly (allow_insecure_http=True, --allow-insecure-http) on a network you trust"
        )


class _Attempts:
    """Retry state of one hash call: the URL of each attempt, attempts made, time left, waits asked for.

    The call tries the URLs in ``health``'s order as it began, moving to the next one after a
    failure; a URL not tried yet in this call is tried at once, one tried already after a backoff
    and never before its ``Retry-After``. A URL whose wait would end past the deadline is passed over.
    """

    def __init__(self, options: _Options, health: UrlHealth) -> None:
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


# -- the clients -----------------------------------------------------------------------------------------


class _ClientBase:
    """What both clients share: options, base URLs and their health, and giving up on the helper.

    ``url`` is one base URL, several (one per region, tried in that order while they answer), or None.
    """

    def __init__(
        self,
        url: str | Sequence[str] | None,
        *,
        params: ScryptParams = PICL_PARAMS,
        connect_timeout: float = 2.0,
        read_timeout: float = 10.0,
        deadline: float = 30.0,
        max_attempts: int = 5,
        fallback: bool = True,
        allow_insecure_http: bool = False,
        cooldown: float = DEFAULT_COOLDOWN,
    ) -> None:
        self._options = _Options(params, connect_timeout, read_timeout, deadline, max_attempts, fallback)
        self.urls = base_urls(url)
        for one in self.urls:
            _check_url(one, allow_insecure_http)
        self.url = self.urls[0] if self.urls else None
        self.health = UrlHealth(self.urls, cooldown)
        self._pools = {one: self._connect(one) for one in self.urls}

    def _connect(self, url: str) -> httpx.Client | httpx.AsyncClient:
        """The HTTP connection pool for ``url``."""
        raise NotImplementedError

    @property
    def params(self) -> ScryptParams:
        return self._options.params

    def _give_up(self, reason: str | None) -> None:
        """Raise HelperUnavailable, or (fallback) log why the hash is computed here (None: no URL)."""
        if not self._options.fallback:
            raise HelperUnavailable(f"scrypt helper unavailable: {reason or 'no helper URL'}")
        if reason is not None:
            logger.warning("scrypt helper unavailable (%s); computing locally", reason)


class Client(_ClientBase):
    """Blocking client; ``url=None`` computes every hash locally (or raises with ``fallback=False``)."""

    _pools: dict[str, httpx.Client]

    def _connect(self, url: str) -> httpx.Client:
        return httpx.Client(base_url=url, headers=_HEADERS)

    def hash(self, data: bytes) -> bytes:
        """scrypt of ``data`` with this client's parameters, from the helper or computed here."""
        data = bytes(data)
        if not self._pools:
            self._give_up(None)
            return local_hash(self.params, data)
        body = request_body(self.params, data)
        attempts = _Attempts(self._options, self.health)
        while True:
            try:
                timeout = attempts.start()
                response = self._pools[attempts.url].post("/", json=body, timeout=timeout)
            except httpx.TransportError as exc:
                attempts.failed(exc)
            else:
                if (output := attempts.judge(response)) is not None:
                    return output
            if (delay := attempts.pause()) is None:
                self._give_up(attempts.summary())
                return local_hash(self.params, data)
            time.sleep(delay)

    def close(self) -> None:
        """Close the connection pools."""
        for pool in self._pools.values():
            pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncClient(_ClientBase):
    """asyncio client; local computation runs in a thread so the event loop stays free."""

    _pools: dict[str, httpx.AsyncClient]

    def _connect(self, url: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=url, headers=_HEADERS)

    async def hash(self, data: bytes) -> bytes:
        """scrypt of ``data`` with this client's parameters, from the helper or computed here."""
        data = bytes(data)
        if not self._pools:
            self._give_up(None)
            return await asyncio.to_thread(local_hash, self.params, data)
        body = request_body(self.params, data)
        attempts = _Attempts(self._options, self.health)
        while True:
            try:
                timeout = attempts.start()
                async with asyncio.timeout(max(MIN_ATTEMPT_SECONDS, attempts.left())):
                    response = await self._pools[attempts.url].post("/", json=body, timeout=timeout)
            except (httpx.TransportError, TimeoutError) as exc:
                attempts.failed(exc)
            else:
                if (output := attempts.judge(response)) is not None:
                    return output
            if (delay := attempts.pause()) is None:
                self._give_up(attempts.summary())
                return await asyncio.to_thread(local_hash, self.params, data)
            await asyncio.sleep(delay)

    async def close(self) -> None:
        """Close the connection pools."""
        for pool in self._pools.values():
            await pool.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


# -- Firefox Accounts onepw password stretching ----------------------------------------------------------


def first_pbkdf(email: str, password: str) -> bytes:
    """k1 = PBKDF2-HMAC-SHA256(password, first-PBKDF salt + email, 20000 rounds, 32 bytes)."""
    return hashlib.pbkdf2_hmac(
        "sha256", password.encode(), FIRST_PBKDF_SALT + email.encode(), PBKDF2_ROUNDS, PBKDF2_BYTES
    )


def second_pbkdf(email: str, password: str, k2: bytes) -> bytes:
    """stretchedPW = PBKDF2-HMAC-SHA256(k2 + password, second-PBKDF salt + email, 20000, 32)."""
    return hashlib.pbkdf2_hmac(
        "sha256", k2 + password.encode(), SECOND_PBKDF_SALT + email.encode(), PBKDF2_ROUNDS, PBKDF2_BYTES
    )


def stretch(
    email: str, password: str, url: str | Sequence[str] | None = None, *, allow_insecure_http: bool = False
) -> bytes:
    """The onepw stretchedPW: PBKDF2, scrypt (on the helper at ``url``, else locally), PBKDF2."""
    with Client(url, allow_insecure_http=allow_insecure_http) as client:
        return second_pbkdf(email, password, client.hash(first_pbkdf(email, password)))


async def async_stretch(
    email: str, password: str, url: str | Sequence[str] | None = None, *, allow_insecure_http: bool = False
) -> bytes:
    """``stretch`` for asyncio; the PBKDF2 steps run in a thread."""
    async with AsyncClient(url, allow_insecure_http=allow_insecure_http) as client:
        k1 = await asyncio.to_thread(first_pbkdf, email, password)
        k2 = await client.hash(k1)
    return await asyncio.to_thread(second_pbkdf, email, password, k2)
