"""scrypt parameters as the client sends them, and the body of ``POST /``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class ScryptParameters(Protocol):
    """Any parameter set: ``Params``, or an object with the same attributes (the server's own)."""

    @property
    def salt(self) -> bytes: ...
    @property
    def n(self) -> int: ...
    @property
    def r(self) -> int: ...
    @property
    def p(self) -> int: ...
    @property
    def buflen(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Params:
    """One scrypt parameter set: everything but the input. The helper decides which it serves."""

    salt: bytes
    n: int
    r: int
    p: int
    buflen: int

    def __post_init__(self) -> None:
        if self.n < 2 or self.n & (self.n - 1):
            raise ValueError("N must be a power of two, at least 2")
        if min(self.r, self.p, self.buflen) < 1:
            raise ValueError("r, p and buflen must be positive")


#: Firefox Accounts' PiCL set: what a helper serves unless it is configured otherwise.
PICL_PARAMS = Params(salt=b"identity.mozilla.com/picl/v1/scrypt", n=65536, r=8, p=1, buflen=32)


def wire_params(params: ScryptParameters) -> dict[str, object]:
    """A parameter set under its wire names: ``salt``, ``N``, ``r``, ``p``, ``buflen``."""
    return {
        "salt": params.salt.decode(),
        "N": params.n,
        "r": params.r,
        "p": params.p,
        "buflen": params.buflen,
    }


def request_body(params: ScryptParameters, data: bytes) -> dict[str, object]:
    """The JSON object to post to ask for scrypt(data, params)."""
    return {"input": data.hex(), **wire_params(params)}
