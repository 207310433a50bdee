"""The libsodium and hashlib engines against independent answers, and engine selection."""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Sequence

import nacl.bindings
import pytest

from scrypt_helper.engines import (
    Engine,
    EngineUnavailable,
    HashContext,
    ScryptParams,
    SelfTestFailed,
    create_engine,
    select_engine,
    self_test,
)
from scrypt_helper.engines.registry import ENGINE_NAMES
from scrypt_helper.engines.vectors import PICL, RFC7914

PURE_ENGINES = ("libsodium", "hashlib")
SMALL_SETS = (
    ScryptParams(salt=b"", n=16, r=1, p=1, buflen=64),
    ScryptParams(salt=b"salt", n=1024, r=8, p=1, buflen=32),
    ScryptParams(salt=os.urandom(16), n=256, r=3, p=2, buflen=1),
    ScryptParams(salt="sälz".encode(), n=2, r=1, p=1, buflen=1024),
)


@pytest.mark.parametrize("name", PURE_ENGINES)
@pytest.mark.parametrize("vector", RFC7914, ids=lambda v: f"N{v.params.n}")
def test_rfc7914_vectors(name, vector):
    assert create_engine(name).hash(vector.params, vector.password) == vector.output


@pytest.mark.parametrize("name", PURE_ENGINES)
@pytest.mark.parametrize("vector", PICL, ids=["known-1", "known-2"])
def test_production_known_answers(name, vector):
    assert create_engine(name).hash(vector.params, vector.password) == vector.output


@pytest.mark.parametrize("params", SMALL_SETS, ids=lambda p: f"N{p.n}-r{p.r}-p{p.p}-len{p.buflen}")
def test_libsodium_matches_hashlib_on_random_inputs(params):
    ctx = create_engine("libsodium").open_context()
    for _ in range(5):
        data = os.urandom(random.randint(1, 256))
        reference = hashlib.scrypt(
            data, salt=params.salt, n=params.n, r=params.r, p=params.p, dklen=params.buflen
        )
        assert ctx.hash_batch(params, [data]) == [reference]


@pytest.mark.parametrize("params", SMALL_SETS, ids=lambda p: f"N{p.n}-r{p.r}-p{p.p}-len{p.buflen}")
def test_hashlib_engine_matches_libsodium_on_random_inputs(params):
    ctx = create_engine("hashlib").open_context()
    for _ in range(5):
        data = os.urandom(random.randint(1, 256))
        reference = nacl.bindings.crypto_pwhash_scryptsalsa208sha256_ll(
            data, params.salt, params.n, params.r, params.p, dklen=params.buflen, maxmem=1 << 30
        )
        assert ctx.hash_batch(params, [data]) == [reference]


def test_unknown_engine_name_is_a_value_error():
    with pytest.raises(ValueError, match="unknown engine 'turbo'"):
        create_engine("turbo")


def test_auto_picks_the_first_engine_that_passes(monkeypatch):
    engine = select_engine("auto")
    assert engine.name in ENGINE_NAMES
    # Without a native build, auto falls back to libsodium, never to something untested.
    try:
        create_engine("native")
    except EngineUnavailable:
        assert engine.name == "libsodium"
    else:
        assert engine.name == "native"


class WrongEngine(Engine):
    """An engine whose last lane is wrong: the self-test must notice."""

    name = "wrong"
    lanes = 3

    def open_context(self) -> HashContext:
        class Context(HashContext):
            lanes = 3

            def hash_batch(self, params: ScryptParams, inputs: Sequence[bytes]) -> list[bytes]:
                right = create_engine("hashlib").open_context()
                outputs = [right.hash_batch(params, [data])[0] for data in inputs]
                return [*outputs[:-1], bytes(params.buflen)]

        return Context()


def test_self_test_checks_every_lane():
    with pytest.raises(SelfTestFailed, match="lane 2"):
        self_test(WrongEngine())


def test_the_self_test_times_each_full_batch_and_a_node_takes_its_estimate_from_it(monkeypatch):
    from scrypt_helper.core import node as node_module

    engine = create_engine("hashlib")
    assert engine.tested_batch_seconds == {}
    self_test(engine)
    assert set(engine.tested_batch_seconds) == {(16, 1, 1), (16384, 8, 1), (65536, 8, 1)}
    assert all(seconds > 0 for seconds in engine.tested_batch_seconds.values())
    timed = []
    monkeypatch.setattr(node_module, "time_batch", lambda engine, params: timed.append(params) or 1.5)
    picl = PICL[0].params
    # The production set (another salt costs the same) comes from the self-test; another is timed.
    assert (
        node_module.batch_seconds(engine, ScryptParams(b"x", picl.n, picl.r, picl.p, 32))
        == (engine.tested_batch_seconds[picl.n, picl.r, picl.p])
    )
    assert timed == []
    assert node_module.batch_seconds(engine, SMALL_SETS[1]) == 1.5
    assert timed == [SMALL_SETS[1]]
