import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { ServiceStatus, StateStore, validate } from "@coyote/spec";

const AUTHOR = { name: "Test", email: "test@example.org" };
const CHILD = join(import.meta.dirname, "test", "minion-child.ts");
const KILLS = 20;
const SERVICES = 24;

const children = new Set<ChildProcess>();
const dirs: string[] = [];
after(() => {
  for (const child of children) child.kill("SIGKILL");
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Starts the minion in its own process (Node strips the types itself: faster than tsx). */
function startMinion(stateDir: string): ChildProcess {
  const out = openSync(join(stateDir, "child.out"), "a");
  const child = spawn(process.execPath, [CHILD, stateDir], { stdio: ["ignore", out, out] });
  closeSync(out);
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

function description(id: string, round: number): string {
  return `${id} in round ${round}`;
}

/** Whether every service is converged: live content, Ready, and the generation observed. */
function converged(stateDir: string, wanted: Map<string, { content: string; generation: number }>): string | undefined {
  for (const [id, want] of wanted) {
    const live = join(stateDir, "files-daemon", "live", `${id}.txt`);
    if (!existsSync(live) || readFileSync(live, "utf8") !== want.content) return `${id}: live content`;
    const statusFile = join(stateDir, "status", `${id}.json`);
    if (!existsSync(statusFile)) return `${id}: no status`;
    const status = validate(ServiceStatus, JSON.parse(readFileSync(statusFile, "utf8")), statusFile);
    if (status.observedGeneration !== want.generation) return `${id}: generation ${status.observedGeneration} of ${want.generation}`;
    if (status.conditions.find((c) => c.type === "Ready")?.status !== "True") return `${id}: not ready`;
  }
  const extra = readdirSync(join(stateDir, "files-daemon", "live")).filter((f) => !wanted.has(f.replace(/\.txt$/, "")));
  if (extra.length > 0) return `left over: ${extra.join(", ")}`;
  return undefined;
}

test(`SIGKILL of the minion mid-apply, ${KILLS} times at random moments: every restart converges`, { timeout: 240_000 }, async () => {
  const stateDir = mkdtempSync(join(tmpdir(), "coyote-minion-crash-"));
  dirs.push(stateDir);
  const store = await StateStore.open(stateDir, { author: AUTHOR });
  const wanted = new Map<string, { content: string; generation: number }>();
  const apply = async (id: string, round: number) => {
    const result = await store.applySpec({ schemaVersion: 1, kind: "Service", id, domains: [{ name: `${id}.example` }], description: description(id, round) }, { author: AUTHOR });
    wanted.set(id, { content: `${description(id, round)}\n`, generation: result.generation });
  };
  for (let i = 0; i < SERVICES; i++) await apply(`svc-${i}`, 0);

  let midWork = 0;
  for (let round = 1; round <= KILLS; round++) {
    // Change a third of the services, delete one and add one, so each run has real work to do.
    for (let i = round % 3; i < SERVICES; i += 3) if (wanted.has(`svc-${i}`)) await apply(`svc-${i}`, round);
    const victim = [...wanted.keys()][round % wanted.size];
    if (victim && round % 4 === 0) {
      await store.deleteSpec(victim, { author: AUTHOR });
      wanted.delete(victim);
    }
    if (round % 5 === 0) await apply(`new-${round}`, round);

    const child = startMinion(stateDir);
    await sleep(150 + Math.random() * 350);
    if (converged(stateDir, wanted) !== undefined) midWork += 1;
    await kill(child);
  }

  const child = startMinion(stateDir);
  const deadline = Date.now() + 60_000;
  let problem = converged(stateDir, wanted);
  while (problem !== undefined && Date.now() < deadline) {
    await sleep(50);
    problem = converged(stateDir, wanted);
  }
  assert.equal(problem, undefined, `the restarted minion converges (${problem ?? ""})`);
  // The owed-commit journal is empty once converged: nothing is left half-committed.
  const journal = join(stateDir, "minion", "pending-commits.json");
  await sleep(100);
  if (existsSync(journal)) assert.deepEqual(JSON.parse(readFileSync(journal, "utf8")), []);
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
  assert.ok(midWork >= KILLS / 2, `most kills landed while work was under way (${midWork} of ${KILLS})`);
});
