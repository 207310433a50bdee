"""The engine interface: what every scrypt implementation offers the scheduler."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

# Defined once in param_limits.py (the C build reads that file too); still importable from here.
from scrypt_helper.engines.param_limits import MAX_BUFLEN, MAX_LOG2_N, MAX_P, MAX_R


@dataclass(frozen=True, slots=True)
class ScryptParams:
    """One scrypt parameter set: everything but the password."""

    salt: bytes
    n: int
    r: int
    p: int
    buflen: int

    def __post_init__(self) -> None:
        if self.n < 2 or self.n & (self.n - 1) or self.n > 1 << MAX_LOG2_N:
            raise ValueError(f"N must be a power of two from 2 to 2^{MAX_LOG2_N}")
        if not 1 <= self.r <= MAX_R:
            raise ValueError(f"r must be 1..{MAX_R}")
        if not 1 <= self.p <= MAX_P:
            raise ValueError(f"p must be 1..{MAX_P}")
        if not 1 <= self.buflen <= MAX_BUFLEN:
            raise ValueError(f"buflen must be 1..{MAX_BUFLEN}")

    @property
    def romix_bytes(self) -> int:
        """Size of the big ROMix buffer one hash needs (128·r·N bytes)."""
        return 128 * self.r * self.n


class HashContext(abc.ABC):
    """Compute state owned by one worker thread; never shared between threads.

    A context may keep large buffers between batches (they are reused, not
    reallocated); ``wipe`` zeroes them and ``close`` wipes and frees them.
    """

    #: Most inputs one ``hash_batch`` call takes.
    lanes: int = 1

    @abc.abstractmethod
    def hash_batch(self, params: ScryptParams, inputs: Sequence[bytes]) -> list[bytes]:
        """Return scrypt(input, params) for each input, in order.

        ``len(inputs)`` is 1..``lanes``. Runs with the GIL released, so
        several worker threads compute in parallel.
        """

    def reserve(self, params: ScryptParams) -> None:
        """Allocate now what a full batch of ``params`` needs, so that no request waits for it."""

    def wipe(self) -> None:
        """Zero any buffer that held hash state (called when the worker idles)."""

    def close(self) -> None:
        """Wipe and release everything this context holds."""
        self.wipe()


class SingleHashContext(HashContext):
    """A context for libraries that compute one hash per call: a batch is a loop."""

    lanes = 1

    @abc.abstractmethod
    def hash_one(self, params: ScryptParams, data: bytes) -> bytes:
        """scrypt of one input (releasing the GIL)."""

    def hash_batch(self, params: ScryptParams, inputs: Sequence[bytes]) -> list[bytes]:
        return [self.hash_one(params, data) for data in inputs]


class Engine(abc.ABC):
    """A scrypt implementation; ``open_context`` gives each worker its own state."""

    #: Name used by ``--engine`` and in metrics.
    name: str
    #: Hashes one context computes together in one batch.
    lanes: int = 1
    #: Whether ``wipe`` and ``close`` zero every buffer that held hash state. An engine whose
    #: library allocates and frees its working memory inside each call cannot reach it to wipe it.
    wipes_state: bool = False
    #: Whether contexts opened now lock their buffers in RAM (see ``lock_buffers``).
    locks_memory: bool = False
    #: Seconds each full batch of the self-test took, by (N, r, p), its buffers reserved first
    #: (empty until the self-test runs): the node's start-up estimate of a batch, where it needs one
    #: of these, without timing another.
    tested_batch_seconds: Mapping[tuple[int, int, int], float] = MappingProxyType({})

    @abc.abstractmethod
    def open_context(self) -> HashContext:
        """Create per-worker compute state."""

    def lock_buffers(self, params: Sequence[ScryptParams]) -> int:
        """Lock the buffers of every context opened from now on in RAM, so they never reach swap.

        Returns the most bytes one context then locks for any of ``params``. Raises
        EngineUnavailable for an engine whose buffers are out of its reach.
        """
        raise EngineUnavailable(
            f"the {self.name} engine cannot lock its buffers in memory (its library allocates them "
            "inside each call); --lock-memory needs a native engine"
        )

    def hash(self, params: ScryptParams, data: bytes) -> bytes:
        """Compute one hash on a throwaway context (CLI and tests)."""
        ctx = self.open_context()
        try:
            return ctx.hash_batch(params, [data])[0]
        finally:
            ctx.close()


class EngineUnavailable(RuntimeError):
    """The engine cannot run here (library missing, CPU feature missing)."""


class SelfTestFailed(RuntimeError):
    """An engine gave a wrong answer to a known-answer test."""
