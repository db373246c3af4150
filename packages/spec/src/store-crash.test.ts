/**
 * Fault injection: a writer process is SIGKILLed at random moments, hundreds of times, while it
 * applies specs and rolls back in a tight loop. After every kill the spec files must be whole and
 * valid (the old or the new content of the write in flight, never torn, empty or missing), a
 * fresh open must recover, every acknowledged write must still be in the history, and at the end
 * the repository must pass `git fsck` with a history of well-formed commits.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, readlink, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Spec } from "./specs.ts";
import { INIT_MESSAGE, PENDING_JOURNAL, RECOVER_MESSAGE, StateStore } from "./store.ts";
import { git, gitWithInput } from "./test/support.ts";
import { AUTHOR, serviceSpec } from "./test/specs.ts";
import { parseSpec } from "./validate.ts";

const KILLS = 200;
// A write takes a few milliseconds (bench/store), tens under load, and the writer writes in a
// loop: a random delay up to this long after a signal lands the kills in every phase of a write.
const MAX_DELAY_MS = 100;
const FILES = ["services/blog.json", "services/shop.json"] as const;
const writerScript = fileURLToPath(new URL("./test/store-writer.ts", import.meta.url));

function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v === null || typeof v !== "object" || Array.isArray(v) ? v : Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1))),
  );
}

function content(spec: Spec): string {
  const { generation: _generation, ...rest } = spec;
  return canonical(rest);
}

function blobId(bytes: Buffer): string {
  return createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex");
}

/** The two contents each file may have, whatever the generation. */
const VARIANTS = new Map(FILES.map((file) => {
  const id = file === "services/blog.json" ? "blog" : "shop";
  return [file, new Set([0, 1].map((v) => content(parseSpec(serviceSpec(id, v), file))))];
}));

/** A small seeded generator, so that a failing run can be replayed with COYOTE_CRASH_SEED. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/**
 * How many git processes still run in the specs folder: those of a killed writer live on for a
 * moment (SIGKILL of node does not reach its children). Linux only; elsewhere 0.
 */
async function orphanGits(specs: string): Promise<number> {
  let found = 0;
  for (const pid of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => "");
    if (cwd !== specs) continue;
    const comm = (await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "")).trim();
    if (comm.startsWith("git")) found++;
  }
  return found;
}

interface Victim {
  readonly child: ChildProcessWithoutNullStreams;
  readonly lines: string[];
  stderr: string;
  waitFor(line: string | RegExp): Promise<void>;
}

function startVictim(root: string, rollbackTo: string, first: number, env: NodeJS.ProcessEnv): Victim {
  const child = spawn(process.execPath, [writerScript, root, rollbackTo, String(first)], { stdio: "pipe", env });
  const victim: Victim = {
    child,
    lines: [],
    stderr: "",
    waitFor: (line) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (victim.lines.some((l) => (typeof line === "string" ? l === line : line.test(l)))) {
            child.stdout.off("data", check);
            resolve();
          }
        };
        child.stdout.on("data", check);
        child.once("exit", () => {
          reject(new Error(`the writer exited before printing ${line}: ${victim.stderr}`));
        });
        check();
      }),
  };
  let buffer = "";
  child.stdout.setEncoding("utf8");
  child.stdout.prependListener("data", (chunk: string) => {
    buffer += chunk;
    const parts = buffer.split("\n");
    buffer = parts.pop() ?? "";
    victim.lines.push(...parts);
  });
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => (victim.stderr += chunk));
  return victim;
}

/**
 * Object ids of many `<rev>:<path>` or `<rev>^` names through one `git cat-file --batch-check`;
 * a name that does not exist maps to undefined.
 */
async function objectIds(root: string, names: readonly string[]): Promise<Map<string, string | undefined>> {
  const out = (await gitWithInput(root, names.map((n) => `${n}\n`).join(""), "cat-file", "--batch-check")).toString("utf8").trim().split("\n");
  return new Map(names.map((name, i) => [name, out[i]?.endsWith(" missing") === true ? undefined : out[i]?.split(" ")[0]]));
}

/** The blob ids of the spec files at a revision. */
async function treeOf(root: string, rev: string): Promise<Map<string, string | undefined>> {
  const ids = await objectIds(root, FILES.map((f) => `${rev}:${f}`));
  return new Map(FILES.map((f) => [f, ids.get(`${rev}:${f}`)]));
}

test(`SIGKILL of a writer at ${KILLS} random moments never tears, loses or corrupts specs`, { timeout: 300_000 }, async () => {
  const started = Date.now();
  const seed = Number(process.env.COYOTE_CRASH_SEED ?? Date.now() % 1_000_000);
  const rand = random(seed);
  const root = await mkdtemp(join(tmpdir(), "coyote-crash-"));
  const cache = await mkdtemp(join(tmpdir(), "coyote-crash-cache-"));
  // The compile cache keeps the type-stripped modules, so each victim starts in ~0.15 s, not ~0.4 s.
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_COMPILE_CACHE: cache };
  // The victims are plain programs, not test files of this run.
  delete env.NODE_TEST_CONTEXT;
  const victims: Victim[] = [];
  const counts = { kills: 0, acknowledged: 0, inFlight: 0, duringGit: 0, beforeFiles: 0, partialFiles: 0, afterFiles: 0, completed: 0, committed: 0, tookOver: 0, gitLocks: 0, temps: 0 };
  try {
    const setup = await StateStore.open(root);
    await setup.applySpec(serviceSpec("blog", 0), { author: AUTHOR });
    await setup.applySpec(serviceSpec("shop", 0), { author: AUTHOR });
    const rollbackTo = await setup.head();
    const specsDir = join(await realpath(root), "specs");
    const acknowledged = new Set<string>();

    // The next victim loads while the current one runs and is checked.
    const ahead = [startVictim(root, rollbackTo, 0, env)];
    victims.push(...ahead);
    for (let kill = 0; kill < KILLS; kill++) {
      const victim = ahead.shift();
      assert.ok(victim !== undefined);
      const next = startVictim(root, rollbackTo, kill + 1, env);
      ahead.push(next);
      victims.push(next);

      await victim.waitFor("loaded");
      victim.child.stdin.write("go\n");
      // A quarter of the kills count from the end of the open (they land in the first, cold write),
      // the others from the first acknowledged write (they land in the warm loop).
      await victim.waitFor(rand() < 0.25 ? "ready" : /^ok /);
      await sleep(rand() * MAX_DELAY_MS);
      const closed = new Promise((resolve) => victim.child.once("close", resolve));
      victim.child.kill("SIGKILL");
      // Look at once: an orphaned git process finishes within milliseconds.
      if ((await orphanGits(specsDir)) > 0) counts.duringGit++;
      await closed;
      assert.equal(victim.child.signalCode, "SIGKILL", `the writer died on its own: ${victim.stderr}`);
      counts.kills++;
      const acks = victim.lines.filter((l) => l.startsWith("ok ")).map((l) => l.slice(3));
      counts.acknowledged += acks.length;
      for (const ack of acks) acknowledged.add(ack);

      // 1. Before any recovery: each file is whole, valid, and the old or the new content of the
      //    write in flight (the branch's version, or the journaled commit's when it is in flight).
      // The store never packs refs, so the branch is a file (read at once, like a reader would).
      const head = (await readFile(join(root, "specs/.git/refs/heads/main"), "utf8")).trim();
      const pending = (await readFile(join(root, PENDING_JOURNAL), "utf8").catch(() => "")).trim();
      const journaled = /^[0-9a-f]{40}$/.test(pending) && pending !== head;
      const ids = await objectIds(root, [...FILES.map((f) => `${head}:${f}`), ...(journaled ? [`${pending}^`, ...FILES.map((f) => `${pending}:${f}`)] : [])]);
      const headTree = new Map(FILES.map((f) => [f, ids.get(`${head}:${f}`)]));
      const allowed = new Map<string, Set<string | undefined>>(FILES.map((f) => [f, new Set([headTree.get(f)])]));
      let pendingTree: Map<string, string | undefined> | undefined;
      if (journaled && ids.get(`${pending}^`) === head) {
        pendingTree = new Map(FILES.map((f) => [f, ids.get(`${pending}:${f}`)]));
        for (const file of FILES) allowed.get(file)?.add(pendingTree.get(file));
        counts.inFlight++;
      }
      let written = 0;
      let changing = 0;
      for (const file of FILES) {
        const bytes = await readFile(join(root, "specs", file)).catch(() => undefined);
        assert.ok(bytes !== undefined, `kill ${kill}: ${file} is missing`);
        const spec = parseSpec(JSON.parse(bytes.toString("utf8")), file);
        assert.ok(VARIANTS.get(file)?.has(content(spec)), `kill ${kill}: ${file} holds content nobody wrote`);
        const oid = blobId(bytes);
        assert.ok(allowed.get(file)?.has(oid), `kill ${kill}: ${file} is neither the committed nor the journaled version`);
        if (pendingTree !== undefined && pendingTree.get(file) !== headTree.get(file)) {
          changing++;
          if (oid === pendingTree.get(file)) written++;
        }
      }
      if (pendingTree !== undefined) {
        if (written === 0) counts.beforeFiles++;
        else if (written < changing) counts.partialFiles++;
        else counts.afterFiles++;
      }

      // 2. A fresh open recovers: the branch holds exactly what the files hold. (That no
      //    acknowledged write is lost is checked on the final history, which only ever grows.)
      const store = await StateStore.open(root);
      if (store.recovery.completed !== undefined) counts.completed++;
      if (store.recovery.committed !== undefined) counts.committed++;
      if (store.recovery.tookOverLockOf !== undefined) counts.tookOver++;
      counts.gitLocks += store.recovery.gitLocksRemoved.length;
      counts.temps += store.recovery.tempFilesRemoved.length;
      const recovered = await store.head();
      const tree = await treeOf(root, recovered);
      for (const file of FILES) assert.equal(tree.get(file), blobId(await readFile(join(root, "specs", file))), `kill ${kill}: ${file} differs from the history after recovery`);
      if (pendingTree !== undefined) {
        // Files already (partly) replaced: the journaled commit is finished; none: it is dropped.
        assert.equal(recovered, written > 0 ? pending : head, `kill ${kill}: the write in flight was ${written > 0 ? "not finished" : "not dropped"}`);
      }

      // 3. And the store takes writes again.
      const after = await store.applySpec(serviceSpec("blog", kill % 2), { author: AUTHOR });
      assert.equal(after.revision, await store.head());
    }

    // The end: fsck is clean and the history is a line of well-formed commits in which every spec
    // is valid and every generation counts up by one exactly when the content changes.
    assert.equal((await git(root, "fsck", "--full", "--strict", "--no-dangling", "--no-progress")).trim(), "");
    const log = (await git(root, "log", "--format=%H %P%x09%s", "--reverse", "refs/heads/main")).trim().split("\n");
    const commits = log.map((line) => {
      const [ids = "", subject = ""] = line.split("\t");
      const [oid = "", ...parents] = ids.split(" ").filter((id) => id !== "");
      return { oid, parents, subject };
    });
    commits.forEach((commit, i) => {
      assert.deepEqual(commit.parents, i === 0 ? [] : [commits[i - 1]?.oid], "a line, no merges");
      assert.match(commit.subject, /^(apply service (blog|shop) \(generation \d+\)|rollback to [0-9a-f]{12}: .+)$|^init: |^recover: /, commit.subject);
    });
    assert.equal(commits[0]?.subject, INIT_MESSAGE);
    for (const ack of acknowledged) assert.ok(commits.some((c) => c.oid === ack), `acknowledged ${ack} is in the history`);
    const input = commits.flatMap((c) => FILES.map((f) => `${c.oid}:${f}\n`)).join("");
    const out = await gitWithInput(root, input, "cat-file", "--batch");
    let at = 0;
    const last = new Map<string, { oid: string; spec: Spec }>();
    for (const commit of commits) {
      for (const file of FILES) {
        const newline = out.indexOf(0x0a, at);
        const header = out.subarray(at, newline).toString("utf8");
        at = newline + 1;
        if (header.endsWith(" missing")) {
          assert.ok(!last.has(file), `${file} vanished in ${commit.oid}`);
          continue;
        }
        const [oid = "", , size = "0"] = header.split(" ");
        const bytes = out.subarray(at, at + Number(size));
        at += Number(size) + 1;
        const spec = parseSpec(JSON.parse(bytes.toString("utf8")), `${file} at ${commit.oid}`);
        const previous = last.get(file);
        if (previous !== undefined && previous.oid !== oid) {
          assert.notEqual(content(spec), content(previous.spec), `${file} at ${commit.oid}: a new blob without a change`);
          assert.equal(spec.generation, (previous.spec.generation ?? 0) + 1, `${file} at ${commit.oid}: generation counts up by one`);
        }
        last.set(file, { oid, spec });
      }
    }
    const recoverCommits = commits.filter((c) => c.subject === RECOVER_MESSAGE).length;
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(
      `fault injection (seed ${seed}): ${counts.kills} kills in ${seconds} s, ${counts.acknowledged} acknowledged writes, ${commits.length} commits; ` +
        `${counts.duringGit} left a git process running, ${counts.inFlight} landed mid-commit (${counts.beforeFiles} before the files were replaced, ${counts.partialFiles} between the files of a rollback, ` +
        `${counts.afterFiles} after the files and before the branch moved); recovery finished ${counts.completed} journaled commits, made ${recoverCommits} recover commits, ` +
        `took over ${counts.tookOver} stale locks, removed ${counts.gitLocks} git locks and ${counts.temps} temporary files`,
    );
    assert.equal(counts.kills, KILLS);
  } finally {
    for (const victim of victims) if (victim.child.exitCode === null && victim.child.signalCode === null) victim.child.kill("SIGKILL");
    await rm(root, { recursive: true, force: true });
    await rm(cache, { recursive: true, force: true });
  }
});
