// Passage through the state folder: an ACL entry per daemon user, asked of the kernel as that user.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { StateStore } from "@coyote/spec";
import { IN_CI, tempDirs } from "@coyote/testing";
import { lookupUser } from "./files.ts";
import { grantPassage, PassageError } from "./passage.ts";

const tempDir = tempDirs("coyote-passage-");
const nobody = lookupUser("nobody");
/** Opens a state folder as the store does at every start; its real path. */
async function prepareStateFolder(dir: string): Promise<string> {
  // The folder holding it stands for the checkout or /var/lib: open to all.
  chmodSync(dirname(dir), 0o755);
  return (await StateStore.open(dir)).root;
}

const skip = process.getuid?.() !== 0 && !IN_CI ? "only root gives passage to another user" : false;

/** The exit status of a shell line run as `nobody`. */
function asNobody(script: string): number | null {
  assert.ok(nobody);
  return spawnSync("sh", ["-c", script], { uid: nobody.uid, gid: nobody.gid }).status;
}

test("a user given passage reaches an open folder inside the state folder by name, and lists nothing of it", { skip }, async () => {
  const state = await prepareStateFolder(join(tempDir(), "state"));
  mkdirSync(join(state, "open"), { mode: 0o755 });
  writeFileSync(join(state, "open", "file"), "x", { mode: 0o644 });
  const read = `cat ${JSON.stringify(join(state, "open", "file"))} >/dev/null`;
  assert.notEqual(asNobody(read), 0, "no passage before it is given");
  await grantPassage(state, ["nobody"]);
  assert.equal(asNobody(read), 0, "passage given");
  assert.notEqual(asNobody(`ls ${JSON.stringify(state)} >/dev/null`), 0, "the state folder is not listed");
  assert.notEqual(asNobody(`ls ${JSON.stringify(join(state, "secrets"))} >/dev/null`), 0, "its private folders stay closed");
  assert.equal(statSync(state).mode & 0o777, 0o710, "the group bits show the ACL's mask: passage only");
  // The store opens the folder again at every start: the passage stays.
  await prepareStateFolder(state);
  assert.equal(asNobody(read), 0, "passage kept by the store");
  // Given twice, nothing changes.
  await grantPassage(state, ["nobody", "nobody"]);
  assert.equal(asNobody(read), 0);
});

test("a numeric uid is given passage as it is; a missing user and a bad uid are named", { skip }, async () => {
  const state = await prepareStateFolder(join(tempDir(), "state"));
  await grantPassage(state, [54_321]);
  const acl = spawnSync("getfacl", ["--omit-header", "--numeric", state], { encoding: "utf8" }).stdout;
  assert.match(acl, /^user:54321:--x$/m);
  await assert.rejects(grantPassage(state, ["no-such-user-here"]), (error: unknown) => error instanceof PassageError && /the system user no-such-user-here does not exist/.test(error.message));
  await assert.rejects(grantPassage(state, [-1]), (error: unknown) => error instanceof PassageError && /uid -1 is not a user id/.test(error.message));
  await assert.rejects(grantPassage(state, ["nobody"], [tempDir()]), (error: unknown) => error instanceof PassageError && /setfacl is not installed \(Debian package acl\)/.test(error.message));
  await assert.rejects(grantPassage(join(state, "missing"), ["nobody"]), (error: unknown) => error instanceof PassageError && /passage through .*missing failed/.test(error.message));
});
