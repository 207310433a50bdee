"""scrypt implementations behind one interface (see ``base``)."""

from scrypt_helper.engines.base import (
    Engine,
    EngineUnavailable,
    HashContext,
    ScryptParams,
    SelfTestFailed,
)
from scrypt_helper.engines.registry import ENGINE_NAMES, create_engine, select_engine, self_test

__all__ = [
    "ENGINE_NAMES",
    "Engine",
    "EngineUnavailable",
    "HashContext",
    "ScryptParams",
    "SelfTestFailed",
    "create_engine",
    "select_engine",
    "self_test",
]
