import assert from "node:assert/strict";
import { chmod, readFile, stat } from "node:fs/promises";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { StateStore, StateTooNewError, STATE_VERSION, STATE_VERSION_FILE } from "@coyote/spec";
import { tempDirs } from "@coyote/testing";
import { CliError } from "../errors.ts";
import { fastPrepare, fingerprint, ProcessServices, testMigrate, writeCheckout, type Behaviour } from "../test/releases.ts";
import { readReleaseLink, switchRelease } from "./switch.ts";
import { prepareRelease } from "./prepare.ts";
import { rollbackUpdate, update, type UpdateContext } from "./update.ts";

const tempDir = tempDirs("coyote-update-");
const COMPONENTS = ["minion", "docker-activator", "snitch-proxy", "coyote-crm"];
const AUTHOR = { name: "Test", email: "test@example.org" };
const managers: ProcessServices[] = [];
after(async () => {
  for (const manager of managers) await manager.stopAll();
});

interface Box {
  readonly root: string;
  readonly stateDir: string;
  readonly source: string;
  readonly services: ProcessServices;
  readonly ctx: UpdateContext;
  readonly said: string[];
  readonly oldRelease: string;
}

/**
 * A box running release 1.0.0 of a tiny checkout: the release prepared and current, a state folder
 * with one spec (opened by this build, so at today's state version), every component running and
 * beating.
 */
async function runningBox(): Promise<Box> {
  const dir = tempDir();
  const root = join(dir, "opt");
  const stateDir = join(dir, "state");
  const source = join(dir, "src");
  await writeCheckout(source, "1.0.0", {});
  const first = await prepareRelease(source, root, fastPrepare());
  await switchRelease(root, first.release);
  const store = await StateStore.open(stateDir);
  await store.applySpec({ schemaVersion: 1, kind: "Service", id: "alice", domains: [{ name: "alice.example" }] }, { author: AUTHOR });
  const services = new ProcessServices(root, stateDir);
  managers.push(services);
  const said: string[] = [];
  const ctx: UpdateContext = {
    root,
    stateDir,
    services,
    components: COMPONENTS,
    migrate: testMigrate,
    health: { timeoutMs: 3000, intervalMs: 50, settleMs: 200 },
    env: process.env,
    say: (line) => said.push(line),
  };
  for (const component of COMPONENTS) await services.restart(component);
  return { root, stateDir, source, services, ctx, said, oldRelease: first.release };
}

/** What of the state folder a migration may change: the specs folder and the version file. */
async function stateShape(stateDir: string): Promise<string[]> {
  return [...(await fingerprint(join(stateDir, "specs"))), await readFile(join(stateDir, STATE_VERSION_FILE), "utf8")];
}

async function releasesRunning(box: Box): Promise<string[]> {
  return Promise.all(COMPONENTS.map((c) => readFile(join(box.stateDir, "logs", `${c}.release`), "utf8")));
}

async function newRelease(box: Box, behaviour: Behaviour): Promise<void> {
  await writeCheckout(box.source, "1.1.0", behaviour);
}

describe("coyote update", () => {
  test("a good release: state migrated by the new release's own code, links switched, every component restarted on it in order", async () => {
    const box = await runningBox();
    await newRelease(box, { migrate: "bump" });
    const result = await update(box.source, box.ctx, fastPrepare());
    assert.equal(result.changed, true);
    assert.match(result.release, /^1\.1\.0-/);
    assert.equal(result.previous, box.oldRelease);
    assert.equal(await readReleaseLink(box.root, "current"), result.release);
    assert.equal(await readReleaseLink(box.root, "previous"), box.oldRelease);
    assert.deepEqual(await releasesRunning(box), COMPONENTS.map(() => result.release));
    assert.deepEqual(box.services.restarts.slice(COMPONENTS.length), COMPONENTS, "restarted one by one, in order");
    assert.equal((JSON.parse(await readFile(join(box.stateDir, STATE_VERSION_FILE), "utf8")) as { schemaVersion: number }).schemaVersion, STATE_VERSION + 1);
    assert.ok(box.said.includes(`migrated from ${STATE_VERSION} to ${STATE_VERSION + 1}`), box.said.join("\n"));
    // Running it again with the same checkout changes nothing.
    assert.equal((await update(box.source, box.ctx, fastPrepare())).changed, false);
  });

  test("a release whose component never beats is rolled back by itself: old release current, state as before, every component up on it", async () => {
    const box = await runningBox();
    const before = await stateShape(box.stateDir);
    await newRelease(box, { migrate: "bump", silent: ["snitch-proxy"] });
    await assert.rejects(update(box.source, box.ctx, fastPrepare()), (error: unknown) => {
      assert.ok(error instanceof CliError, String(error));
      assert.match(error.message, /^snitch-proxy did not come up healthy on release 1\.1\.0-[0-9a-f]+ \(not healthy within 3 s: .*stats\/snitch-proxy\.json was written by pid \d+, not by the running pid \d+\); its log: .*logs\/snitch-proxy\.log/);
      assert.match(error.message, new RegExp(`rolled back to release ${box.oldRelease}; the state folder was restored`));
      return true;
    });
    assert.equal(await readReleaseLink(box.root, "current"), box.oldRelease);
    assert.deepEqual(await stateShape(box.stateDir), before, "the specs and the version file are as before the update");
    assert.deepEqual(await releasesRunning(box), COMPONENTS.map(() => box.oldRelease));
    assert.ok((await box.services.pids(COMPONENTS)).every((pid) => pid !== undefined), "every component runs again");
    // The restored state opens in this build, which the migrated one did not.
    await StateStore.open(box.stateDir);
  });

  test("a release whose component exits at once is rolled back too, and says where its log is", async () => {
    const box = await runningBox();
    await newRelease(box, { exit: ["minion"] });
    await assert.rejects(update(box.source, box.ctx, fastPrepare()), (error: unknown) => error instanceof CliError && /^minion did not come up healthy on release 1\.1\.0-[0-9a-f]+ \(not healthy within 3 s: its process is not running\); its log: .*logs\/minion\.log/.test(error.message) && /rolled back to release 1\.0\.0-/.test(error.message));
    assert.equal(await readReleaseLink(box.root, "current"), box.oldRelease);
    assert.deepEqual(await releasesRunning(box), COMPONENTS.map(() => box.oldRelease));
  });

  test("a migration that fails half-way switches nothing and leaves the state and the components as they were", async () => {
    const box = await runningBox();
    const before = await stateShape(box.stateDir);
    const pids = await box.services.pids(COMPONENTS);
    await newRelease(box, { migrate: "fail" });
    await assert.rejects(update(box.source, box.ctx, fastPrepare()), (error: unknown) => error instanceof CliError && /migrating the state folder with release 1\.1\.0-.*migration failed half-way/s.test(error.message) && /nothing was switched/.test(error.message));
    assert.equal(await readReleaseLink(box.root, "current"), box.oldRelease);
    assert.deepEqual(await stateShape(box.stateDir), before);
    assert.deepEqual(await box.services.pids(COMPONENTS), pids, "no component was restarted");
  });

  test("coyote update --rollback after a good update goes back to the old release and the state copy taken before it", async () => {
    const box = await runningBox();
    const before = await stateShape(box.stateDir);
    await newRelease(box, { migrate: "bump" });
    const result = await update(box.source, box.ctx, fastPrepare());
    await assert.rejects(StateStore.open(box.stateDir), (error: unknown) => error instanceof StateTooNewError, "the migrated state does not open in the older build");
    const back = await rollbackUpdate(box.ctx);
    assert.deepEqual(back, { release: box.oldRelease, previous: result.release, changed: true, restored: true });
    assert.equal(await readReleaseLink(box.root, "current"), box.oldRelease);
    assert.equal(await readReleaseLink(box.root, "previous"), result.release);
    assert.deepEqual(await stateShape(box.stateDir), before);
    assert.deepEqual(await releasesRunning(box), COMPONENTS.map(() => box.oldRelease));
    await StateStore.open(box.stateDir);
  });

  test("run as root on a state folder another user owns, the migration runs as that user, so what it writes stays theirs", { skip: process.getuid?.() !== 0 && "needs root" }, async () => {
    const box = await runningBox();
    // The folders above the state and the release must be passable by that user, as /var/lib and /opt are.
    await chmod(join(box.stateDir, ".."), 0o755);
    execFileSync("chown", ["-R", "65534:65534", box.stateDir]);
    await newRelease(box, { migrate: "bump" });
    await update(box.source, box.ctx, fastPrepare());
    const file = await stat(join(box.stateDir, STATE_VERSION_FILE));
    assert.equal(file.uid, 65534, "the version file the migration wrote belongs to the state folder's owner");
  });
});
