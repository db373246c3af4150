import assert from "node:assert/strict";
import { stat, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { afterEach, describe, it } from "node:test";
import { ACTIVATOR_SOCKET, ControlError, parseJson } from "@coyote/spec";
import { ActivatorClient, ActivatorError } from "@coyote/spec";
import { component } from "./index.ts";
import { makeHarness } from "./test/support.ts";
import type { Harness } from "./test/support.ts";

function raw(socketPath: string, method: string, path: string, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, agent: false, timeout: 5000, headers: body === undefined ? {} : { "content-type": "application/json" } }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("the wake api", () => {
  let harness: Harness | undefined;
  afterEach(async () => {
    await harness?.cleanup();
    harness = undefined;
  });

  it("is a component with a start and no plannedIn", () => {
    assert.equal(component.name, "docker-activator");
    assert.equal(typeof component.start, "function");
    assert.equal(component.plannedIn, undefined);
  });

  it("listens on run/docker-activator.sock with mode 0600, replacing a stale socket file", async () => {
    harness = await makeHarness();
    await harness.writeServer({ runtime: "process" });
    const socketPath = join(harness.stateDir, ACTIVATOR_SOCKET);
    await writeFile(socketPath, "left over by a killed activator");
    const running = await harness.start();
    assert.equal(running.socketPath, socketPath);
    const s = await stat(socketPath);
    assert.ok(s.isSocket());
    assert.equal(s.mode & 0o777, 0o600);
  });

  it("refuses to take the socket of a live activator", async () => {
    harness = await makeHarness();
    await harness.writeServer({ runtime: "process" });
    await harness.start();
    await assert.rejects(harness.start(), (e: unknown) => e instanceof Error && /another docker-activator answers on .*docker-activator\.sock/.test(e.message));
  });

  it("answers errors as ControlError bodies: 400 for a bad body, 404 for an unknown endpoint or unit", async () => {
    harness = await makeHarness();
    await harness.writeServer({ runtime: "process" });
    const { socketPath } = await harness.start();
    const bad = await raw(socketPath, "POST", "/wake", JSON.stringify({ unit: "Not An Id" }));
    assert.equal(bad.status, 400);
    assert.equal(parseJson(ControlError, bad.text, "answer").error.code, "BAD_REQUEST");
    assert.match(bad.text, /POST \/wake: unit/);
    const notJson = await raw(socketPath, "POST", "/activity", "{");
    assert.equal(notJson.status, 400);
    const missing = await raw(socketPath, "GET", "/nothing");
    assert.equal(missing.status, 404);
    assert.equal(parseJson(ControlError, missing.text, "answer").error.code, "NOT_FOUND");
    const unknown = await raw(socketPath, "POST", "/wake", JSON.stringify({ unit: "nobody" }));
    assert.equal(unknown.status, 404);
    assert.equal(parseJson(ControlError, unknown.text, "answer").error.code, "UNIT_UNKNOWN");
    const units = await raw(socketPath, "GET", "/units");
    assert.equal(units.status, 200);
    assert.deepEqual(JSON.parse(units.text), { units: {} });
  });

  it("gives the client its typed errors, and ACTIVATOR_UNREACHABLE when nothing listens", async () => {
    harness = await makeHarness();
    await harness.writeServer({ runtime: "process" });
    const client = new ActivatorClient(harness.stateDir);
    try {
      await assert.rejects(client.wake("blog", { timeoutMs: 2000 }), (e: unknown) => e instanceof ActivatorError && e.code === "ACTIVATOR_UNREACHABLE" && e.message.includes(client.socketPath));
      await harness.start();
      await assert.rejects(client.wake("blog", { timeoutMs: 2000 }), (e: unknown) => e instanceof ActivatorError && e.code === "UNIT_UNKNOWN" && e.message.includes("unit blog"));
      await client.reportActivity({ units: { blog: { requests: 1, openConnections: 0, bytesIn: 1, bytesOut: 1 } } });
      assert.deepEqual(await client.units(), { units: {} });
    } finally {
      client.close();
    }
  });
});
