// Compiled by `tsc --noEmit -p clients/js` in the test suite: the declarations of src/index.d.ts
// describe the client as its users call it, and refuse what it does not take.

import {
  HelperError,
  HelperUnavailable,
  PICL_PARAMS,
  type ProgressEvent,
  retryAfterMs,
  ScryptHelperClient,
  ScryptHelperError,
  stretch,
  toHex,
} from "../src/index.js";

const seen: ProgressEvent[] = [];
const client = new ScryptHelperClient(["https://scrypt-1.example", "https://scrypt-2.example"], {
  params: { ...PICL_PARAMS, N: 1024 },
  deadlineMs: 5000,
  onProgress: (event) => {
    seen.push(event);
    if (event.phase === "waiting") {
      const ms: number = event.ms;
      const status: number | null = event.status;
      void [ms, status];
    }
  },
});

export async function use(k1: Uint8Array): Promise<string> {
  try {
    const k2: Uint8Array = await client.hash(k1);
    const stretched: Uint8Array = await stretch("a@example.org", "pw", client);
    await stretch("a@example.org", "pw", "http://127.0.0.1:8080", { maxAttempts: 2 });
    return toHex(k2) + toHex(stretched);
  } catch (error) {
    if (error instanceof HelperError) {
      const status: number = error.status;
      const errno: number | null = error.errno;
      return `${status} ${errno} ${error.message}`;
    }
    if (error instanceof HelperUnavailable) {
      return `${error.attempts} ${error.lastFailure} ${error.status ?? "no answer"}`;
    }
    if (error instanceof ScryptHelperError) return error.message;
    throw error;
  }
}

const wait: number | null = retryAfterMs("2");
void wait;

// What the client does not take:
// @ts-expect-error: the base URLs are strings
new ScryptHelperClient(8080);
// @ts-expect-error: no such option
new ScryptHelperClient("https://scrypt.example", { retries: 3 });
// @ts-expect-error: hash takes bytes, not a hex string
void client.hash("00ff");
// @ts-expect-error: an errno is a number or null
const wrong: string = new HelperError(400, 107, "Invalid parameter").errno;
void wrong;
