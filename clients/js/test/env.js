// The nodes the tests talk to, given by the pytest test that starts them (tests/integration/test_js_client.py).

const env = process.env;

/** Why the tests that need nodes cannot run here, or false. */
export const noNodes = env.SCRYPT_HELPER_URL ? false : "SCRYPT_HELPER_URL is not set: run through pytest";

export const nodes = {
  main: env.SCRYPT_HELPER_URL, // the production and the small parameter set, no limits
  limited: env.SCRYPT_HELPER_LIMITED_URL, // 429 with Retry-After: 1 to a second hash within a second
  dead: env.SCRYPT_HELPER_DEAD_URL, // nothing listens there
};

/** The small parameter set both nodes allow, and [input hex, output hex] pairs computed by hashlib. */
export const small = noNodes ? null : JSON.parse(env.SCRYPT_HELPER_SMALL_PARAMS);
export const vectors = noNodes ? [] : JSON.parse(env.SCRYPT_HELPER_VECTORS);

export const fromHex = (hex) => Uint8Array.from(Buffer.from(hex, "hex"));
