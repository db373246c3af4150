import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { CoyoteError } from "./errors.ts";
import { acquireFileLock, isHolderAlive, processStartTime, readLockHolder, type LockHolder } from "./lock.ts";

const holderScript = fileURLToPath(new URL("./test/lock-holder.ts", import.meta.url));

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "coyote-lock-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Starts a process that holds the lock and resolves once it does. */
async function startHolder(path: string, holdMs?: number): Promise<ChildProcessWithoutNullStreams> {
  const child = spawn(process.execPath, [holderScript, path, ...(holdMs === undefined ? [] : [String(holdMs)])], { stdio: "pipe" });
  let out = "";
  child.stdout.setEncoding("utf8");
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: string) => {
      out += chunk;
      if (out.includes("locked")) resolve();
    });
    child.once("exit", (code) => {
      reject(new Error(`lock holder exited early (${code ?? "signal"})`));
    });
  });
  return child;
}

async function kill(child: ChildProcessWithoutNullStreams): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGKILL");
  await exited;
}

function staleHolder(overrides: Partial<LockHolder>): LockHolder {
  return { pid: process.pid, hostname: hostname(), acquiredAt: new Date().toISOString(), nonce: "stale", ...overrides };
}

describe("acquireFileLock", () => {
  test("takes a free lock, names the holder in it and removes it on release", async () => {
    const path = join(dir, "free.lock");
    const lock = await acquireFileLock(path, { timeoutMs: 100 });
    const holder = await readLockHolder(path);
    assert.equal(holder?.pid, process.pid);
    assert.equal(holder.startTime, processStartTime(process.pid));
    assert.ok(holder.startTime !== undefined, "the start time comes from /proc");
    assert.ok(isHolderAlive(lock.holder));
    await lock.release();
    assert.equal(await readLockHolder(path), undefined);
    assert.deepEqual((await readdir(dir)).filter((n) => n.includes("free.lock")), []);
  });

  test("a live holder in another process makes it wait, then fail with STORE_ERR_LOCKED naming the pid", async () => {
    const path = join(dir, "held.lock");
    const child = await startHolder(path);
    try {
      const started = Date.now();
      await assert.rejects(acquireFileLock(path, { timeoutMs: 400, what: "the test store" }), (error: unknown) => {
        assert.ok(error instanceof CoyoteError);
        assert.equal(error.code, "STORE_ERR_LOCKED");
        assert.match(error.message, new RegExp(`^locking the test store: held by pid ${child.pid ?? -1} `));
        return true;
      });
      assert.ok(Date.now() - started >= 400, "it waited for the timeout");
    } finally {
      await kill(child);
    }
    // Killed, its lock is stale and taken over at once.
    const lock = await acquireFileLock(path, { timeoutMs: 0 });
    assert.equal(lock.tookOver?.pid, child.pid);
    await lock.release();
  });

  test("gets the lock when the holder releases it during the wait", async () => {
    const path = join(dir, "released.lock");
    const child = await startHolder(path, 300);
    try {
      const lock = await acquireFileLock(path, { timeoutMs: 5_000 });
      assert.equal(lock.tookOver, undefined);
      await lock.release();
    } finally {
      await kill(child);
    }
  });

  test("takes over a lock of a dead pid, of a reused pid and of an earlier boot", async () => {
    const dead = spawn(process.execPath, ["-e", ""]);
    await once(dead, "exit");
    const cases: Array<[string, LockHolder]> = [
      ["dead pid", staleHolder({ pid: dead.pid ?? 999_999_999 })],
      ["reused pid (other start time)", staleHolder({ startTime: "1" })],
      ["earlier boot", staleHolder({ startTime: processStartTime(process.pid), bootId: "00000000-0000-0000-0000-000000000000" })],
    ];
    for (const [what, holder] of cases) {
      const path = join(dir, `stale-${what.replace(/\W+/g, "-")}.lock`);
      await writeFile(path, JSON.stringify(holder));
      assert.equal(isHolderAlive(holder), false, what);
      const lock = await acquireFileLock(path, { timeoutMs: 0 });
      assert.equal(lock.tookOver?.nonce, "stale", what);
      assert.equal((await readLockHolder(path))?.nonce, lock.holder.nonce, what);
      await lock.release();
    }
  });

  test("takes over a lock of a zombie (killed, not yet reaped by its parent)", async () => {
    // `sleep 0.05` dies but is never reaped: its parent became `sleep 5` through exec.
    const parent = spawn("/bin/sh", ["-c", "sleep 0.05 & echo $!; exec sleep 5"], { stdio: ["ignore", "pipe", "ignore"] });
    try {
      const [line] = (await once(parent.stdout, "data")) as [Buffer];
      const pid = Number(line.toString("utf8").trim());
      const startTime = processStartTime(pid);
      await sleep(300);
      assert.match(await readFile(`/proc/${pid}/stat`, "utf8"), /\) Z /, "the child is a zombie");
      const holder = staleHolder({ pid, ...(startTime === undefined ? {} : { startTime }) });
      assert.equal(isHolderAlive(holder), false);
      const path = join(dir, "zombie.lock");
      await writeFile(path, JSON.stringify(holder));
      const lock = await acquireFileLock(path, { timeoutMs: 0 });
      assert.equal(lock.tookOver?.pid, pid);
      await lock.release();
    } finally {
      const exited = once(parent, "exit");
      parent.kill("SIGKILL");
      await exited;
    }
  });

  test("many waiters taking over one stale lock never hold it together", async () => {
    const path = join(dir, "race.lock");
    await writeFile(path, JSON.stringify(staleHolder({ startTime: "1" })));
    let inside = 0;
    let maxInside = 0;
    let tookOver = 0;
    await Promise.all(
      Array.from({ length: 12 }, async () => {
        const lock = await acquireFileLock(path, { timeoutMs: 20_000 });
        if (lock.tookOver !== undefined) tookOver++;
        inside++;
        maxInside = Math.max(maxInside, inside);
        await sleep(5);
        inside--;
        await lock.release();
      }),
    );
    assert.equal(maxInside, 1);
    assert.equal(tookOver, 1, "the stale lock was taken over exactly once");
    assert.deepEqual((await readdir(dir)).filter((n) => n.includes("race.lock")), []);
  });

  test("a breaker left by a process that died while breaking a stale lock does not block", async () => {
    const path = join(dir, "breaker.lock");
    await writeFile(path, JSON.stringify(staleHolder({ startTime: "1" })));
    await writeFile(`${path}.break`, JSON.stringify(staleHolder({ startTime: "1", nonce: "dead breaker" })));
    const lock = await acquireFileLock(path, { timeoutMs: 1_000 });
    assert.equal(lock.tookOver?.nonce, "stale");
    await lock.release();
    assert.deepEqual((await readdir(dir)).filter((n) => n.includes("breaker.lock")), []);
  });

  test("a lock file that does not say who holds it is stale only when old", async () => {
    const path = join(dir, "garbage.lock");
    await writeFile(path, "");
    await assert.rejects(acquireFileLock(path, { timeoutMs: 50 }), (error: unknown) => error instanceof CoyoteError && error.code === "STORE_ERR_LOCKED");
    const { utimes } = await import("node:fs/promises");
    const old = new Date(Date.now() - 120_000);
    await utimes(path, old, old);
    const lock = await acquireFileLock(path, { timeoutMs: 50 });
    await lock.release();
    assert.equal(await readFile(path, "utf8").catch(() => "gone"), "gone");
  });
});
