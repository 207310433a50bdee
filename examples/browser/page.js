// The example page: stretch a password with the helper, showing phases, attempts and elapsed time.
// Query parameters prefill the form and tune the client: helper, email, deadline (s), attempts.

import { HelperError, HelperUnavailable, ScryptHelperClient, stretch, toHex } from "../../clients/js/src/index.js";

const query = new URLSearchParams(window.location.search);
const $ = (id) => document.getElementById(id);
const PHASES = {
  "first-pbkdf": "PBKDF2 (first)",
  scrypt: "scrypt on the helper",
  waiting: "waiting to retry",
  "second-pbkdf": "PBKDF2 (second)",
  done: "done",
};

// What happened, for people and for tests: phase names and times since the start, never a secret.
window.stretchEvents = [];

$("helper").value = query.get("helper") ?? "";
$("email").value = query.get("email") ?? "";

function describe(error) {
  if (error instanceof HelperError) {
    return `The helper refused: HTTP ${error.status}${error.errno === null ? "" : `, errno ${error.errno}`}: ${error.message}`;
  }
  if (error instanceof HelperUnavailable) {
    if (error.status === null) {
      return `No answer from the helper after ${error.attempts} attempt(s) (network error, timeout, or not allowed from this origin): ${error.lastFailure}`;
    }
    return `The helper is unavailable: HTTP ${error.status}${error.errno === null ? "" : `, errno ${error.errno}`} after ${error.attempts} attempt(s): ${error.lastFailure}`;
  }
  return `Error: ${error?.message ?? error}`;
}

function note(started, event) {
  const at = Math.round(performance.now() - started);
  window.stretchEvents.push({ ...event, at });
  $("phase").textContent = PHASES[event.phase] ?? event.phase;
  if (event.phase === "scrypt") {
    const item = document.createElement("li");
    item.textContent = `attempt ${event.attempt} to ${event.url} at ${at} ms`;
    $("attempts").append(item);
  } else if (event.phase === "waiting") {
    const item = document.createElement("li");
    item.textContent = `HTTP ${event.status ?? "no answer"}: waiting ${event.ms} ms, as told, at ${at} ms`;
    $("attempts").append(item);
  }
}

$("stretch").addEventListener("submit", async (event) => {
  event.preventDefault();
  const started = performance.now();
  const tick = setInterval(() => {
    $("elapsed").textContent = `${((performance.now() - started) / 1000).toFixed(1)} s`;
  }, 100);
  window.stretchEvents = [];
  for (const id of ["attempts", "result", "error"]) $(id).textContent = "";
  $("go").disabled = true;
  document.body.dataset.state = "working";
  try {
    const client = new ScryptHelperClient($("helper").value.split(",").map((url) => url.trim()), {
      deadlineMs: 1000 * Number(query.get("deadline") ?? 30),
      maxAttempts: Number(query.get("attempts") ?? 5),
      onProgress: (progress) => note(started, progress),
    });
    const key = await stretch($("email").value, $("password").value, client);
    $("result").textContent = toHex(key);
    document.body.dataset.state = "done";
  } catch (error) {
    $("phase").textContent = "failed";
    $("error").textContent = describe(error);
    document.body.dataset.state = "failed";
  } finally {
    clearInterval(tick);
    $("elapsed").textContent = `${((performance.now() - started) / 1000).toFixed(1)} s`;
    $("go").disabled = false;
  }
});
