"""Every member of uvicorn's HTTP protocol that ``http.protocol`` relies on, with its call
shape. A newer uvicorn that renames, drops or reshapes one fails here, naming it, before the
protocol misbehaves on the wire."""

from __future__ import annotations

import asyncio
import inspect
from collections import deque

import httptools
import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from tests.unit.test_whole_responses import RecordingTransport, app

# Methods the protocol overrides and calls through ``super()``, or calls as they are.
METHODS = {
    "__init__": ["self", "config", "server_state", "app_state", "_loop"],
    "connection_made": ["self", "transport"],
    "connection_lost": ["self", "exc"],
    "on_message_begin": ["self"],
    "on_header": ["self", "name", "value"],
    "on_headers_complete": ["self"],
    "on_body": ["self", "body"],
    "on_message_complete": ["self"],
    "on_response_complete": ["self"],
    "_unset_keepalive_if_required": ["self"],
}
# Attributes of a connection, read or set, with their types once a request's head is parsed.
ATTRIBUTES = {
    "parser": httptools.HttpRequestParser,
    "transport": object,
    "loop": asyncio.AbstractEventLoop,
    "client": tuple,
    "cycle": RequestResponseCycle,
    "pipeline": deque,
    "url": bytes,
    "headers": list,
    "scope": dict,
    "expect_100_continue": bool,
    "timeout_keep_alive_task": (asyncio.TimerHandle, type(None)),
}
# Attributes of a request's cycle the protocol reads or sets.
CYCLE_ATTRIBUTES = {"response_complete": bool, "keep_alive": bool}
# The parser's methods the protocol calls.
PARSER_METHODS = ("feed_data", "get_method", "get_http_version", "should_keep_alive", "should_upgrade")


@pytest.mark.parametrize("name", list(METHODS))
def test_each_method_keeps_its_call_shape(name):
    member = getattr(HttpToolsProtocol, name, None)
    assert member is not None, f"uvicorn's HttpToolsProtocol has no {name} any more"
    assert list(inspect.signature(member).parameters) == METHODS[name], f"{name} changed its parameters"


# uvicorn.Server members that server.DrainingServer overrides or calls (the metrics port's ``_serve``).
SERVER_METHODS = {
    "_serve": ["self", "sockets"],
    "on_tick": ["self", "counter"],
    "capture_signals": ["self"],
    "handle_exit": ["self", "sig", "frame"],
}


@pytest.mark.parametrize("name", list(SERVER_METHODS))
def test_each_server_method_keeps_its_call_shape(name):
    member = getattr(uvicorn.Server, name, None)
    assert member is not None, f"uvicorn.Server has no {name} any more"
    assert list(inspect.signature(member).parameters) == SERVER_METHODS[name], f"Server.{name} changed"


def test_the_server_builds_each_protocol_with_these_keywords():
    source = inspect.getsource(uvicorn.Server.startup)
    for keyword in ("config=config", "server_state=self.server_state", "app_state=", "_loop=_loop"):
        assert keyword in source, f"uvicorn.Server.startup no longer passes {keyword} to the protocol"


async def connection_with_a_request() -> HttpToolsProtocol:
    config = uvicorn.Config(app, log_config=None, access_log=False)
    config.load()
    protocol = HttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
    protocol.connection_made(RecordingTransport())
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: node\r\n\r\n")
    return protocol


@pytest.mark.parametrize("name", list(ATTRIBUTES))
async def test_each_attribute_is_there_with_its_type(name):
    protocol = await connection_with_a_request()
    assert hasattr(protocol, name), f"uvicorn's HttpToolsProtocol has no attribute {name} any more"
    assert isinstance(getattr(protocol, name), ATTRIBUTES[name]), f"{name} is no longer {ATTRIBUTES[name]}"
    protocol.connection_lost(None)


@pytest.mark.parametrize("name", list(CYCLE_ATTRIBUTES))
async def test_each_cycle_attribute_is_there(name):
    protocol = await connection_with_a_request()
    assert isinstance(getattr(protocol.cycle, name, None), CYCLE_ATTRIBUTES[name]), f"cycle.{name} changed"
    protocol.connection_lost(None)


@pytest.mark.parametrize("name", PARSER_METHODS)
def test_each_parser_method_is_there(name):
    assert callable(getattr(httptools.HttpRequestParser, name, None)), f"httptools' parser has no {name}"


def test_the_parsers_errors_are_still_these():
    assert issubclass(httptools.HttpParserUpgrade, Exception)
    assert issubclass(httptools.HttpParserError, Exception)
