import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, test } from "node:test";
import { CoyoteError } from "./errors.ts";
import { MIGRATIONS } from "./migrations/index.ts";
import { OLD_DOVECOT_USERS } from "./migrations/v2-dovecot-users-moved.ts";
import type { ServiceSpec } from "./specs.ts";
import { lastVersionOf, migrateState, readStateVersion, STATE_VERSION, STATE_VERSION_FILE, StateTooNewError } from "./state-version.ts";
import { StateStore } from "./store.ts";
import { filesOnly, victimMigrations } from "./test/migration-victim.ts";
import { fingerprint } from "./test/support.ts";

const run = promisify(execFile);
const victim = fileURLToPath(new URL("./test/migration-victim.ts", import.meta.url));
const HASH = "{SCRAM-SHA-1}4096,c2FsdHNhbHRzYWx0c2FsdA==,AAAAAAAAAAAAAAAAAAAAAAAAAAA=,BBBBBBBBBBBBBBBBBBBBBBBBBBB=";

async function versionOf(root: string): Promise<number | undefined> {
  try {
    return (JSON.parse(await readFile(join(root, STATE_VERSION_FILE), "utf8")) as { schemaVersion: number }).schemaVersion;
  } catch {
    return undefined;
  }
}

/**
 * A state folder as a build from before the version file left it: a specs repository made by git
 * whose service spec holds its password hash inline, Dovecot's users file in the Dovecot folder,
 * and no `state-version.json`.
 */
async function olderBuildState(root: string): Promise<void> {
  const specs = join(root, "specs");
  await mkdir(join(specs, "services"), { recursive: true });
  await mkdir(join(root, "mail", "dovecot"), { recursive: true });
  const alice = {
    schemaVersion: 1,
    kind: "Service",
    id: "alice",
    generation: 2,
    domains: [{ name: "alice.example" }],
    mail: { mailboxes: [{ address: "alice@alice.example", passwordHash: HASH }] },
  };
  await writeFile(join(specs, "services", "alice.json"), `${JSON.stringify(alice, null, 2)}\n`);
  const gitArgs = ["-c", "user.name=Coyote", "-c", "user.email=coyote@localhost", "-C", specs];
  const env = { ...process.env, GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" };
  await run("git", ["init", "-q", "-b", "main", specs], { env });
  await run("git", [...gitArgs, "add", "-A"], { env });
  await run("git", [...gitArgs, "commit", "-q", "-m", "apply service alice (generation 2)"], { env });
  await writeFile(join(root, OLD_DOVECOT_USERS), `alice@alice.example:${HASH}::::::\n`, { mode: 0o644 });
}

describe("the state folder's version", () => {
  let root = "";
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "coyote-state-version-"));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test("the migrations form one chain from 1 to STATE_VERSION; a gap is refused", () => {
    assert.equal(lastVersionOf(MIGRATIONS), STATE_VERSION);
    assert.ok(STATE_VERSION >= 3);
    assert.throws(() => lastVersionOf([{ from: 1, to: 3, description: "skips", up: () => Promise.resolve() }]), /expected a migration from 1 to 2/);
  });

  test("a fresh folder gets today's version at once, and no migration runs", async () => {
    const store = await StateStore.open(join(root, "state"), { writtenBy: "1.2.3-abc" });
    assert.deepEqual(store.migrations, []);
    const file = await readStateVersion(join(root, "state"));
    assert.ok(file !== undefined);
    assert.equal(file.schemaVersion, STATE_VERSION);
    assert.equal(file.writtenBy, "1.2.3-abc");
    assert.ok(Date.parse(file.migratedAt) > Date.now() - 60_000);
    const again = await StateStore.open(join(root, "state"));
    assert.deepEqual(again.migrations, []);
  });

  test("a folder an older build wrote is migrated: hashes leave the spec, the stale Dovecot users file goes, the version file comes last", async () => {
    await olderBuildState(root);
    const store = await StateStore.open(root, { writtenBy: "test-build" });
    assert.deepEqual(store.migrations.map((m) => `${m.from}->${m.to}`), ["1->2", "2->3"]);
    assert.equal(await versionOf(root), STATE_VERSION);
    const text = await readFile(join(root, "specs", "services", "alice.json"), "utf8");
    assert.doesNotMatch(text, /SCRAM|passwordHash/);
    const spec = (await store.getSpec("alice")) as ServiceSpec;
    assert.equal((await store.readSecret(spec.mail?.mailboxes[0]?.credential ?? ""))?.toString("utf8"), HASH);
    assert.equal(spec.generation, 3);
    await assert.rejects(stat(join(root, OLD_DOVECOT_USERS)), { code: "ENOENT" });
    assert.match((await store.history("alice", 1))[0]?.message ?? "", /^migrate: service alice: credentials moved to secrets\//);
    // Opening again runs nothing.
    assert.deepEqual((await StateStore.open(root)).migrations, []);
  });

  test("the real migrations are idempotent: run again from version 1 on a migrated folder, they change nothing", async () => {
    await olderBuildState(root);
    await StateStore.open(root);
    const before = await fingerprint(join(root, "specs"));
    await rm(join(root, STATE_VERSION_FILE));
    const store = await StateStore.open(root);
    assert.equal(store.migrations.length, MIGRATIONS.length);
    assert.deepEqual(await fingerprint(join(root, "specs")), before);
  });

  test("a folder of a newer Coyote is refused with what to do, and nothing in it changes", async () => {
    await olderBuildState(root);
    // A newer build may add fields to the file: the version alone decides.
    await writeFile(join(root, STATE_VERSION_FILE), JSON.stringify({ schemaVersion: STATE_VERSION + 1, writtenBy: "9.0.0-future", migratedAt: new Date().toISOString(), more: true }));
    const before = await fingerprint(root);
    await assert.rejects(StateStore.open(root), (error: unknown) => {
      assert.ok(error instanceof StateTooNewError, String(error));
      assert.equal(error.code, "STORE_ERR_STATE_TOO_NEW");
      assert.equal(error.found, STATE_VERSION + 1);
      assert.ok(
        error.message.includes(`this state folder was written by a newer Coyote (state version ${STATE_VERSION + 1} by 9.0.0-future; this build knows up to ${STATE_VERSION}): update Coyote, or go back to the release that wrote it with \`coyote update --rollback\``),
        error.message,
      );
      return true;
    });
    assert.deepEqual(await fingerprint(root), before);
    assert.equal((await stat(join(root, OLD_DOVECOT_USERS))).isFile(), true);
  });

  test("a version file that is not one is refused, naming the file", async () => {
    await mkdir(root, { recursive: true });
    for (const [content, pattern] of [
      ["{not json", /not valid JSON/],
      [JSON.stringify({ schemaVersion: 0, writtenBy: "x", migratedAt: new Date().toISOString() }), /schemaVersion/],
      [JSON.stringify({ schemaVersion: 2 }), /writtenBy/],
    ] as const) {
      await writeFile(join(root, STATE_VERSION_FILE), content);
      await assert.rejects(StateStore.open(root), (error: unknown) => error instanceof CoyoteError && error.code === "STORE_ERR_STATE_VERSION" && error.message.includes(STATE_VERSION_FILE) && pattern.test(error.message));
    }
  });

  test("a failing migration leaves the version where it was and runs again at the next open", async () => {
    let fail = true;
    const migrations = [
      { from: 1, to: 2, description: "one", up: () => Promise.resolve() },
      {
        from: 2,
        to: 3,
        description: "two",
        up: () => (fail ? Promise.reject(new Error("disk full")) : Promise.resolve()),
      },
    ];
    await assert.rejects(migrateState(filesOnly(root), { migrations }), (error: unknown) => error instanceof CoyoteError && error.code === "STORE_ERR_MIGRATION" && /from version 2 to 3 \(two\): disk full/.test(error.message));
    assert.equal(await versionOf(root), 2);
    fail = false;
    assert.deepEqual((await migrateState(filesOnly(root), { migrations })).map((m) => m.to), [3]);
    assert.equal(await versionOf(root), 3);
  });

  test("a migration killed half-way is run again to completion at the next open", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", victim, root], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      out += chunk;
      if (out.includes("halfway")) child.kill("SIGKILL");
    });
    await once(child, "exit");
    assert.match(out, /halfway/);
    assert.equal(await versionOf(root), 2, "the version file names the last migration that finished");
    await assert.rejects(stat(join(root, "steps", "b")), { code: "ENOENT" });
    const runs = await migrateState(filesOnly(root), { migrations: victimMigrations(() => Promise.resolve()) });
    assert.deepEqual(runs.map((m) => `${m.from}->${m.to}`), ["2->3"]);
    assert.equal(await versionOf(root), 3);
    assert.equal(await readFile(join(root, "steps", "b"), "utf8"), "b\n");
  });
});
