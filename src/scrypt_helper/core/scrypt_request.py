"""The format of ``POST /``'s body: parsed into a hash job (``Job``), and its JSON Schema. Clients, the
benchmarks and the settings write bodies and parameter sets with ``scrypt_helper_client``.

The format is the 2013 service's: a JSON object with ``input`` (hex), ``salt`` (string),
and ``N``, ``r``, ``p``, ``buflen`` (JSON integers, or digit strings as the original
accepted). The parameters must equal one of the allowed sets. Parsing is pure: bytes in,
a ``Job`` or an ``errors.ApiError`` (a 400) out.

Decoding is msgspec's strict decoder, in time linear in the body's length: UTF-8 only, no
NaN or Infinity, nothing after the document. The six keys are typed one by one, so that a
fault names its key; every other key is checked as JSON and skipped, never stored. Nesting
is bounded by the decoder at the interpreter's recursion limit; a deeper body is refused
with 106, never a ``RecursionError``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from scrypt_helper.core import errors
from scrypt_helper.engines.base import ScryptParams

MIN_INPUT_BYTES = 1
MAX_INPUT_BYTES = 256
PARAM_KEYS = ("salt", "N", "r", "p", "buflen")
_HEX = re.compile(r"[0-9a-fA-F]*")
_DIGITS = re.compile(r"[0-9]{1,10}")
# Ten digits, or ten digits in quotes. A longer integer cannot be an allowed parameter, and
# converting a long digit run to an int takes time quadratic in its length: refuse it first.
_MAX_INTEGER_TEXT = 12
_ParamTuple = tuple[bytes, int, int, int, int]
_ABSENT = msgspec.Raw()  # a present value's JSON text is never empty


class _Fields(msgspec.Struct):
    """The keys the service reads, each as its JSON text; the decoder skips all others."""

    input: msgspec.Raw = _ABSENT
    salt: msgspec.Raw = _ABSENT
    N: msgspec.Raw = _ABSENT
    r: msgspec.Raw = _ABSENT
    p: msgspec.Raw = _ABSENT
    buflen: msgspec.Raw = _ABSENT


_FIELDS = msgspec.json.Decoder(_Fields)
_STRING = msgspec.json.Decoder(str | None)
_INTEGER = msgspec.json.Decoder(int | str | None)


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


def parse_request(body: bytes, allowed: Sequence[ScryptParams]) -> Job:
    """Validate a raw body; raise ``errors.ApiError`` (a 400) on any fault."""
    fields = _decode(body)
    data = _parse_input(fields.input)
    salt = _parse_salt(fields.salt)
    n = _parse_integer(fields.N, "N")
    r = _parse_integer(fields.r, "r")
    p = _parse_integer(fields.p, "p")
    buflen = _parse_integer(fields.buflen, "buflen")
    return Job(params=_match_allowed((salt, n, r, p, buflen), allowed), data=data)


def _decode(body: bytes) -> _Fields:
    try:
        # JSON between systems is UTF-8 (RFC 8259, section 8.1). json.loads would also guess
        # UTF-16 and UTF-32; here those, and stray bytes in strings the decoder skips, are refused.
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.invalid_json("Request body must be UTF-8") from None
    try:
        return _FIELDS.decode(body)
    except msgspec.ValidationError:  # well-formed so far, but not an object
        raise errors.invalid_json("Request body must be a JSON object") from None
    except msgspec.DecodeError:
        raise errors.invalid_json() from None
    except RecursionError:  # msgspec's nesting bound: the interpreter's recursion limit
        raise errors.invalid_json("JSON nested too deeply") from None


def _value(raw: msgspec.Raw, key: str, decoder: msgspec.json.Decoder[Any]) -> Any:
    """The value of ``key`` as ``decoder`` types it: missing or null is 108, another type 107."""
    if not len(raw):
        raise errors.missing_parameter(key)
    try:
        value = decoder.decode(raw)
    except msgspec.DecodeError:
        raise errors.invalid_parameter(key) from None
    if value is None:
        raise errors.missing_parameter(key)
    return value


def _parse_input(raw: msgspec.Raw) -> bytes:
    value: str = _value(raw, "input", _STRING)
    if not MIN_INPUT_BYTES * 2 <= len(value) <= MAX_INPUT_BYTES * 2:
        raise errors.invalid_parameter("input")
    if len(value) % 2 or not _HEX.fullmatch(value):
        raise errors.invalid_parameter("input")
    return bytes.fromhex(value)


def _parse_salt(raw: msgspec.Raw) -> bytes:
    value: str = _value(raw, "salt", _STRING)
    return value.encode("utf-8")  # never fails: the decoder refuses lone surrogates


def _parse_integer(raw: msgspec.Raw, key: str) -> int:
    if len(raw) > _MAX_INTEGER_TEXT:
        raise errors.invalid_parameter(key)
    value: int | str = _value(raw, key, _INTEGER)
    if isinstance(value, int):
        return value
    if _DIGITS.fullmatch(value):
        return int(value)
    raise errors.invalid_parameter(key)


def _match_allowed(requested: _ParamTuple, allowed: Sequence[ScryptParams]) -> ScryptParams:
    """Return the allowed set equal to ``requested``, or name the first key that rules it out."""
    for params in allowed:
        if _as_tuple(params) == requested:
            return params
    candidates = list(allowed)
    for index, key in enumerate(PARAM_KEYS):
        candidates = [c for c in candidates if _as_tuple(c)[index] == requested[index]]
        if not candidates:
            raise errors.invalid_parameter(key)
    return candidates[0]


def _as_tuple(params: ScryptParams) -> _ParamTuple:
    return (params.salt, params.n, params.r, params.p, params.buflen)
