// The errors this client throws. Messages never contain inputs or outputs: those are secrets.

/** Base of every error thrown by this client. */
export class ScryptHelperError extends Error {
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * The helper answered with an error that is not retried (400, 401, 403, 413, ...), or with an
 * answer that is not valid. `status` is the HTTP status, `errno` the service's error number
 * (null when the answer carried none), `message` the service's message, as in the Python client.
 */
export class HelperError extends ScryptHelperError {
  constructor(status, errno, message) {
    super(message);
    this.status = status;
    this.errno = errno;
  }

  toString() {
    return `${this.name}: helper answered ${this.status}${this.errno === null ? "" : ` (errno ${this.errno})`}: ${this.message}`;
  }
}

/**
 * No helper gave an answer within the deadline or the attempts. `status` and `errno` are those of
 * the last refusal (429, 503, ...), or null when the last attempt got no answer at all (a
 * network error, a timeout, or a browser refusing a cross-origin answer).
 */
export class HelperUnavailable extends ScryptHelperError {
  constructor(attempts, lastFailure, status = null, errno = null) {
    super(`scrypt helper unavailable: no answer after ${attempts} attempt(s); last: ${lastFailure}`);
    this.attempts = attempts;
    this.lastFailure = lastFailure;
    this.status = status;
    this.errno = errno;
  }
}
