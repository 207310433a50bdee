"""What the routes share, as typed FastAPI dependencies (tests override ``get_node``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from scrypt_helper.abuse import ClientIdentity
from scrypt_helper.abuse.identity import API_KEY_HEADER
from scrypt_helper.node import Node


async def get_node(request: Request) -> Node:
    """The node this app serves (put on ``app.state`` by ``create_app``)."""
    node: Node = request.app.state.node
    return node


NodeDep = Annotated[Node, Depends(get_node)]


async def identify(request: Request, node: NodeDep) -> ClientIdentity:
    """The client behind this request; an unknown API key is marked, to be counted and refused (401)."""
    settings = node.settings
    peer = request.client.host if request.client else None
    # Every line of the header, in order: a proxy may add its own line after the client's.
    ip = settings.trusted_proxies.client_ip(peer, request.headers.getlist("x-forwarded-for"))
    prefixes = settings.prefix_lengths
    presented = request.headers.get(API_KEY_HEADER)
    if presented is None:
        return ClientIdentity(ip, prefix_lengths=prefixes)
    name = settings.api_keys.name_of(presented)
    return ClientIdentity(ip, api_key=name, prefix_lengths=prefixes, unknown_key=name is None)


async def admitted_client(
    node: NodeDep, client: Annotated[ClientIdentity, Depends(identify)]
) -> ClientIdentity:
    """The client, once the deny list, bans and ``request`` and ``bad_key`` rules let it in.

    Else 403 or 429; an unknown API key is 401 once it has been counted against the address.
    """
    await node.guard.admit_request(client)
    return client


AdmittedClient = Annotated[ClientIdentity, Depends(admitted_client)]
