import assert from "node:assert/strict";
import { chown, mkdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { STATE_VERSION, STATE_VERSION_FILE, StateStore } from "@coyote/spec";
import { tempDirs } from "@coyote/testing";
import { readEnv } from "../env.ts";
import { EXIT } from "../errors.ts";
import { runCli } from "../program.ts";
import { releaseMigrateCommand } from "../release/index.ts";
import { cli } from "../test/support.ts";

const tempDir = tempDirs("coyote-update-cli-");

describe("coyote update (command line)", () => {
  test("--migrate-state brings a state folder from before versioning to this build's version", async () => {
    const state = tempDir();
    await StateStore.open(state);
    await writeFile(join(state, STATE_VERSION_FILE), JSON.stringify({ schemaVersion: 1, writtenBy: "old", migratedAt: new Date().toISOString() }));
    const result = await cli(state, "update", "--migrate-state");
    assert.equal(result.code, EXIT.OK, result.err);
    assert.match(result.out, /migrated from version 1 to 2: secret values moved out of specs/);
    assert.match(result.out, new RegExp(`is at state version ${STATE_VERSION} \\(was 1\\)`));
    assert.equal((JSON.parse(await readFile(join(state, STATE_VERSION_FILE), "utf8")) as { schemaVersion: number }).schemaVersion, STATE_VERSION);
  });

  test("a state folder of a newer Coyote is refused with what to do", async () => {
    const state = tempDir();
    await writeFile(join(state, STATE_VERSION_FILE), JSON.stringify({ schemaVersion: STATE_VERSION + 5, writtenBy: "future", migratedAt: new Date().toISOString() }));
    const result = await cli(state, "update", "--migrate-state");
    assert.equal(result.code, EXIT.FAILED);
    assert.match(result.err, new RegExp(`coyote: opening state folder .*: this state folder was written by a newer Coyote \\(state version ${STATE_VERSION + 5} by future; this build knows up to ${STATE_VERSION}\\): update Coyote, or go back to the release that wrote it with \`coyote update --rollback\``));
  });

  test("run as root on a box's state folder, its log is the folder owner's, never root's", { skip: process.getuid?.() !== 0 && "needs root" }, async () => {
    const state = tempDir();
    await chown(state, 65534, 65534);
    // It fails (no install folder) after it opened its log.
    const result = await cli(state, "update", "--source", join(state, "missing"), "--root", join(tempDir(), "opt"));
    assert.equal(result.code, EXIT.FAILED, result.out);
    for (const path of [join(state, "logs"), join(state, "logs", "update.log")]) {
      const info = await stat(path);
      assert.deepEqual([info.uid, info.gid], [65534, 65534], path);
    }
    assert.match(await readFile(join(state, "logs", "update.log"), "utf8"), /updating: there is no install folder .*\/opt \(install\.sh makes it; --root names another\)/);
  });

  test("--rollback with --source, and a bad --timeout, are wrong usage", async () => {
    const state = tempDir();
    assert.equal((await cli(state, "update", "--rollback", "--source", "/tmp")).code, EXIT.USAGE);
    assert.equal((await cli(state, "update", "--timeout", "0")).code, EXIT.USAGE);
  });

  test("run from a release through the current link, it asks for --source instead of updating from itself", async () => {
    const opt = tempDir();
    await mkdir(join(opt, "releases", "1.0.0-abc"), { recursive: true });
    await symlink(join("releases", "1.0.0-abc"), join(opt, "current"));
    const err: string[] = [];
    const env = readEnv({ PATH: process.env.PATH, COYOTE_HOME: join(opt, "current"), COYOTE_STATE: tempDir() }, false);
    const code = await runCli(["update"], env, { out: () => undefined, err: (line) => err.push(line) }, "main.ts");
    assert.equal(code, EXIT.USAGE);
    assert.match(err.join("\n"), /coyote update --source DIR \(this CLI runs from release 1\.0\.0-abc\)/);
  });

  test("the new release's migration runs its bundle when its build made one, else its sources", async () => {
    const dir = tempDir();
    assert.deepEqual(releaseMigrateCommand({ release: "r", dir, reused: false }, "node").args.slice(-3), [join(dir, "packages", "cli", "src", "main.ts"), "update", "--migrate-state"]);
    await mkdir(join(dir, "dist"));
    await writeFile(join(dir, "dist", "coyote.mjs"), "");
    assert.deepEqual(releaseMigrateCommand({ release: "r", dir, reused: false }, "node"), { command: "node", args: [join(dir, "dist", "coyote.mjs"), "update", "--migrate-state"] });
  });
});
