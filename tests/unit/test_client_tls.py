"""A client builds one TLS context for all its base URLs: loading the CA bundle is tens of
milliseconds of CPU, far more on the devices the client is for."""

from __future__ import annotations

import asyncio
import ssl

import httpx
import pytest

from scrypt_helper_client import AsyncClient, Client

URLS = ["https://helper-a.example.com", "https://helper-b.example.com", "https://helper-c.example.com"]


@pytest.fixture
def contexts_built(monkeypatch: pytest.MonkeyPatch) -> list[ssl.SSLContext]:
    """Every TLS context httpx builds or is handed from here on, each once (its clients' and
    transports' included)."""
    built: list[ssl.SSLContext] = []
    create = httpx.create_ssl_context

    def counting(*args: object, **kwargs: object) -> ssl.SSLContext:
        context = create(*args, **kwargs)  # type: ignore[arg-type]
        if all(context is not seen for seen in built):
            built.append(context)
        return context

    monkeypatch.setattr(httpx, "create_ssl_context", counting)
    monkeypatch.setattr(httpx._transports.default, "create_ssl_context", counting)
    return built


def test_a_client_of_three_urls_builds_one_context(contexts_built):
    with Client(URLS):
        pass
    assert len(contexts_built) == 1


def test_an_async_client_of_three_urls_builds_one_context(contexts_built):
    async def main() -> None:
        async with AsyncClient(URLS):
            pass

    asyncio.run(main())
    assert len(contexts_built) == 1
