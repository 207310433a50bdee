// The Firefox Accounts onepw password stretch (PiCL): PBKDF2, the helper's scrypt, PBKDF2.

import { ScryptHelperClient } from "./client.js";

export const FIRST_PBKDF_SALT = "identity.mozilla.com/picl/v1/first-PBKDF:";
export const SECOND_PBKDF_SALT = "identity.mozilla.com/picl/v1/second-PBKDF:";
export const PBKDF2_ROUNDS = 20000;

const utf8 = (text) => new TextEncoder().encode(text);

function concat(a, b) {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return joined;
}

async function pbkdf2(secret, salt) {
  const key = await crypto.subtle.importKey("raw", secret, "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations: PBKDF2_ROUNDS },
    key,
    256,
  );
  return new Uint8Array(bits);
}

/** k1 = PBKDF2-HMAC-SHA256(password, first-PBKDF salt + email, 20000 rounds, 32 bytes). */
export function firstPbkdf(email, password) {
  return pbkdf2(utf8(password), utf8(FIRST_PBKDF_SALT + email));
}

/** stretchedPW = PBKDF2-HMAC-SHA256(k2 + password, second-PBKDF salt + email, 20000 rounds, 32 bytes). */
export function secondPbkdf(email, password, k2) {
  return pbkdf2(concat(k2, utf8(password)), utf8(SECOND_PBKDF_SALT + email));
}

/**
 * The onepw stretchedPW (a Uint8Array of 32 bytes), with the scrypt step on the helper.
 * `helper` is a ScryptHelperClient, or the base URL(s) and `options` to make one. `onProgress`
 * (from `options`, or the client's) is also called with `{phase: "first-pbkdf" | "second-pbkdf" | "done"}`.
 */
export async function stretch(email, password, helper, options = {}) {
  const client = helper instanceof ScryptHelperClient ? helper : new ScryptHelperClient(helper, options);
  const progress = options.onProgress ?? client.onProgress;
  progress({ phase: "first-pbkdf" });
  const k1 = await firstPbkdf(email, password);
  const k2 = await client.hash(k1);
  progress({ phase: "second-pbkdf" });
  const stretched = await secondPbkdf(email, password, k2);
  progress({ phase: "done" });
  return stretched;
}
