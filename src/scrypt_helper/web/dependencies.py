"""What the routes share, as typed FastAPI dependencies (tests override ``get_node``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from scrypt_helper import errors
from scrypt_helper.abuse import ClientIdentity
from scrypt_helper.abuse.identity import API_KEY_HEADER
from scrypt_helper.node import Node


async def get_node(request: Request) -> Node:
    """The node this app serves (put on ``app.state`` by ``create_app``)."""
    node: Node = request.app.state.node
    return node


NodeDep = Annotated[Node, Depends(get_node)]


async def identify(request: Request, node: NodeDep) -> ClientIdentity:
    """The client behind this request; an unknown API key is refused with 401."""
    settings = node.settings
    peer = request.client.host if request.client else None
    ip = settings.trusted_proxies.client_ip(peer, request.headers.get("x-forwarded-for"))
    presented = request.headers.get(API_KEY_HEADER)
    if presented is None:
        return ClientIdentity(ip)
    name = settings.api_keys.name_of(presented)
    if name is None:
        raise errors.invalid_api_key()
    return ClientIdentity(ip, api_key=name)


async def admitted_client(
    node: NodeDep, client: Annotated[ClientIdentity, Depends(identify)]
) -> ClientIdentity:
    """The client, once the deny list, bans and ``request`` rules let it in (else 403 or 429)."""
    await node.guard.admit_request(client)
    return client


AdmittedClient = Annotated[ClientIdentity, Depends(admitted_client)]
