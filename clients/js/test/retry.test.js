// Refusals against a real node with a tiny rate-limit rule: Retry-After, the deadline, failover.
// The tests share the node's one-hash-a-second budget, so they run in order and each starts by
// waiting out the block the previous one left.

import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";

import { HelperUnavailable, ScryptHelperClient, toHex } from "../src/index.js";
import { fromHex, noNodes, nodes, small, vectors } from "./env.js";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

describe("a node that answers 429 with Retry-After: 1", { skip: noNodes }, () => {
  let fresh = true; // the node has counted no hash yet
  beforeEach(async () => {
    if (!fresh) await sleep(1100);
    fresh = false;
  });

  test("the client waits as Retry-After says, then succeeds within the deadline", async () => {
    const events = [];
    const client = new ScryptHelperClient(nodes.limited, {
      params: small,
      deadlineMs: 5000,
      onProgress: (event) => events.push({ ...event, at: performance.now() }),
    });
    const [[first, firstOut], [second, secondOut]] = vectors;
    assert.equal(toHex(await client.hash(fromHex(first))), firstOut);
    const began = performance.now();
    assert.equal(toHex(await client.hash(fromHex(second))), secondOut);
    const took = performance.now() - began;
    const waits = events.filter((event) => event.phase === "waiting");
    assert.equal(waits.length, 1, JSON.stringify(waits));
    assert.equal(waits[0].status, 429);
    assert.ok(waits[0].ms >= 1000, `waited ${waits[0].ms} ms`);
    assert.ok(took >= 950 && took < 3000, `took ${took} ms`);
  });

  test("a Retry-After past the deadline ends the call at once, with the refusal's status and errno", async () => {
    const client = new ScryptHelperClient(nodes.limited, { params: small, deadlineMs: 700 });
    const [[first], [second]] = vectors;
    await client.hash(fromHex(first));
    const began = performance.now();
    const error = await client.hash(fromHex(second)).then(assert.fail, (caught) => caught);
    assert.ok(error instanceof HelperUnavailable, String(error));
    assert.equal(error.status, 429);
    assert.equal(error.errno, 114);
    assert.equal(error.attempts, 1);
    assert.ok(performance.now() - began < 500);
  });

  test("a 429 is asked again of the same node after its Retry-After, not of another", async () => {
    const urls = [];
    const client = new ScryptHelperClient([nodes.limited, nodes.main], {
      params: small,
      deadlineMs: 5000,
      onProgress: (event) => event.phase === "scrypt" && urls.push(event.url),
    });
    const [[first, firstOut], [second, secondOut]] = vectors;
    assert.equal(toHex(await client.hash(fromHex(first))), firstOut);
    const began = performance.now();
    assert.equal(toHex(await client.hash(fromHex(second))), secondOut);
    assert.ok(performance.now() - began >= 950);
    assert.deepEqual(new Set(urls), new Set([new URL(nodes.limited).href]));
  });
});
