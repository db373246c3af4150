import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, it } from "node:test";
import { pingEngine } from "./docker-runtime.ts";
import { DockerActivatorError } from "./errors.ts";
import { makeHarness } from "./test/support.ts";
import type { Harness } from "./test/support.ts";

describe("docker-activator's own coded errors", () => {
  let harness: Harness | undefined;
  afterEach(async () => {
    await harness?.cleanup();
    harness = undefined;
  });

  it("a second activator on a live one's socket is SOCKET_IN_USE", async () => {
    harness = await makeHarness();
    await harness.writeServer({ runtime: "process" });
    await harness.start();
    await assert.rejects(harness.start(), (e: unknown) => e instanceof DockerActivatorError && e.code === "SOCKET_IN_USE");
  });

  it("no engine on the Docker socket is ENGINE_UNAVAILABLE, naming the socket", async () => {
    const dir = mkdtempSync(join(tmpdir(), "coyote-engine-"));
    try {
      const socketPath = join(dir, "docker.sock");
      await assert.rejects(pingEngine(socketPath, 1000), (e: unknown) => e instanceof DockerActivatorError && e.code === "ENGINE_UNAVAILABLE" && e.message.includes(socketPath) && e.cause !== undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
