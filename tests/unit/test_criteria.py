"""Success criteria: each figure marked against its bound, and a load test's misses named."""

from __future__ import annotations

import math

from scrypt_helper.bench.criteria import (
    MISS,
    NO_DATA,
    PASS,
    RELEASE_GATE,
    LoadTestCriteria,
    at_least,
    at_most,
    missed,
)


def test_a_bound_marks_a_figure_and_a_missing_figure_is_no_data():
    assert at_least(10).mark(10) == PASS
    assert at_least(10).mark(9.9) == MISS
    assert at_most(1).mark(1.1) == MISS
    assert at_most(1).mark(math.nan) == NO_DATA


def test_a_load_test_names_each_criterion_it_missed():
    criteria = LoadTestCriteria(min_ops=55, max_p99_ms=1000, max_fail_ratio=0)
    assert missed(criteria.figures(ops=60, p99_ms=900, fail_ratio=0)) == []
    assert missed(criteria.figures(ops=40, p99_ms=1500, fail_ratio=0.02)) == [
        "good answers 40.0/s, not >= 55.0/s",
        "p99 of valid requests 1,500 ms, not <= 1,000 ms",
        "failed checks 2.00%, not <= 0.00%",
    ]


def test_a_p99_bound_of_zero_admits_any_p99():
    assert missed(LoadTestCriteria(max_p99_ms=0).figures(ops=1, p99_ms=1e9, fail_ratio=0)) == []


def test_the_release_gate_asks_for_the_documented_load():
    assert (RELEASE_GATE.min_ops, RELEASE_GATE.max_p99_ms, RELEASE_GATE.max_fail_ratio) == (55, 1000, 0)
