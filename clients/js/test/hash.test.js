// The client against a real node: outputs, the published stretch vector, errors, failover, deadline.

import assert from "node:assert/strict";
import net from "node:net";
import { after, before, describe, test } from "node:test";

import { HelperError, HelperUnavailable, ScryptHelperClient, stretch, toHex } from "../src/index.js";
import { fromHex, noNodes, nodes, small, vectors } from "./env.js";

const EMAIL = "andré@example.org";
const PASSWORD = "pässwörd";
const K1 = "f84913e3d8e6d624689d0a3e9678ac8dcc79d2c2f3d9641488cd9d6ef6cd83dd";
const STRETCHED = "c16d46c31bee242cb31f916e9e38d60b76431d3f5304549cc75ae4bc20c7108c";

describe("a real node", { skip: noNodes }, () => {
  test("hash equals scrypt computed independently, for fresh random inputs", async () => {
    assert.ok(vectors.length >= 2);
    const client = new ScryptHelperClient(nodes.main, { params: small });
    for (const [input, output] of vectors) {
      assert.equal(toHex(await client.hash(fromHex(input))), output);
    }
  });

  test("the published onepw vector, with the production parameters on the node", async () => {
    const phases = [];
    const stretched = await stretch(EMAIL, PASSWORD, nodes.main, {
      onProgress: (event) => phases.push(event.phase),
    });
    assert.equal(toHex(stretched), STRETCHED);
    assert.deepEqual(phases, ["first-pbkdf", "scrypt", "second-pbkdf", "done"]);
  });

  test("a 400 is thrown at once with its status and errno, without the input", async () => {
    const client = new ScryptHelperClient(nodes.main, { params: { ...small, salt: "not-allowed" } });
    const began = performance.now();
    const error = await client.hash(fromHex(K1)).then(assert.fail, (caught) => caught);
    assert.ok(error instanceof HelperError, String(error));
    assert.equal(error.status, 400);
    assert.equal(error.errno, 107);
    assert.equal(error.message, "Invalid parameter in request body: salt");
    assert.ok(!String(error).includes(K1));
    assert.equal(String(error), "HelperError: helper answered 400 (errno 107): Invalid parameter in request body: salt");
    assert.ok(performance.now() - began < 1000);
  });

  test("a dead base URL fails over to a live one, which is then asked first", async () => {
    const urls = [];
    const client = new ScryptHelperClient([nodes.dead, nodes.main], {
      params: small,
      onProgress: (event) => event.phase === "scrypt" && urls.push(new URL(event.url).origin),
    });
    const [input, output] = vectors[0];
    assert.equal(toHex(await client.hash(fromHex(input))), output);
    assert.equal(toHex(await client.hash(fromHex(input))), output);
    assert.deepEqual(urls, [nodes.dead, nodes.main, nodes.main].map((url) => new URL(url).origin));
  });
});

describe("a node that never answers", () => {
  const sockets = new Set();
  let server;
  let url;
  before(async () => {
    // Accepts connections and reads requests, but never answers: only the deadline ends a call.
    server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on("data", () => {});
    });
    await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${server.address().port}`;
  });
  after(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });

  test("the whole call keeps to its deadline", async () => {
    const client = new ScryptHelperClient(url, { deadlineMs: 800, attemptTimeoutMs: 300, maxAttempts: 100 });
    const began = performance.now();
    const error = await client.hash(new Uint8Array(32)).then(assert.fail, (caught) => caught);
    const took = performance.now() - began;
    assert.ok(error instanceof HelperUnavailable, String(error));
    assert.equal(error.status, null);
    assert.match(error.lastFailure, /timeout/);
    assert.ok(error.attempts >= 2, `attempts: ${error.attempts}`);
    assert.ok(took >= 600 && took < 1300, `took ${took} ms`);
  });
});
