"""How long a job queued now would wait for a worker: the estimate admission decides by.

It is built from what the workers have measured while serving: each parameter set's recent seconds
per job, times the jobs queued and the places held for jobs on their way, plus what is left of the
running batches, shared among the workers. Real waits then correct it (``calibrate``) for what lies
between batches and for the machine's shifting load. The scheduler owns one and calls it under its
own lock; it is not thread-safe by itself.
"""

from __future__ import annotations

from scrypt_helper.engines.base import ScryptParams

# Weight of the newest batch in each parameter set's seconds-per-job average, and of the newest
# job in the correction of foreseen waits by real ones (within MIN/MAX_CALIBRATION, from waits of
# at least CALIBRATION_FLOOR x max_queue_wait).
SMOOTHING = 0.2
MIN_CALIBRATION = 0.5
MAX_CALIBRATION = 4.0
CALIBRATION_FLOOR = 0.1


def cost(params: ScryptParams) -> int:
    """Work of one hash relative to others: its memory-hard mixing touches ``romix_bytes`` p times."""
    return params.romix_bytes * params.p


class WaitEstimate:
    """Work ahead of a new job, in one worker's seconds, and the correction learnt from real waits.

    ``hint``: a worker's seconds per ``reference`` job (timed at start-up), the estimate until batches
    have been measured; without it, waits count only measured work.
    """

    def __init__(self, *, hint: float | None = None, reference: ScryptParams | None = None) -> None:
        self.hint = hint
        self.reference = reference
        self.correction = 1.0  # real waits over foreseen ones, recently
        self._per_job: dict[ScryptParams, float] = {}  # measured, per allowed parameter set
        self._queued = 0.0  # estimated work of the queued jobs
        self._held = 0.0  # estimated work of the places held for jobs on their way
        self._holders = 0
        self._batch_ends: dict[int, float] = {}  # each busy worker's expected end of its batch

    def job_seconds(self, params: ScryptParams) -> float:
        """A worker's recent seconds per job of ``params`` in a batch (before any: the hint)."""
        measured = self._per_job.get(params)
        if measured is not None:
            return measured
        if self.hint is None or self.reference is None:
            return 0.0
        return self.hint * cost(params) / cost(self.reference)

    def learn(self, params: ScryptParams, per_job: float) -> None:
        """Fold one batch's seconds per job into its parameter set's average."""
        known = self._per_job.get(params)
        self._per_job[params] = per_job if known is None else known + SMOOTHING * (per_job - known)

    # -- the work counted ----------------------------------------------------------------------------

    def queued(self, seconds: float) -> None:
        self._queued += seconds

    def dequeued(self, seconds: float, *, queue_empty: bool) -> None:
        # No rounding drift outlives an empty queue.
        self._queued = 0.0 if queue_empty else max(0.0, self._queued - seconds)

    def hold(self, seconds: float) -> None:
        """Count the work of a job admitted before it is queued."""
        self._holders += 1
        self._held += seconds

    def release(self, seconds: float) -> None:
        """Stop counting a held job's work: it was queued, or it will never come."""
        self._holders = max(0, self._holders - 1)
        self._held = max(0.0, self._held - seconds) if self._holders else 0.0

    @property
    def held(self) -> int:
        """Places held for jobs admitted and not yet queued."""
        return self._holders

    def batch_started(self, worker: int, ends: float) -> None:
        self._batch_ends[worker] = ends

    def batch_ended(self, worker: int) -> None:
        self._batch_ends.pop(worker, None)

    # -- the estimate ----------------------------------------------------------------------------------

    def foreseen(self, workers: int, now: float) -> float:
        """The work ahead of a job queued now, per worker (a free worker is the caller's check)."""
        running = sum(max(0.0, end - now) for end in self._batch_ends.values())
        return (self._queued + self._held + running) / workers

    def calibrate(self, predicted: float, waited: float, max_queue_wait: float) -> None:
        """Fold a job's real wait against the one foreseen for it into the correction.

        Only waits long enough to measure count. The floor is on the corrected wait, the one admission
        went by: on the raw one, a high correction would make every foreseen wait look too short to
        learn from, and stick.
        """
        if predicted * self.correction < CALIBRATION_FLOOR * max_queue_wait:
            return
        ratio = min(max(waited / predicted, MIN_CALIBRATION), MAX_CALIBRATION)
        self.correction += SMOOTHING * (ratio - self.correction)
