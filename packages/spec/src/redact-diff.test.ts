import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, test } from "node:test";
import { StateStore } from "./store.ts";

const AUTHOR = { name: "Test", email: "test@example.org" };

describe("history diffs hide secret values of old revisions", () => {
  let root = "";
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "coyote-redact-"));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test("an old revision's password hashes, env values and webhook URLs never show in a diff; other changes show as git shows them", async () => {
    await StateStore.open(root);
    const env: Record<string, string> = {};
    for (let i = 0; i < 12; i++) env[`VAR_${String(i).padStart(2, "0")}`] = `plain-${i}`;
    env.ZZ_TOKEN = "s3cr3t-env-value";
    const legacy = {
      schemaVersion: 1,
      kind: "Service",
      id: "app",
      generation: 1,
      domains: [{ name: "app.example" }],
      mail: { mailboxes: [{ address: "a@app.example", passwordHash: "{SCRAM-SHA-1}4096,c2FsdA==,SECRETHASH=,SERVERKEY=" }] },
      web: { hostnames: ["app.example"], backend: { kind: "process", command: ["node", "server.js"], port: 3001, env } },
    };
    // Written as an older version would have, straight into the work tree: the recovery commits it
    // (so the history holds it), then the migration moves the values out.
    await writeFile(join(root, "specs", "services", "app.json"), `${JSON.stringify(legacy, null, 2)}\n`);
    await writeFile(join(root, "specs", "server.json"), `${JSON.stringify({ schemaVersion: 1, kind: "Server", name: "box", hostname: "box.example.org", generation: 1, alarms: { email: [], webhooks: ["https://hooks.example.org/T0K3N"] } }, null, 2)}\n`);
    const store = await StateStore.open(root);
    const history = await store.history();
    const recovered = history.find((entry) => entry.message.startsWith("recover"))?.revision ?? "";
    const migrated = history.find((entry) => entry.message.startsWith("migrate"))?.revision ?? "";
    assert.ok(recovered !== "" && migrated !== "");
    for (const diff of [await store.diff(recovered), await store.diff(migrated), await store.diff(recovered, migrated)]) {
      assert.doesNotMatch(diff, /SECRETHASH|s3cr3t-env-value|T0K3N|plain-11/, diff);
      assert.match(diff, /\(secret: hidden\)/);
    }

    // A second legacy revision that changes only a value deep inside the env block: the hunk
    // starts far below the block's opening line, which must still be known.
    env.ZZ_TOKEN = "s3cr3t-env-value-2";
    await writeFile(join(root, "specs", "services", "app.json"), `${JSON.stringify({ ...legacy, generation: 9, web: { ...legacy.web, backend: { ...legacy.web.backend, env } } }, null, 2)}\n`);
    const again = await StateStore.open(root);
    const recoveredAgain = (await again.history()).find((entry) => entry.message.startsWith("recover"))?.revision ?? "";
    const deep = await again.diff(recovered, recoveredAgain);
    assert.doesNotMatch(deep, /s3cr3t-env-value/, deep);
    assert.match(deep, /"ZZ_TOKEN": "\(secret: hidden\)"/);

    // An ordinary change: the same text git itself prints.
    await store.applySpec({ schemaVersion: 1, kind: "Server", name: "box renamed", hostname: "box.example.org" }, { author: AUTHOR });
    const head = await store.head();
    const git = execFileSync("git", ["-C", join(root, "specs"), "diff", "--no-color", "--no-renames", "--src-prefix=a/specs/", "--dst-prefix=b/specs/", `${head}~1`, head, "--"], { encoding: "utf8" });
    assert.equal(await store.diff(head), git);
  });
});
