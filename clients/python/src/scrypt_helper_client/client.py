"""``Client`` and ``AsyncClient``: one hash from the helper, retried politely, else computed here.

``url`` is one base URL, several (one per region, tried in that order while they answer), or None.
A helper that stays unreachable or refusing (or ``url=None``) means local computation
(``local_hash``, OpenSSL by default), or ``HelperUnavailable`` with ``fallback=False``. A plain
``http://`` URL is refused unless it names this machine's loopback or ``allow_insecure_http=True``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Self

import httpx

from scrypt_helper_client.errors import HelperUnavailable
from scrypt_helper_client.failover import DEFAULT_COOLDOWN, UrlHealth, base_urls
from scrypt_helper_client.local import LocalHash, local_hash
from scrypt_helper_client.params import PICL_PARAMS, ScryptParameters, request_body
from scrypt_helper_client.retries import MIN_ATTEMPT_SECONDS, Attempts, Options
from scrypt_helper_client.urls import check_url
from scrypt_helper_client.version import __version__

logger = logging.getLogger("scrypt_helper_client")


_HEADERS = {"User-Agent": f"scrypt-helper-client/{__version__}"}


class _ClientBase:
    """What both clients share: options, base URLs and their health, and giving up on the helper.

    ``url`` is one base URL, several (one per region, tried in that order while they answer), or None.
    ``local`` computes a hash here when the helper cannot (the server package passes its own engine).
    """

    def __init__(
        self,
        url: str | Sequence[str] | None,
        *,
        params: ScryptParameters = PICL_PARAMS,
        connect_timeout: float = 2.0,
        read_timeout: float = 10.0,
        deadline: float = 30.0,
        max_attempts: int = 5,
        fallback: bool = True,
        allow_insecure_http: bool = False,
        cooldown: float = DEFAULT_COOLDOWN,
        local: LocalHash = local_hash,
    ) -> None:
        self._options = Options(params, connect_timeout, read_timeout, deadline, max_attempts, fallback)
        self.urls = base_urls(url)
        for one in self.urls:
            check_url(one, allow_insecure_http)
        self.url = self.urls[0] if self.urls else None
        self.health = UrlHealth(self.urls, cooldown)
        # One TLS context for every URL's pool: building one loads the whole CA bundle, tens of
        # milliseconds of CPU here and far more on the devices this client is for.
        self._tls: ssl.SSLContext | bool = httpx.create_ssl_context() if self.urls else True
        self._pools = {one: self._connect(one) for one in self.urls}
        self._local = local

    def _connect(self, url: str) -> httpx.Client | httpx.AsyncClient:
        """The HTTP connection pool for ``url``."""
        raise NotImplementedError

    @property
    def params(self) -> ScryptParameters:
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
        return httpx.Client(base_url=url, headers=_HEADERS, verify=self._tls)

    def hash(self, data: bytes) -> bytes:
        """scrypt of ``data`` with this client's parameters, from the helper or computed here."""
        data = bytes(data)
        if not self._pools:
            self._give_up(None)
            return self._local(self.params, data)
        body = request_body(self.params, data)
        attempts = Attempts(self._options, self.health)
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
                return self._local(self.params, data)
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
        return httpx.AsyncClient(base_url=url, headers=_HEADERS, verify=self._tls)

    async def hash(self, data: bytes) -> bytes:
        """scrypt of ``data`` with this client's parameters, from the helper or computed here."""
        data = bytes(data)
        if not self._pools:
            self._give_up(None)
            return await asyncio.to_thread(self._local, self.params, data)
        body = request_body(self.params, data)
        attempts = Attempts(self._options, self.health)
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
                return await asyncio.to_thread(self._local, self.params, data)
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
