"""Published scrypt answers: RFC 7914 section 12 and the Firefox Accounts vectors."""

from __future__ import annotations

from dataclasses import dataclass

from scrypt_helper.engines.base import ScryptParams

PICL_SALT = b"identity.mozilla.com/picl/v1/scrypt"
PICL_PARAMS = ScryptParams(salt=PICL_SALT, n=65536, r=8, p=1, buflen=32)


@dataclass(frozen=True, slots=True)
class KnownAnswer:
    """One input, its parameters and the published output."""

    password: bytes
    params: ScryptParams
    output: bytes


def _hex(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


RFC7914 = (
    KnownAnswer(
        b"",
        ScryptParams(salt=b"", n=16, r=1, p=1, buflen=64),
        _hex(
            "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442"
            "fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906"
        ),
    ),
    KnownAnswer(
        b"password",
        ScryptParams(salt=b"NaCl", n=1024, r=8, p=16, buflen=64),
        _hex(
            "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
            "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"
        ),
    ),
    KnownAnswer(
        b"pleaseletmein",
        ScryptParams(salt=b"SodiumChloride", n=16384, r=8, p=1, buflen=64),
        _hex(
            "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2"
            "d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887"
        ),
    ),
)

PICL = (
    KnownAnswer(
        _hex("f84913e3d8e6d624689d0a3e9678ac8dcc79d2c2f3d9641488cd9d6ef6cd83dd"),
        PICL_PARAMS,
        _hex("5b82f146a64126923e4167a0350bb181feba61f63cb1714012b19cb0be0119c5"),
    ),
    KnownAnswer(
        _hex("ABCDEF0123"),
        PICL_PARAMS,
        _hex("8158f3aae9044369c4c6ba5eda6f679cca8adc1186eb29637a75c9e4b4b940f1"),
    ),
)
