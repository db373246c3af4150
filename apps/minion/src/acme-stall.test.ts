import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { createSnickersActuator } from "@coyote/actuator-snickers";
import { startStalledCa } from "@coyote/actuator-snickers/testing";
import { createLogger, logFileFor } from "@coyote/log";
import { waitFor } from "@coyote/testing";
import { StateStore } from "@coyote/spec";
import { Minion } from "./minion.ts";
import { createFileActuator } from "./test/file-actuator.ts";

const AUTHOR = { name: "Test", email: "test@example.org" };
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const until = <T>(what: string, check: () => T | undefined | false, timeoutMs: number): Promise<T> => waitFor(what, check, { timeoutMs, intervalMs: 5 });

describe("minion: a stalled CA", () => {
  test("other services keep converging while a certificate order is stuck, and the order ends at its deadline", async () => {
    const root = mkdtempSync(join(tmpdir(), "coyote-minion-"));
    dirs.push(root);
    const stateDir = join(root, "state");
    const ca = await startStalledCa(join(root, "ca"));
    const store = await StateStore.open(stateDir, { author: AUTHOR });
    const logger = createLogger({ component: "minion", file: logFileFor(stateDir, "minion") });
    const out = join(root, "files-daemon");
    const files = createFileActuator({ dir: out });
    const ORDER_TIMEOUT_MS = 3000;
    // The CA gets every request's default deadline (20 s): only the order's deadline ends it.
    const minion = new Minion({
      stateDir, logger, debounceMs: 10, backoffInitialMs: 20, backoffMaxMs: 100,
      actuators: () => [files, createSnickersActuator({ stateDir, orderTimeoutMs: ORDER_TIMEOUT_MS, orderPollMs: 100 })],
    });
    const live = (id: string) => (existsSync(join(out, "live", `${id}.txt`)) ? readFileSync(join(out, "live", `${id}.txt`), "utf8") : undefined);
    const web = () => minion.statuses.get("shop")?.conditions.find((c) => c.type === "WebReady");
    try {
      await store.applySpec({ schemaVersion: 1, kind: "Server", name: "box", hostname: "box.test", certificates: { mode: "acme", directoryUrl: ca.directoryUrl, email: "admin@box.test", caBundleFile: ca.caFile } }, { author: AUTHOR });
      await store.applySpec({ schemaVersion: 1, kind: "Service", id: "blog", domains: [{ name: "blog.example" }], description: "one" }, { author: AUTHOR });
      await store.applySpec({ schemaVersion: 1, kind: "Service", id: "shop", domains: [{ name: "shop.example" }], web: { hostnames: ["shop.example"], backend: { kind: "static", root: "." } } }, { author: AUTHOR });
      const started = Date.now();
      await minion.start();
      const pending = await until("the order under way", () => (web()?.reason === "CertificatePending" ? web() : undefined), 2000);
      assert.equal(pending.status, "False");
      await until("the order talking to the CA", () => ca.openConnections() > 0, 2000);

      // While the order is stuck, a change to another service lands within a bound.
      const changed = Date.now();
      await store.applySpec({ schemaVersion: 1, kind: "Service", id: "blog", domains: [{ name: "blog.example" }], description: "two" }, { author: AUTHOR });
      await until("blog's change applied", () => live("blog") === "two\n", 1000);
      assert.ok(Date.now() - changed < 1000, "another service converges while the order is stuck");
      assert.equal(web()?.reason, "CertificatePending", "the order is still stuck meanwhile");
      assert.ok(ca.openConnections() > 0);

      // The stuck order ends at its deadline, and the condition says so.
      const failed = await until("the order to time out", () => (web()?.reason === "CertificateBackoff" ? web() : undefined), ORDER_TIMEOUT_MS + 3000);
      assert.match(failed.message, /ordering a certificate for shop\.example from https:\/\/localhost:\d+\/dir: the order did not finish before its deadline\); next attempt at /);
      assert.ok(Date.now() - started >= ORDER_TIMEOUT_MS);
      assert.equal(minion.statuses.get("blog")?.conditions.find((c) => c.type === "Ready")?.status, "True");
    } finally {
      await minion.stop();
      await ca.stop();
      await logger.close();
    }
  });
});
