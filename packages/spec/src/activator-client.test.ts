import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ACTIVATOR_SOCKET, ActivatorClient, ActivatorError } from "./index.ts";

/** A stand-in for docker-activator's wake API that answers every request with one status and body. */
async function answering(stateDir: string, status: number, body: string): Promise<Server> {
  mkdirSync(join(stateDir, "run"), { recursive: true });
  const server = createServer((_req, res) => {
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(join(stateDir, ACTIVATOR_SOCKET), resolve));
  return server;
}

async function wakeAgainst(status: number, body: string): Promise<unknown> {
  const stateDir = mkdtempSync(join(tmpdir(), "coyote-wake-"));
  const server = await answering(stateDir, status, body);
  const client = new ActivatorClient(stateDir);
  try {
    await client.wake("blog", { timeoutMs: 2000 });
    return undefined;
  } catch (error) {
    return error;
  } finally {
    client.close();
    await new Promise((resolve) => server.close(resolve));
    rmSync(stateDir, { recursive: true, force: true });
  }
}

describe("the wake API's errors", () => {
  test("a code a wake answers with reaches the caller as it is, with its status", async () => {
    const error = await wakeAgainst(504, JSON.stringify({ error: { code: "WAKE_TIMEOUT", message: "waking unit blog: not ready within 1 s" } }));
    assert.ok(error instanceof ActivatorError);
    assert.equal(error.code, "WAKE_TIMEOUT");
    assert.equal(error.status, 504);
    assert.equal(error.message, "waking unit blog: not ready within 1 s");
  });

  test("any other code the activator answers with is WAKE_FAILED to the caller", async () => {
    const error = await wakeAgainst(503, JSON.stringify({ error: { code: "SOMETHING_NEW", message: "waking unit blog: new trouble" } }));
    assert.ok(error instanceof ActivatorError);
    assert.equal(error.code, "WAKE_FAILED");
  });

  test("an answer that is not the API's is BAD_ANSWER, with no status of its own", async () => {
    const error = await wakeAgainst(502, "<html>bad gateway</html>");
    assert.ok(error instanceof ActivatorError);
    assert.equal(error.code, "BAD_ANSWER");
    assert.equal(error.status, undefined);
    assert.match(error.message, /^docker-activator: blog: unexpected answer 502: /);
  });
});
