// The cache lock: one holder at a time, and a lock left by a process that died is taken over.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { tempDirs } from "@coyote/testing";
import { withLock } from "./lock.ts";

const temp = tempDirs("coyote-lock-");

describe("the cache lock", () => {
  it("lets one holder work at a time and removes the lock after", async () => {
    const path = join(temp(), "root.lock");
    const events: string[] = [];
    const work = (name: string) => async () => {
      events.push(`${name} in`);
      await sleep(100);
      events.push(`${name} out`);
    };
    await Promise.all([withLock(path, { timeoutMs: 10_000 }, work("a")), withLock(path, { timeoutMs: 10_000 }, work("b"))]);
    assert.deepEqual(events, ["a in", "a out", "b in", "b out"]);
    await assert.rejects(readFile(path), { code: "ENOENT" });
  });

  it("takes over a lock whose process has ended", async () => {
    const path = join(temp(), "root.lock");
    const dead = spawnSync("true").pid;
    await writeFile(path, `${String(dead)}\n`);
    assert.equal(await withLock(path, { timeoutMs: 3000 }, () => Promise.resolve("took it")), "took it");
  });

  it("waits for a live holder and gives up after its timeout, naming the holder", async () => {
    const path = join(temp(), "root.lock");
    await writeFile(path, `${String(process.ppid)}\n`);
    const waited: number[] = [];
    await assert.rejects(withLock(path, { timeoutMs: 700, onWait: (pid) => waited.push(pid) }, () => Promise.resolve()), new RegExp(`held by pid ${String(process.ppid)}`));
    assert.deepEqual(waited, [process.ppid]);
  });
});
