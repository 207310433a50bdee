"""The OpenAPI description of ``/``, which is served outside the routers FastAPI describes."""

from __future__ import annotations

from typing import Any

from scrypt_helper.core import errors, scrypt_request


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _documented_errors() -> dict[str, Any]:
    return {
        str(status): {"description": description, "content": _json(errors.ERROR_JSON_SCHEMA)}
        for status, description in (
            (400, "Invalid request"),
            (401, "Unknown API key"),
            (403, "Client on the deny list, or a browser's origin not allowed"),
            (413, "Body too large"),
            (415, "A browser's request (it sends Origin) without a JSON body"),
            (429, "Rate limited"),
            (503, "Overloaded or draining"),
        )
    }


OUTPUT_SCHEMA = {"type": "object", "required": ["output"], "properties": {"output": {"type": "string"}}}


def describe(document: dict[str, Any]) -> dict[str, Any]:
    """Add ``/`` to an OpenAPI ``document`` of the routers, and return it."""
    document.setdefault("paths", {})["/"] = {
        "get": {
            "tags": ["scrypt"],
            "summary": "Health check of the 2013 service",
            "description": '"OK" to any client the guard admits.',
            "operationId": "root__get",
            "responses": {
                "200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}
            },
        },
        "post": {
            "tags": ["scrypt"],
            "summary": "Compute scrypt",
            "description": "Computes scrypt with one of the node's allowed parameter sets.",
            "operationId": "compute__post",
            "requestBody": {"required": True, "content": _json(scrypt_request.request_json_schema())},
            "responses": {
                "200": {"description": "The scrypt output", "content": _json(OUTPUT_SCHEMA)},
                **_documented_errors(),
            },
        },
    }
    return document
