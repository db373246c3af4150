import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { StateStore } from "@coyote/spec";
import { KeysInput } from "../settings.ts";
import { readServer } from "../state.ts";
import { HeartbeatInput, keyChanges, saveHeartbeat } from "./settings.ts";

let dir: string;
let store: StateStore;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "coyote-admin-settings-"));
  store = await StateStore.open(dir);
  await store.applySpec({ schemaVersion: 1, kind: "Server", name: "box", hostname: "box.example.org", activated: true }, { author: { name: "t", email: "t@example.org" } });
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("HeartbeatInput takes form strings and refuses nonsense", () => {
  assert.deepEqual(HeartbeatInput.parse({ intervalSeconds: "10", missedBeforeDown: "3" }), { intervalSeconds: 10, missedBeforeDown: 3 });
  for (const bad of [{ intervalSeconds: "0", missedBeforeDown: "3" }, { intervalSeconds: "1.5", missedBeforeDown: "3" }, { intervalSeconds: "x", missedBeforeDown: "3" }, { intervalSeconds: "10", missedBeforeDown: "101" }]) {
    assert.equal(HeartbeatInput.safeParse(bad).success, false, JSON.stringify(bad));
  }
});

test("saveHeartbeat writes the server spec as a commit by the admin", async () => {
  await saveHeartbeat(store, "ada@example.org", { intervalSeconds: 10, missedBeforeDown: 3 });
  assert.deepEqual((await readServer(store)).heartbeat, { intervalSeconds: 10, missedBeforeDown: 3 });
  const [last] = await store.history(undefined, 1);
  assert.equal(last?.author.email, "ada@example.org");
  assert.equal(last.message, "set the buddy heartbeat");
});

test("keyChanges says which keys change and never carries one", () => {
  const vultr = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  const input = KeysInput.parse({ vultr, namecheapUser: "", namecheapKey: "", removeNamecheap: "on" });
  const changes = keyChanges(input);
  assert.deepEqual(changes, { vultr: "replaced", namecheap: "removed" });
  assert.equal(JSON.stringify(changes).includes(vultr), false);
  assert.deepEqual(keyChanges(KeysInput.parse({ vultr: "", namecheapUser: "", namecheapKey: "" })), { vultr: "kept", namecheap: "kept" });
});
