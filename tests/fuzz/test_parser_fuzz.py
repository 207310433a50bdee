"""Property-based fuzzing of the request parser: any body gives a job or a 400, nothing else."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scrypt_helper.core import errors
from scrypt_helper.core.scrypt_request import MAX_INPUT_BYTES, parse_request
from scrypt_helper.engines.vectors import PICL_PARAMS

ALLOWED = (PICL_PARAMS,)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
wire_keys = st.sampled_from(["input", "salt", "N", "r", "p", "buflen"])


def parse(raw: bytes) -> None:
    try:
        job = parse_request(raw, ALLOWED)
    except errors.ApiError as error:
        assert error.status == 400
        assert error.errno in (106, 107, 108)
        assert set(error.body()) == {"code", "errno", "error", "message"}
    else:
        assert job.params == PICL_PARAMS
        assert 1 <= len(job.data) <= MAX_INPUT_BYTES


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_arbitrary_bytes(raw):
    parse(raw)


@settings(max_examples=400)
@given(st.dictionaries(wire_keys | st.text(max_size=8), json_values, max_size=8))
def test_arbitrary_json_objects(document):
    parse(json.dumps(document).encode())


valid_values = {
    "input": st.binary(min_size=1, max_size=MAX_INPUT_BYTES).map(bytes.hex),
    "salt": st.just(PICL_PARAMS.salt.decode()),
    "N": st.sampled_from([65536, "65536"]),
    "r": st.sampled_from([8, "8"]),
    "p": st.sampled_from([1, "1"]),
    "buflen": st.sampled_from([32, "32"]),
}


@settings(max_examples=300)
@given(st.fixed_dictionaries(valid_values), wire_keys, json_values)
def test_one_corrupted_field_names_that_field_or_passes(document, key, value):
    document[key] = value
    try:
        parse_request(json.dumps(document).encode(), ALLOWED)
    except errors.ApiError as error:
        assert error.message.endswith(f": {key}")


@settings(max_examples=200)
@given(st.fixed_dictionaries(valid_values))
def test_valid_documents_always_parse(document):
    job = parse_request(json.dumps(document).encode(), ALLOWED)
    assert job.data.hex() == document["input"]
