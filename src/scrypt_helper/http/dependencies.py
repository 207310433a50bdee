"""What the routers share, as typed FastAPI dependencies (tests override ``get_node``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from scrypt_helper.core.node import Node


async def get_node(request: Request) -> Node:
    """The node this app serves (put on ``app.state`` by ``create_app``)."""
    node: Node = request.app.state.node
    return node


NodeDep = Annotated[Node, Depends(get_node)]
