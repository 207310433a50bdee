"""The wire format of ``POST /``: a body parsed into a hash job, a job written as a body, its schema.

The format is the 2013 service's: a JSON object with ``input`` (hex), ``salt`` (string),
and ``N``, ``r``, ``p``, ``buflen`` (JSON integers, or digit strings as the original
accepted). The parameters must equal one of the allowed sets. Parsing is pure: bytes in,
a ``Job`` or an ``errors.ApiError`` (a 400) out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scrypt_helper import errors
from scrypt_helper.engines.base import ScryptParams

MIN_INPUT_BYTES = 1
MAX_INPUT_BYTES = 256
PARAM_KEYS = ("salt", "N", "r", "p", "buflen")
_HEX = re.compile(r"[0-9a-fA-F]*")
_DIGITS = re.compile(r"[0-9]{1,10}")
_ParamTuple = tuple[bytes, int, int, int, int]
MAX_JSON_DEPTH = 16
MAX_KEYS = 64
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_JSON_BRACKETS = re.compile(rb"[\[\]{}]")


@dataclass(frozen=True, slots=True, repr=False)
class Job:
    """A validated request: the input bytes and an allowed parameter set."""

    params: ScryptParams
    data: bytes

    def __repr__(self) -> str:  # never show the input, even in a traceback
        return f"Job(params={self.params!r}, data=<{len(self.data)} bytes>)"


def request_json_schema() -> dict[str, Any]:
    """The OpenAPI (JSON Schema) description of a request body, built from the limits above."""
    hex_digits = f"^([0-9a-fA-F]{{2}}){{{MIN_INPUT_BYTES},{MAX_INPUT_BYTES}}}$"
    return {
        "type": "object",
        "required": ["input", *PARAM_KEYS],
        "properties": {
            "input": {"type": "string", "pattern": hex_digits, "description": "The input, in hex."},
            "salt": {"type": "string", "description": "The salt; its UTF-8 bytes are used."},
            **{key: {"type": "integer"} for key in PARAM_KEYS[1:]},
        },
    }


def wire_params(params: ScryptParams) -> dict[str, object]:
    """A parameter set under its wire names: ``salt``, ``N``, ``r``, ``p``, ``buflen``."""
    return {
        "salt": params.salt.decode(),
        "N": params.n,
        "r": params.r,
        "p": params.p,
        "buflen": params.buflen,
    }


def request_body(params: ScryptParams, data: bytes) -> dict[str, object]:
    """The JSON object a client posts to ask for scrypt(data, params): the inverse of parse_request."""
    return {"input": data.hex(), **wire_params(params)}


def parse_request(body: bytes, allowed: Sequence[ScryptParams]) -> Job:
    """Validate a raw body; raise ``errors.ApiError`` (a 400) on any fault."""
    document = _load_json(body)
    if not isinstance(document, dict):
        raise errors.invalid_json("Request body must be a JSON object")
    if len(document) > MAX_KEYS:
        raise errors.invalid_json(f"Request body has more than {MAX_KEYS} keys")
    data = _parse_input(document)
    salt = _parse_salt(document)
    n, r, p, buflen = (_parse_integer(document, key) for key in ("N", "r", "p", "buflen"))
    return Job(params=_match_allowed((salt, n, r, p, buflen), allowed), data=data)


def json_depth(body: bytes) -> int:
    """Deepest nesting of arrays and objects in ``body``, ignoring brackets inside strings."""
    depth = deepest = 0
    for bracket in _JSON_BRACKETS.findall(_JSON_STRING.sub(b"", body)):
        depth += 1 if bracket in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _load_json(body: bytes) -> object:
    if json_depth(body) > MAX_JSON_DEPTH:
        raise errors.invalid_json("JSON nested too deeply")
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise errors.invalid_json() from None


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _require(document: dict[str, object], key: str) -> object:
    if key not in document or document[key] is None:
        raise errors.missing_parameter(key)
    return document[key]


def _parse_input(document: dict[str, object]) -> bytes:
    value = _require(document, "input")
    if not isinstance(value, str) or len(value) % 2 or not _HEX.fullmatch(value):
        raise errors.invalid_parameter("input")
    if not MIN_INPUT_BYTES * 2 <= len(value) <= MAX_INPUT_BYTES * 2:
        raise errors.invalid_parameter("input")
    return bytes.fromhex(value)


def _parse_salt(document: dict[str, object]) -> bytes:
    value = _require(document, "salt")
    if not isinstance(value, str):
        raise errors.invalid_parameter("salt")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escaped in the JSON
        raise errors.invalid_parameter("salt") from None


def _parse_integer(document: dict[str, object], key: str) -> int:
    value = _require(document, key)
    if isinstance(value, bool):
        raise errors.invalid_parameter(key)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    raise errors.invalid_parameter(key)


def _match_allowed(requested: _ParamTuple, allowed: Sequence[ScryptParams]) -> ScryptParams:
    """Return the allowed set equal to ``requested``, or name the first key that rules it out."""
    candidates = list(allowed)
    for index, key in enumerate(PARAM_KEYS):
        candidates = [c for c in candidates if _as_tuple(c)[index] == requested[index]]
        if not candidates:
            raise errors.invalid_parameter(key)
    return candidates[0]


def _as_tuple(params: ScryptParams) -> _ParamTuple:
    return (params.salt, params.n, params.r, params.p, params.buflen)
