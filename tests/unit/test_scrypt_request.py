"""Every rule of the request body, in its accepted and rejected forms."""

from __future__ import annotations

import functools
import json
import sys

import pytest

from scrypt_helper.core import errors
from scrypt_helper.core.scrypt_request import Job, parse_request
from scrypt_helper.engines import ScryptParams
from scrypt_helper.engines.vectors import PICL_PARAMS

OTHER = ScryptParams(salt=b"other", n=1024, r=8, p=1, buflen=64)
ALLOWED = (PICL_PARAMS, OTHER)


def body(**overrides: object) -> bytes:
    document: dict[str, object] = {
        "input": "f84913e3d8e6d624689d0a3e9678ac8dcc79d2c2f3d9641488cd9d6ef6cd83dd",
        "salt": "identity.mozilla.com/picl/v1/scrypt",
        "N": 65536,
        "r": 8,
        "p": 1,
        "buflen": 32,
    }
    for key, value in overrides.items():
        if value is ...:
            del document[key]
        else:
            document[key] = value
    return json.dumps(document).encode()


def rejected(raw: bytes) -> errors.ApiError:
    with pytest.raises(errors.ApiError) as caught:
        parse_request(raw, ALLOWED)
    assert caught.value.status == 400
    return caught.value


def test_valid_request_gives_job():
    job = parse_request(body(), ALLOWED)
    assert job == Job(PICL_PARAMS, bytes.fromhex(json.loads(body())["input"]))


@pytest.mark.parametrize("text", ["ab", "AB", "aB09", "ff" * 256, "0123456789abcdefABCDEF"])
def test_input_accepts_hex_of_any_case_up_to_256_bytes(text):
    assert parse_request(body(input=text), ALLOWED).data == bytes.fromhex(text)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "a",
        "abc",
        "zz",
        "ff" * 257,
        "ab cd",
        " abcd",
        "abcd\n",
        "0x12",
        "ab\u0663\u0663",
        1234,
        ["ab"],
        {"a": 1},
        True,
    ],
)
def test_input_rejects_non_hex_odd_empty_and_oversized(value):
    error = rejected(body(input=value))
    assert (error.errno, error.message) == (107, "Invalid parameter in request body: input")


@pytest.mark.parametrize("key", ["input", "salt", "N", "r", "p", "buflen"])
def test_each_key_is_required(key):
    error = rejected(body(**{key: ...}))
    assert (error.errno, error.message) == (108, f"Missing parameter in request body: {key}")


@pytest.mark.parametrize("key", ["input", "salt", "N", "r", "p", "buflen"])
def test_null_counts_as_missing(key):
    assert rejected(body(**{key: None})).errno == 108


@pytest.mark.parametrize("key", ["N", "r", "p", "buflen"])
def test_integers_accept_digit_strings(key):
    value = json.loads(body())[key]
    assert parse_request(body(**{key: str(value)}), ALLOWED).params == PICL_PARAMS


@pytest.mark.parametrize("key", ["N", "r", "p", "buflen"])
@pytest.mark.parametrize(
    "value", [1.5, 8.0, "8.0", "-8", " 8", "0x10", "\u0668", True, [8], {"v": 8}, "", "1" * 11]
)
def test_integers_reject_other_forms(key, value):
    error = rejected(body(**{key: value}))
    assert (error.errno, error.message) == (107, f"Invalid parameter in request body: {key}")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("N", 32768),
        ("N", 65537),
        ("r", 1),
        ("p", 2),
        ("buflen", 64),
        ("salt", "identity.mozilla.com/picl/v1/"),
    ],
)
def test_parameters_outside_the_allowed_sets_name_the_key(key, value):
    error = rejected(body(**{key: value}))
    assert error.message == f"Invalid parameter in request body: {key}"


def test_a_second_allowed_set_is_matched_whole():
    job = parse_request(body(salt="other", N=1024, buflen=64), ALLOWED)
    assert job.params == OTHER
    # Each value exists in some allowed set, but not together.
    assert rejected(body(salt="other", N=65536, buflen=64)).message.endswith(": N")


def test_salt_must_be_a_string_and_is_utf8():
    assert rejected(body(salt=42)).message.endswith(": salt")
    unicode_set = ScryptParams(salt="sälz".encode(), n=16, r=1, p=1, buflen=16)
    job = parse_request(body(salt="sälz", N=16, r=1, buflen=16), (unicode_set,))
    assert job.params.salt == "sälz".encode()
    # A lone surrogate has no UTF-8 form: the strict decoder refuses the body.
    lone = rejected(b'{"input": "ab", "salt": "\\ud800", "N": 1, "r": 1, "p": 1, "buflen": 1}')
    assert lone.errno == 106


def test_unknown_keys_are_ignored():
    assert parse_request(body(extra="x", nested={"a": [1]}), ALLOWED).params == PICL_PARAMS


@pytest.mark.parametrize(
    "raw", [b"", b"{", b"not json", b"\xff\xfe\x00", b'{"input": NaN}', b"[" * 5000, b'{"a": Infinity}']
)
def test_invalid_json_is_106(raw):
    assert rejected(raw).errno == 106


@pytest.mark.parametrize("raw", [b"[]", b'["input"]', b"42", b'"text"', b"null", b"true"])
def test_json_that_is_not_an_object_is_106(raw):
    error = rejected(raw)
    assert (error.errno, error.message) == (106, "Request body must be a JSON object")


def test_job_repr_never_shows_the_input():
    job = parse_request(body(), ALLOWED)
    assert "f84913e3" not in repr(job)
    assert "32 bytes" in repr(job)


def test_error_body_has_the_firefox_accounts_shape():
    error = errors.service_unavailable("busy", retry_after=1.2)
    assert error.body() == {
        "code": 503,
        "errno": 201,
        "error": "Service Unavailable",
        "message": "Service unavailable: busy",
    }
    assert error.headers() == {"Retry-After": "2"}
    assert errors.too_many_requests(0.1).headers() == {"Retry-After": "1"}


@pytest.mark.parametrize("depth", [100_000, 1_000_000])
@pytest.mark.parametrize("prefix", [b"", b'{"x": ', b'{"input": '])
def test_nesting_past_the_decoders_bound_is_106_never_a_recursion_error(depth, prefix):
    error = rejected(prefix + b"[" * depth + b"]" * depth + (b"}" if prefix else b""))
    assert error.errno == 106


@pytest.mark.parametrize("opener", [b"[", b'{"a": '])
def test_deep_nesting_is_refused_as_such(opener):
    error = rejected(b'{"x": ' + opener * 100_000)
    assert (error.errno, error.message) == (106, "JSON nested too deeply")


def test_moderate_nesting_in_an_unknown_key_is_ignored():
    raw = json.dumps({**json.loads(body()), "x": functools.reduce(lambda inner, _: [inner], range(100), [])})
    assert parse_request(raw.encode(), ALLOWED).params == PICL_PARAMS


REVIEW_UTF16 = '{"input": "\u0222"}'.encode("utf-16-le")


@pytest.mark.parametrize(
    "raw",
    [
        REVIEW_UTF16,
        body().decode().encode("utf-16-le"),
        body().decode().encode("utf-16"),  # with a byte-order mark
        body().decode().encode("utf-16-be"),
        body().decode().encode("utf-32"),
        body().decode().encode("utf-32-le"),
        body()[:-1] + b', "x": "\xff"}',  # a stray byte inside an unknown key's string
        body()[:-1] + b', "x": "\xed\xa0\x80"}',  # an encoded surrogate
        body()[:-1] + b', "x": "\xc0\xaf"}',  # an overlong form
        b"\xef\xbb\xbf" + body(),  # a UTF-8 byte-order mark is not JSON either
    ],
)
def test_a_body_that_is_not_utf8_json_is_106(raw):
    assert rejected(raw).errno == 106


@pytest.mark.parametrize(
    "raw", [body().decode().encode("utf-16"), body().decode().encode("utf-32"), body() + b"\x80"]
)
def test_bytes_that_are_not_utf8_are_named_as_such(raw):
    assert rejected(raw).message == "Request body must be UTF-8"


def test_values_of_unknown_keys_are_never_built():
    # Converting a long digit run to an int is quadratic; with Python's limit on digits set
    # to its lowest, building this value would fail. Skipping it does not.
    previous = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    try:
        raw = body()[:-1] + b', "x": [' + b"9" * 700 + b"]}"
        assert parse_request(raw, ALLOWED).params == PICL_PARAMS
    finally:
        sys.set_int_max_str_digits(previous)


@pytest.mark.parametrize("key", ["N", "r", "p", "buflen"])
@pytest.mark.parametrize("text", ["9" * 11, "9" * 4000, '"' + "9" * 4000 + '"', "1" + "0" * 4000])
def test_long_integers_are_107_naming_the_key(key, text):
    raw = body()[:-1] + f', "{key}": {text}}}'.encode()  # the last of a repeated key counts
    error = rejected(raw)
    assert (error.errno, error.message) == (107, f"Invalid parameter in request body: {key}")


@pytest.mark.timeout(20)  # a scan quadratic in the size would take hours on the largest
@pytest.mark.parametrize("size", [4095, 1 << 20])
def test_the_reviews_escaped_quotes_are_106_at_any_size(size):
    assert rejected(b'"' + b'\\"' * ((size - 1) // 2)).errno == 106


@pytest.mark.parametrize("tail", [b" x", b"{}", b", 1", b"\x00"])
def test_anything_after_the_object_is_106(tail):
    assert rejected(body() + tail).errno == 106


def test_brackets_inside_strings_do_not_count_as_nesting():
    salted = ScryptParams(salt=b'[[[{{{"\\', n=16, r=1, p=1, buflen=16)
    raw = json.dumps({"input": "ab", "salt": '[[[{{{"\\', "N": 16, "r": 1, "p": 1, "buflen": 16}).encode()
    assert parse_request(raw, (salted,)).params == salted
    nested = json.dumps({"input": "ab", "x": [[["[" * 50]]]}).encode()
    assert rejected(nested).errno == 108  # parsed: salt is missing, not too deep


def test_unknown_keys_are_skipped_however_many():
    # Nothing is kept of an unknown key, so their number needs no limit of its own.
    document = json.loads(body())
    document.update({f"k{i}": [i, {"v": str(i)}] for i in range(1000)})
    assert parse_request(json.dumps(document).encode(), ALLOWED).params == PICL_PARAMS


def test_a_repeated_key_counts_once_its_last_value():
    raw = body()[:-1] + b', "N": "nope", "N": 65536}'
    assert parse_request(raw, ALLOWED).params == PICL_PARAMS
    assert rejected(body()[:-1] + b', "N": 65536, "N": "nope"}').message.endswith(": N")
