// scrypt-helper's JavaScript client: fetch and WebCrypto only, for browsers and Node >= 20.

export { PICL_PARAMS, ScryptHelperClient, toHex } from "./client.js";
export { HelperError, HelperUnavailable, ScryptHelperError } from "./errors.js";
export { retryAfterMs } from "./retry.js";
export { firstPbkdf, secondPbkdf, stretch } from "./stretch.js";
