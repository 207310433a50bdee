"""``GET /metrics``: the node's metrics in Prometheus' text format (on the service or a private port)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from scrypt_helper.http.dependencies import NodeDep

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(node: NodeDep) -> Response:
    """Prometheus text exposition of this node's metrics."""
    body, content_type = node.metrics.render()
    return Response(body, media_type=content_type)
