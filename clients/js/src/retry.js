// When to try again: Retry-After, jittered exponential backoff, and the URL to try next.

/** First backoff step (ms); it doubles with each full round of URLs, up to BACKOFF_CAP_MS. */
export const BACKOFF_BASE_MS = 100;
export const BACKOFF_CAP_MS = 5000;

/** The wait (ms) a Retry-After header asks for, in seconds or as an HTTP date; null if absent or bad. */
export function retryAfterMs(value, now = Date.now()) {
  if (value === null || value === undefined || value.trim() === "") return null;
  let ms;
  if (/^\s*[-+]?(\d+\.?\d*|\.\d+)\s*$/.test(value)) {
    ms = Number(value) * 1000;
  } else {
    const when = Date.parse(value);
    if (Number.isNaN(when)) return null;
    ms = when - now;
  }
  return Number.isFinite(ms) ? Math.max(0, ms) : null;
}

/** The backoff (ms) after `round` (1-based) full rounds of failures: an exponential step, jittered. */
export function backoffMs(round, random = Math.random) {
  const step = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (round - 1));
  return step / 2 + random() * (step / 2);
}

/**
 * The retry state of one hash call over several base URLs. A failed URL is left for the next one
 * at once (a 429 excepted); only after a whole round of attempts does the call back off. A URL that asked for a
 * Retry-After is not asked again before it has passed, and the others are not held up by it.
 */
export class Attempts {
  constructor(urls, first, { deadlineMs, maxAttempts, now = () => performance.now() }) {
    this.urls = urls;
    this.index = first;
    this.count = 0;
    this.now = now;
    this.ends = now() + deadlineMs;
    this.maxAttempts = maxAttempts;
    this.notBefore = new Array(urls.length).fill(0);
    this.lastFailure = "no attempt made";
    this.lastStatus = null;
    this.lastErrno = null;
  }

  /** Milliseconds until the deadline. */
  left() {
    return this.ends - this.now();
  }

  /** The URL of the next attempt, counting it. */
  start() {
    this.count += 1;
    return this.urls[this.index];
  }

  /** Record a failure of the current URL: no answer (status null), or a retryable one. */
  failed(description, { status = null, errno = null, retryAfter = null } = {}) {
    this.lastFailure = description;
    this.lastStatus = status;
    this.lastErrno = errno;
    this.notBefore[this.index] = this.now() + (retryAfter ?? 0);
    // A 429 limits this client wherever it asks: moving to another node would only double its
    // limit, so it asks the same one again after Retry-After. Anything else moves on.
    if (status !== 429) this.index = (this.index + 1) % this.urls.length;
  }

  /** Milliseconds to wait before the next attempt, or null when none fits in attempts and deadline. */
  pause(minAttemptMs) {
    if (this.count >= this.maxAttempts) return null;
    let wait = Math.max(0, this.notBefore[this.index] - this.now());
    if (this.count % this.urls.length === 0) {
      wait += backoffMs(this.count / this.urls.length);
    }
    return wait + minAttemptMs <= this.left() ? wait : null;
  }
}
