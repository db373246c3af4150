import assert from "node:assert/strict";
import { mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createLogger } from "@coyote/log";
import { StateStore, writeFileAtomic, type ServerSpec } from "@coyote/spec";
import { ActuatorError, DirectoryCache, converge, isActuator, type Actuator } from "./index.ts";

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "coyote-actuator-"));
  dirs.push(dir);
  return dir;
}

describe("DirectoryCache", () => {
  test("reads a folder once, re-reads only changed files, and sees additions and removals", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "a.conf"), "alpha");
    writeFileSync(join(dir, "b.conf"), "beta");
    writeFileSync(join(dir, ".b.conf.123.tmp"), "half written");
    const parsed: string[] = [];
    const cache = new DirectoryCache(dir, (name) => name.endsWith(".conf") && !name.startsWith("."), (name, text) => {
      parsed.push(name);
      return text.toUpperCase();
    });
    assert.deepEqual([...(await cache.read()).entries()], [["a.conf", "ALPHA"], ["b.conf", "BETA"]]);
    assert.deepEqual(parsed, ["a.conf", "b.conf"]);

    await cache.read();
    assert.equal(parsed.length, 2, "nothing is re-read while the folder is unchanged");

    await sleep(5);
    await writeFileAtomic(join(dir, "b.conf"), "beta two");
    await writeFileAtomic(join(dir, "c.conf"), "gamma");
    unlinkSync(join(dir, "a.conf"));
    assert.deepEqual([...(await cache.read()).entries()], [["b.conf", "BETA TWO"], ["c.conf", "GAMMA"]]);
    assert.deepEqual(parsed.slice(2), ["b.conf", "c.conf"], "only the changed and new files are read");
  });

  test("after this process's own writes it sees them, and a file replaced by anyone else between them too", async () => {
    const dir = tempDir();
    for (const name of ["a", "b", "c"]) writeFileSync(join(dir, `${name}.conf`), name);
    const cache = new DirectoryCache(dir, (name) => name.endsWith(".conf"), (_name, text) => text);
    assert.deepEqual([...(await cache.read()).values()], ["a", "b", "c"]);

    // Only its own writes: each one is seen.
    await sleep(20);
    await writeFileAtomic(join(dir, "b.conf"), "b2");
    await sleep(20);
    await writeFileAtomic(join(dir, "d.conf"), "d");
    assert.deepEqual([...(await cache.read()).values()], ["a", "b2", "c", "d"]);

    // Another writer replaces a.conf (a rename it is not told of) between two of its own writes.
    await sleep(20);
    await writeFileAtomic(join(dir, "b.conf"), "b3");
    await sleep(20);
    writeFileSync(join(dir, ".a.conf.tmp"), "a by another writer");
    renameSync(join(dir, ".a.conf.tmp"), join(dir, "a.conf"));
    await sleep(20);
    await writeFileAtomic(join(dir, "c.conf"), "c2");
    assert.deepEqual([...(await cache.read()).values()], ["a by another writer", "b3", "c2", "d"]);

    // Looks asked for at once run one after another and agree.
    await sleep(20);
    await writeFileAtomic(join(dir, "d.conf"), "d2");
    const views = await Promise.all([cache.read(), cache.read(), cache.read()]);
    for (const view of views) assert.deepEqual([...view.values()], ["a by another writer", "b3", "c2", "d2"]);
  });

  test("a missing folder has no files; a file the parser refuses is left out", async () => {
    const dir = tempDir();
    const cache = new DirectoryCache(join(dir, "none"), () => true, (_n, text) => (text === "bad" ? undefined : text));
    assert.equal((await cache.read()).size, 0);
    const other = new DirectoryCache(dir, () => true, (_n, text) => (text === "bad" ? undefined : text));
    writeFileSync(join(dir, "x"), "bad");
    writeFileSync(join(dir, "y"), "good");
    assert.deepEqual([...(await other.read()).keys()], ["y"]);
  });
});

describe("the actuator contract", () => {
  const noop: Actuator<string, string> = {
    id: "actuator.test.noop",
    condition: "NoopReady",
    observe: () => Promise.resolve("seen"),
    plan: (_target, observed) => (observed === "seen" ? { steps: [], describe: [] } : { steps: ["x"], describe: ["x"] }),
    apply: () => Promise.reject(new Error("must not be called for an empty plan")),
  };

  test("isActuator checks the shape and the namespaced id", () => {
    assert.equal(isActuator(noop), true);
    assert.equal(isActuator({ ...noop, id: "dnsconf" }), false);
    assert.equal(isActuator({ ...noop, plan: undefined }), false);
    assert.equal(isActuator(null), false);
  });

  test("converge applies only a plan with steps", async () => {
    const stateDir = tempDir();
    const store = await StateStore.open(stateDir);
    const server = { kind: "Server" } as ServerSpec;
    const context = { stateDir, store, logger: createLogger({ component: "test", level: "silent" }), signal: new AbortController().signal, server };
    const target = { id: "svc", spec: undefined };
    assert.deepEqual(await converge(noop, target, context), { changed: false, plan: { steps: [], describe: [] } });
    const applied: string[][] = [];
    const busy: Actuator<string, string> = { ...noop, observe: () => Promise.resolve("stale"), apply: (plan) => Promise.resolve(void applied.push([...plan.steps])) };
    assert.equal((await converge(busy, target, context)).changed, true);
    assert.deepEqual(applied, [["x"]]);
  });

  test("ActuatorError carries the reason and whether retrying can help", () => {
    const terminal = new ActuatorError("InvalidZone", "zone x: bad", { terminal: true });
    assert.equal(terminal.terminal, true);
    assert.equal(terminal.reason, "InvalidZone");
    const cause = new Error("io");
    const transient = new ActuatorError("ReadFailed", "reading x: io", { cause });
    assert.equal(transient.terminal, false);
    assert.equal(transient.cause, cause);
  });
});
