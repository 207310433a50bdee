// Ask scrypt-helper nodes for scrypt over fetch: retries, Retry-After, a deadline, failover.

import { HelperError, HelperUnavailable } from "./errors.js";
import { Attempts, retryAfterMs } from "./retry.js";

/** The Firefox Accounts (PiCL) parameter set, the helper's default. */
export const PICL_PARAMS = Object.freeze({
  salt: "identity.mozilla.com/picl/v1/scrypt",
  N: 65536,
  r: 8,
  p: 1,
  buflen: 32,
});

/** An attempt is not started with less time than this left before the deadline. */
export const MIN_ATTEMPT_MS = 50;

const HEX = /^[0-9a-fA-F]*$/;

/** Lower-case hex of bytes. */
export function toHex(bytes) {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function fromHex(hex) {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i += 1) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

function isLoopback(hostname) {
  const host = hostname.toLowerCase().replace(/\.$/, "");
  return host === "localhost" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The base URLs, checked: http(s) only, and plain http only to loopback unless allowed. */
function checkUrls(urls, allowInsecureHttp) {
  const list = typeof urls === "string" ? [urls] : Array.from(urls ?? []);
  if (list.length === 0) throw new TypeError("at least one helper URL is needed");
  return list.map((url) => {
    const parsed = new URL(url);
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw new TypeError("a helper URL must be http:// or https://");
    }
    if (parsed.protocol === "http:" && !allowInsecureHttp && !isLoopback(parsed.hostname)) {
      throw new TypeError(
        `refusing to send secrets over plain http:// to ${parsed.hostname}: use https://, ` +
          "or pass allowInsecureHttp: true on a network you trust",
      );
    }
    return parsed.href;
  });
}

const retryable = (status) => status === 429 || status >= 500;

async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

function errorOf(status, body, statusText) {
  const errno = body && Number.isInteger(body.errno) ? body.errno : null;
  const message = body && typeof body.message === "string" ? body.message.slice(0, 200) : statusText;
  return { status, errno, message: message || `HTTP ${status}` };
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A client of one or more helper nodes (base URLs, tried in turn: a node that fails or refuses is
 * left for the next one at once). Options: `params` (default PICL_PARAMS), `deadlineMs` (30,000:
 * the whole call, retries and waits included), `attemptTimeoutMs` (10,000), `maxAttempts` (5),
 * `allowInsecureHttp`, `fetch`, `onProgress` (called with `{phase: "scrypt", attempt, url}` before
 * each attempt and `{phase: "waiting", ms, status}` before each wait; never with any secret).
 */
export class ScryptHelperClient {
  constructor(urls, options = {}) {
    this.urls = checkUrls(urls, options.allowInsecureHttp ?? false);
    this.params = Object.freeze({ ...(options.params ?? PICL_PARAMS) });
    this.deadlineMs = options.deadlineMs ?? 30000;
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? 10000;
    this.maxAttempts = options.maxAttempts ?? 5;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.onProgress = options.onProgress ?? (() => {});
    if (!(this.deadlineMs > 0 && this.attemptTimeoutMs > 0 && this.maxAttempts >= 1)) {
      throw new RangeError("deadlineMs and attemptTimeoutMs must be positive, maxAttempts at least 1");
    }
    this.preferred = 0; // the URL that answered last is tried first next time
  }

  /** scrypt of `data` (a Uint8Array of 1..256 bytes) with this client's parameters, as a Uint8Array. */
  async hash(data) {
    const body = JSON.stringify({ input: toHex(new Uint8Array(data)), ...this.params });
    const attempts = new Attempts(this.urls, this.preferred, {
      deadlineMs: this.deadlineMs,
      maxAttempts: this.maxAttempts,
    });
    for (;;) {
      const url = attempts.start();
      this.onProgress({ phase: "scrypt", attempt: attempts.count, url });
      const output = await this.#attempt(url, body, attempts);
      if (output !== null) {
        this.preferred = attempts.index;
        return output;
      }
      const wait = attempts.pause(MIN_ATTEMPT_MS);
      if (wait === null) {
        throw new HelperUnavailable(attempts.count, attempts.lastFailure, attempts.lastStatus, attempts.lastErrno);
      }
      this.onProgress({ phase: "waiting", ms: Math.round(wait), status: attempts.lastStatus });
      await sleep(wait);
    }
  }

  /** One POST: the output, or null after recording a retryable failure; HelperError otherwise. */
  async #attempt(url, body, attempts) {
    const timeout = Math.ceil(Math.min(this.attemptTimeoutMs, Math.max(MIN_ATTEMPT_MS, attempts.left())));
    let response;
    let answer;
    try {
      response = await this.fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body,
        signal: AbortSignal.timeout(timeout),
        credentials: "omit",
        cache: "no-store",
      });
      answer = await readJson(response);
    } catch (error) {
      // A browser gives no detail for a refused cross-origin answer: it is a TypeError like a
      // connection error. A timeout is an AbortError or TimeoutError.
      attempts.failed(error?.name === "TimeoutError" ? "timeout" : `no answer (${error?.name})`);
      return null;
    }
    if (response.ok) return this.#output(response.status, answer);
    const error = errorOf(response.status, answer, response.statusText);
    if (!retryable(response.status)) throw new HelperError(error.status, error.errno, error.message);
    attempts.failed(`${error.status}${error.errno === null ? "" : ` (errno ${error.errno})`}: ${error.message}`, {
      status: error.status,
      errno: error.errno,
      retryAfter: retryAfterMsOf(response),
    });
    return null;
  }

  #output(status, answer) {
    const output = answer?.output;
    const length = 2 * this.params.buflen;
    if (typeof output !== "string" || output.length !== length || !HEX.test(output)) {
      throw new HelperError(status, null, `the output is not ${this.params.buflen} bytes of hex`);
    }
    return fromHex(output);
  }
}

function retryAfterMsOf(response) {
  // A cross-origin page reads it only when the node lists it in Access-Control-Expose-Headers.
  return retryAfterMs(response.headers.get("Retry-After"));
}
