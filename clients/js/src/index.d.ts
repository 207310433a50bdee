// Type declarations of scrypt-helper's JavaScript client (src/index.js), checked by `tsc` against
// types/check.ts in the repository's test suite.

/** A scrypt parameter set as the helper's API names it. */
export interface ScryptParams {
  readonly salt: string;
  readonly N: number;
  readonly r: number;
  readonly p: number;
  readonly buflen: number;
}

/** The Firefox Accounts (PiCL) parameter set, the helper's default. */
export declare const PICL_PARAMS: Readonly<ScryptParams>;

/** What `onProgress` is told: phases and attempts, never a secret. */
export type ProgressEvent =
  | { phase: "first-pbkdf" | "second-pbkdf" | "done" }
  | { phase: "scrypt"; attempt: number; url: string }
  | { phase: "waiting"; ms: number; status: number | null };

export interface ClientOptions {
  /** The parameter set to ask for (default PICL_PARAMS). */
  params?: ScryptParams;
  /** The whole call, retries and waits included (default 30,000). */
  deadlineMs?: number;
  /** Each attempt (default 10,000). */
  attemptTimeoutMs?: number;
  /** Attempts in all (default 5). */
  maxAttempts?: number;
  /** Plain http:// beyond the loopback. */
  allowInsecureHttp?: boolean;
  /** The fetch to use (default globalThis.fetch). */
  fetch?: typeof fetch;
  onProgress?: (event: ProgressEvent) => void;
}

/** A client of one or more helper nodes, tried in turn. */
export declare class ScryptHelperClient {
  constructor(urls: string | Iterable<string>, options?: ClientOptions);
  readonly urls: string[];
  readonly params: Readonly<ScryptParams>;
  readonly deadlineMs: number;
  readonly attemptTimeoutMs: number;
  readonly maxAttempts: number;
  onProgress: (event: ProgressEvent) => void;
  /** scrypt of `data` (1..256 bytes) with this client's parameters. */
  hash(data: Uint8Array | ArrayLike<number>): Promise<Uint8Array>;
}

/** Lower-case hex of bytes. */
export declare function toHex(bytes: Iterable<number> | ArrayLike<number>): string;

/** Base of every error thrown by this client. */
export declare class ScryptHelperError extends Error {}

/** An answer that is not retried (400, 401, 403, 413, ...) or not valid; `message` is the service's. */
export declare class HelperError extends ScryptHelperError {
  constructor(status: number, errno: number | null, message: string);
  readonly status: number;
  readonly errno: number | null;
}

/** No helper answered within the deadline or the attempts. */
export declare class HelperUnavailable extends ScryptHelperError {
  constructor(attempts: number, lastFailure: string, status?: number | null, errno?: number | null);
  readonly attempts: number;
  readonly lastFailure: string;
  /** The last refusal's status (429, 503, ...), or null when the last attempt got no answer. */
  readonly status: number | null;
  readonly errno: number | null;
}

/** The wait (ms) a Retry-After header asks for, in seconds or as an HTTP date; null if absent or bad. */
export declare function retryAfterMs(value: string | null | undefined, now?: number): number | null;

/** k1 = PBKDF2-HMAC-SHA256(password, first-PBKDF salt + email, 20000 rounds, 32 bytes). */
export declare function firstPbkdf(email: string, password: string): Promise<Uint8Array>;

/** stretchedPW = PBKDF2-HMAC-SHA256(k2 + password, second-PBKDF salt + email, 20000 rounds, 32 bytes). */
export declare function secondPbkdf(email: string, password: string, k2: Uint8Array): Promise<Uint8Array>;

/** The onepw stretchedPW (32 bytes), with the scrypt step on the helper. */
export declare function stretch(
  email: string,
  password: string,
  helper: ScryptHelperClient | string | Iterable<string>,
  options?: ClientOptions,
): Promise<Uint8Array>;
