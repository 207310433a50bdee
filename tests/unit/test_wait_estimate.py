"""The wait estimate admission decides by: measured work per job, work counted, corrected by real waits."""

from __future__ import annotations

import pytest

from scrypt_helper.core.wait_estimate import MAX_CALIBRATION, SMOOTHING, WaitEstimate
from scrypt_helper.engines import ScryptParams

SMALL = ScryptParams(salt=b"s", n=1024, r=8, p=1, buflen=32)
BIG = ScryptParams(salt=b"s", n=4096, r=8, p=1, buflen=32)


def test_before_any_batch_the_hint_is_scaled_by_each_sets_work():
    estimate = WaitEstimate(hint=0.2, reference=BIG)
    assert estimate.job_seconds(BIG) == pytest.approx(0.2)
    assert estimate.job_seconds(SMALL) == pytest.approx(0.05)  # a quarter of the memory-hard work
    assert WaitEstimate().job_seconds(BIG) == 0.0  # no hint: only measured work counts


def test_measured_batches_replace_the_hint_and_are_smoothed():
    estimate = WaitEstimate(hint=0.2, reference=BIG)
    estimate.learn(BIG, 1.0)
    assert estimate.job_seconds(BIG) == 1.0
    estimate.learn(BIG, 2.0)
    assert estimate.job_seconds(BIG) == pytest.approx(1.0 + SMOOTHING * 1.0)
    assert estimate.job_seconds(SMALL) == pytest.approx(0.05)  # each set learns on its own


def test_the_work_ahead_is_queued_held_and_running_work_shared_by_the_workers():
    estimate = WaitEstimate()
    estimate.queued(1.0)
    estimate.queued(1.0)
    estimate.hold(0.5)
    estimate.batch_started(worker=1, ends=110.0)
    assert estimate.foreseen(workers=2, now=100.0) == pytest.approx((2.0 + 0.5 + 10.0) / 2)
    assert estimate.foreseen(workers=2, now=120.0) == pytest.approx(2.5 / 2)  # an overdue batch adds nothing
    estimate.batch_ended(worker=1)
    estimate.release(0.5)
    estimate.dequeued(1.0, queue_empty=False)
    assert estimate.foreseen(workers=1, now=100.0) == pytest.approx(1.0)
    assert estimate.held == 0


def test_an_empty_queue_and_no_held_place_leave_no_rounding_drift():
    estimate = WaitEstimate()
    estimate.queued(0.1)
    estimate.queued(0.2)
    estimate.hold(0.3)
    estimate.dequeued(0.1, queue_empty=False)
    estimate.dequeued(0.2 + 1e-12, queue_empty=True)
    estimate.release(0.3 - 1e-12)
    assert estimate.foreseen(workers=1, now=0.0) == 0.0


def test_real_waits_correct_the_estimate_within_bounds_and_short_ones_teach_nothing():
    estimate = WaitEstimate()
    estimate.calibrate(predicted=0.01, waited=1.0, max_queue_wait=1.0)  # below the floor: too short to learn
    assert estimate.correction == 1.0
    estimate.calibrate(predicted=0.5, waited=1.0, max_queue_wait=1.0)
    assert estimate.correction == pytest.approx(1.0 + SMOOTHING * 1.0)
    for _ in range(100):
        estimate.calibrate(predicted=0.5, waited=100.0, max_queue_wait=1.0)
    assert estimate.correction == pytest.approx(MAX_CALIBRATION)
