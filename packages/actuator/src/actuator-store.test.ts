import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { InboxDecision, ServerSpec, StateStore } from "@coyote/spec";
import { actuatorStore } from "./actuator-store.ts";

test("actuators get a store that writes runtime files and secrets, and cannot touch a spec or its history", async () => {
  const dir = await mkdtemp(join(tmpdir(), "actuator-store-"));
  try {
    const store = await StateStore.open(dir);
    await store.applySpec(ServerSpec.parse({ schemaVersion: 1, kind: "Server", name: "box", hostname: "box.test.example" }), { author: { name: "t", email: "t@example.org" } });
    const narrow = actuatorStore(store);
    const note = { schemaVersion: 1, id: "note-0001", state: "accepted", decidedAt: "2026-12-07T00:00:00.000Z", decidedBy: "test" } as const;
    await narrow.writeJson("mail/note.json", InboxDecision, note);
    assert.deepEqual(await narrow.readJson("mail/note.json", InboxDecision), note);
    await narrow.writeSecret("actuator-test", "s3cret");
    assert.equal((await narrow.readSecret("actuator-test"))?.toString("utf8"), "s3cret");
    await narrow.removeSecret("actuator-test");
    assert.equal(await narrow.readSecret("actuator-test"), undefined);
    const before = await readFile(join(dir, "specs", "server.json"), "utf8");
    for (const path of ["specs/server.json", "./specs/services/x.json", ".git/config"]) {
      await assert.rejects(narrow.writeJson(path, ServerSpec, ServerSpec.parse({ schemaVersion: 1, kind: "Server", name: "evil", hostname: "evil.example" })), /specs change through the state store's history/, path);
    }
    assert.equal(await readFile(join(dir, "specs", "server.json"), "utf8"), before);
    const surface = narrow as unknown as Record<string, unknown>;
    for (const method of ["applySpec", "rollback", "deleteSpec"]) assert.equal(surface[method], undefined, `${method} is not an actuator's`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
