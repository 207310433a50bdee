// The parts that need no node: Retry-After parsing, backoff, URL checks.

import assert from "node:assert/strict";
import { test } from "node:test";

import { ScryptHelperClient, retryAfterMs } from "../src/index.js";
import { backoffMs } from "../src/retry.js";

test("Retry-After in seconds or as an HTTP date", () => {
  assert.equal(retryAfterMs(null), null);
  assert.equal(retryAfterMs("2"), 2000);
  assert.equal(retryAfterMs("0.5"), 500);
  assert.equal(retryAfterMs("-3"), 0);
  assert.equal(retryAfterMs("soon"), null);
  assert.equal(retryAfterMs("Wed, 21 Oct 2015 07:28:00 GMT"), 0);
  const now = Date.parse("Wed, 21 Oct 2015 07:28:00 GMT");
  assert.equal(retryAfterMs("Wed, 21 Oct 2015 07:28:03 GMT", now), 3000);
});

test("backoff doubles per round, jittered in its upper half, capped", () => {
  assert.equal(backoffMs(1, () => 0), 50);
  assert.equal(backoffMs(1, () => 1), 100);
  assert.equal(backoffMs(4, () => 0), 400);
  assert.equal(backoffMs(20, () => 1), 5000);
});

test("secrets go over plain http only to loopback unless allowed", () => {
  for (const url of ["http://127.0.0.1:8080", "http://localhost", "http://[::1]:1", "https://x.example"]) {
    assert.ok(new ScryptHelperClient(url));
  }
  assert.throws(() => new ScryptHelperClient("http://helper.example"), /plain http/);
  assert.ok(new ScryptHelperClient("http://helper.example", { allowInsecureHttp: true }));
  assert.throws(() => new ScryptHelperClient("ftp://helper.example"), TypeError);
  assert.throws(() => new ScryptHelperClient([]), TypeError);
  assert.throws(() => new ScryptHelperClient("https://x.example", { deadlineMs: 0 }), RangeError);
});
