"""Every rule of the request body, in its accepted and rejected forms."""

from __future__ import annotations

import json

import pytest

from scrypt_helper import errors
from scrypt_helper.engines import ScryptParams
from scrypt_helper.engines.vectors import PICL_PARAMS
from scrypt_helper.wire import Job, parse_request

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
    assert rejected(
        b'{"input": "ab", "salt": "\\ud800", "N": 1, "r": 1, "p": 1, "buflen": 1}'
    ).message.endswith(": salt")


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


@pytest.mark.parametrize("depth", [17, 100, 4000])
def test_deep_nesting_is_refused_before_parsing(depth):
    raw = b'{"x": ' + b"[" * depth + b"]" * depth + b"}"
    error = rejected(raw)
    assert (error.errno, error.message) == (106, "JSON nested too deeply")


def test_brackets_inside_strings_do_not_count_as_nesting():
    salted = ScryptParams(salt=b'[[[{{{"\\', n=16, r=1, p=1, buflen=16)
    raw = json.dumps({"input": "ab", "salt": '[[[{{{"\\', "N": 16, "r": 1, "p": 1, "buflen": 16}).encode()
    assert parse_request(raw, (salted,)).params == salted
    nested = json.dumps({"input": "ab", "x": [[["[" * 50]]]}).encode()
    assert rejected(nested).errno == 108  # parsed: salt is missing, not too deep


def test_too_many_keys_is_refused():
    document = json.loads(body())
    document.update({f"k{i}": i for i in range(60)})
    error = rejected(json.dumps(document).encode())
    assert (error.errno, error.message) == (106, "Request body has more than 64 keys")
