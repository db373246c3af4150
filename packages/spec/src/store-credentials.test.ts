import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, test } from "node:test";
import { ContractError } from "./errors.ts";
import { StateStore } from "./store.ts";
import type { ServerSpec, ServiceSpec } from "./specs.ts";
import { readWebhooks } from "./webhook-secrets.ts";

const AUTHOR = { name: "Test", email: "test@example.org" };
const HASH_1 = "{SCRAM-SHA-1}4096,c2FsdHNhbHRzYWx0c2FsdA==,AAAAAAAAAAAAAAAAAAAAAAAAAAA=,BBBBBBBBBBBBBBBBBBBBBBBBBBB=";
const HASH_2 = "{SCRAM-SHA-1}4096,b3RoZXJzYWx0b3RoZXJzYQ==,CCCCCCCCCCCCCCCCCCCCCCCCCCC=,DDDDDDDDDDDDDDDDDDDDDDDDDDD=";

function service(hash: string | undefined, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schemaVersion: 1,
    kind: "Service",
    id: "alice",
    domains: [{ name: "alice.example" }],
    mail: { mailboxes: hash === undefined ? [] : [{ address: "alice@alice.example", passwordHash: hash }] },
    xmpp: { users: hash === undefined ? [] : [{ username: "alice", domain: "alice.example", passwordHash: hash }] },
    ...extra,
  };
}

/** Every byte the specs history holds: every commit's patch and every file of the work tree. */
function wholeHistory(root: string): string {
  return execFileSync("git", ["-C", join(root, "specs"), "log", "-p", "--all"], { encoding: "utf8" });
}

describe("credentials in the state store", () => {
  let root = "";
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "coyote-store-credentials-"));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test("an inline hash goes to secrets/ (0600) and never into the spec file or its history; the state root is 0700", async () => {
    await chmod(root, 0o755);
    const store = await StateStore.open(root);
    await store.applySpec(service(HASH_1), { author: AUTHOR });
    const text = await readFile(join(root, "specs", "services", "alice.json"), "utf8");
    assert.doesNotMatch(text, /passwordHash|SCRAM/);
    assert.doesNotMatch(wholeHistory(root), /SCRAM|passwordHash/);
    const spec = (await store.getSpec("alice")) as ServiceSpec;
    const name = spec.mail?.mailboxes[0]?.credential;
    assert.ok(name !== undefined && /^credential-alice-mail-[0-9a-f]{16}-[0-9a-f]{12}$/.test(name), String(name));
    assert.equal((await store.readSecret(name))?.toString("utf8"), HASH_1);
    assert.equal((await stat(join(root, "secrets", name))).mode & 0o777, 0o600);
    assert.equal((await stat(root)).mode & 0o777, 0o700);
    assert.equal((await stat(join(root, "secrets"))).mode & 0o777, 0o700);
  });

  test("a password change is a new commit with a new secret; the old secret is removed", async () => {
    const store = await StateStore.open(root);
    await store.applySpec(service(HASH_1), { author: AUTHOR });
    const before = await store.listSecrets();
    const changed = await store.applySpec(service(HASH_2), { author: AUTHOR });
    assert.equal(changed.changed, true);
    const after = await store.listSecrets();
    assert.equal(after.length, 2, "one for the mailbox, one for the xmpp user");
    assert.ok(before.every((name) => !after.includes(name)));
    for (const name of after) assert.equal((await store.readSecret(name))?.toString("utf8"), HASH_2);
    await store.deleteSpec("alice", { author: AUTHOR });
    assert.deepEqual(await store.listSecrets(), []);
  });

  test("on open, a spec written with inline credentials and an absolute static root is migrated", async () => {
    await StateStore.open(root);
    // A spec as an older version wrote it, straight into the work tree (committed on open).
    const legacy = { ...service(HASH_1, { web: { hostnames: ["alice.example"], backend: { kind: "static", root: join(root, "sites", "alice", "public") } } }), generation: 3 };
    await writeFile(join(root, "specs", "services", "alice.json"), `${JSON.stringify(legacy, null, 2)}\n`);
    const store = await StateStore.open(root);
    const text = await readFile(join(root, "specs", "services", "alice.json"), "utf8");
    assert.doesNotMatch(text, /passwordHash|SCRAM/);
    const spec = (await store.getSpec("alice")) as ServiceSpec;
    assert.deepEqual(spec.web?.backend, { kind: "static", root: "public" });
    assert.equal(spec.generation, 4);
    const name = spec.xmpp?.users[0]?.credential ?? "";
    assert.equal((await store.readSecret(name))?.toString("utf8"), HASH_1);
    assert.match((await store.history("alice", 1))[0]?.message ?? "", /^migrate: service alice: credentials moved to secrets\/, web\.backend\.root made relative/);

    const outside = { ...service(undefined, { web: { hostnames: ["alice.example"], backend: { kind: "static", root: "/" } } }), generation: 5 };
    await writeFile(join(root, "specs", "services", "alice.json"), `${JSON.stringify(outside, null, 2)}\n`);
    const again = await StateStore.open(root);
    assert.deepEqual(((await again.getSpec("alice")) as ServiceSpec).web?.backend, { kind: "static", root: "." });
  });

  test("a rollback never brings back an old inline hash nor a removed credential", async () => {
    await StateStore.open(root);
    const legacy = { ...service(HASH_1), generation: 1 };
    await writeFile(join(root, "specs", "services", "alice.json"), `${JSON.stringify(legacy, null, 2)}\n`);
    const store = await StateStore.open(root);
    const legacyRevision = (await store.history("alice")).find((entry) => entry.message.startsWith("recover"))?.revision ?? "";
    assert.notEqual(legacyRevision, "");
    await store.applySpec(service(HASH_2), { author: AUTHOR });

    await store.rollback(legacyRevision, { author: AUTHOR });
    const text = await readFile(join(root, "specs", "services", "alice.json"), "utf8");
    assert.doesNotMatch(text, /passwordHash|SCRAM/, "the old revision's inline hash is not restored");
    const spec = (await store.getSpec("alice")) as ServiceSpec;
    assert.equal((await store.readSecret(spec.mail?.mailboxes[0]?.credential ?? ""))?.toString("utf8"), HASH_2, "the account keeps its current password");

    const withAccount = await store.head();
    await store.applySpec(service(undefined), { author: AUTHOR });
    assert.deepEqual(await store.listSecrets(), []);
    await assert.rejects(store.rollback(withAccount, { author: AUTHOR }), (error: unknown) => error instanceof ContractError && /no credential any more/.test(error.message));
    assert.deepEqual(await readdir(join(root, "secrets")), []);
  });
});

describe("backend environment values in the state store", () => {
  let root = "";
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "coyote-store-env-"));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const app = (env: Record<string, string>): Record<string, unknown> => ({
    schemaVersion: 1,
    kind: "Service",
    id: "app",
    domains: [{ name: "app.example" }],
    web: { hostnames: ["app.example"], backend: { kind: "process", command: ["node", "server.js"], port: 3001, env } },
  });

  test("env values go to a secret the spec names; never into the spec file or its history; a rollback keeps today's values", async () => {
    const store = await StateStore.open(root);
    await store.applySpec(app({ API_TOKEN: "tok-one-1111", MODE: "prod" }), { author: AUTHOR });
    const first = await store.head();
    await store.applySpec(app({ API_TOKEN: "tok-two-2222" }), { author: AUTHOR });
    assert.doesNotMatch(wholeHistory(root), /tok-one|tok-two/);
    const spec = (await store.getSpec("app")) as ServiceSpec;
    const backend = spec.web?.backend;
    assert.ok(backend?.kind === "process");
    assert.deepEqual(backend.env, {});
    const name = backend.envSecret ?? "";
    assert.deepEqual(JSON.parse((await store.readSecret(name))?.toString("utf8") ?? ""), { API_TOKEN: "tok-two-2222" });
    assert.deepEqual(await store.listSecrets(), [name], "the old values' secret is gone");

    await store.rollback(first, { author: AUTHOR });
    const rolled = (await store.getSpec("app")) as ServiceSpec;
    assert.equal(rolled.web?.backend.kind === "process" ? rolled.web.backend.envSecret : undefined, name, "the removed values are not restored");
    await store.deleteSpec("app", { author: AUTHOR });
    assert.deepEqual(await store.listSecrets(), []);
  });

  test("on open, a spec with inline env values is migrated", async () => {
    await StateStore.open(root);
    await writeFile(join(root, "specs", "services", "app.json"), `${JSON.stringify({ ...app({ DB_PASSWORD: "hunter2-secret" }), generation: 1 }, null, 2)}\n`);
    const store = await StateStore.open(root);
    assert.doesNotMatch(await readFile(join(root, "specs", "services", "app.json"), "utf8"), /hunter2/);
    const spec = (await store.getSpec("app")) as ServiceSpec;
    const name = spec.web?.backend.kind === "process" ? spec.web.backend.envSecret : undefined;
    assert.deepEqual(JSON.parse((await store.readSecret(name ?? ""))?.toString("utf8") ?? ""), { DB_PASSWORD: "hunter2-secret" });
  });
});

describe("alarm webhooks in the state store", () => {
  let root = "";
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "coyote-store-webhooks-"));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const server = (webhooks: string[]): Record<string, unknown> => ({ schemaVersion: 1, kind: "Server", name: "box", hostname: "box.example.org", alarms: { email: ["ops@example.org"], webhooks } });

  test("webhook URLs go to a secret the server spec names, never into its history; a rollback keeps today's list", async () => {
    const store = await StateStore.open(root);
    await store.applySpec(server(["https://hooks.example.org/T0K3N-one"]), { author: AUTHOR });
    const first = await store.head();
    await store.applySpec(server(["https://hooks.example.org/T0K3N-two"]), { author: AUTHOR });
    assert.doesNotMatch(wholeHistory(root), /T0K3N/);
    const spec = (await store.getSpec("server")) as ServerSpec;
    assert.deepEqual(await readWebhooks(spec, (name) => store.readSecret(name)), ["https://hooks.example.org/T0K3N-two"]);
    assert.equal((await store.listSecrets()).length, 1, "the old list's secret is gone");
    await store.rollback(first, { author: AUTHOR });
    const rolled = (await store.getSpec("server")) as ServerSpec;
    assert.deepEqual(await readWebhooks(rolled, (name) => store.readSecret(name)), ["https://hooks.example.org/T0K3N-two"]);
    await store.applySpec(server([]), { author: AUTHOR });
    assert.deepEqual(await store.listSecrets(), []);
  });

  test("on open, a server spec with inline webhook URLs is migrated", async () => {
    await StateStore.open(root);
    await writeFile(join(root, "specs", "server.json"), `${JSON.stringify({ ...server(["https://hooks.example.org/T0K3N-old"]), generation: 1 }, null, 2)}\n`);
    const store = await StateStore.open(root);
    assert.doesNotMatch(await readFile(join(root, "specs", "server.json"), "utf8"), /T0K3N/);
    assert.deepEqual(await readWebhooks((await store.getSpec("server")) as ServerSpec, (name) => store.readSecret(name)), ["https://hooks.example.org/T0K3N-old"]);
  });
});
