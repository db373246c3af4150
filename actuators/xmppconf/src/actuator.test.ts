// The actuator's files without a running Prosody: plans, crash safety, ownership and bad input.
import assert from "node:assert/strict";
import { chown, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { ActuatorError, converge, type ActuatorContext, type Target } from "@coyote/actuator";
import { createLogger, type CoyoteLogger } from "@coyote/log";
import { ServerSpec, ServiceSpec, StateStore } from "@coyote/spec";
import { accountFile, createXmppActuator, scramSha1Credentials, type XmppActuator, type XmppActuatorOptions } from "./index.ts";

const server = ServerSpec.parse({ schemaVersion: 1, kind: "Server", name: "test", hostname: "box.example.net" });
const salt = Buffer.from("0123456789abcdef");
const hash = {
  alice: scramSha1Credentials("alice", salt),
  bob: scramSha1Credentials("bob", salt),
  carol: scramSha1Credentials("carol", salt),
};

let root: string;
let logger: CoyoteLogger;
let store: StateStore;
let counter = 0;

before(async () => {
  root = await mkdtemp(join(tmpdir(), "coyote-xmpp-unit-"));
  logger = createLogger({ component: "xmppconf-test", file: join(root, "coyote.log") });
  store = await StateStore.open(join(root, "state"));
});

after(async () => {
  await logger.close();
  await rm(root, { recursive: true, force: true });
});

function service(id: string, domains: string[], users: { username: string; domain: string; passwordHash: string }[], xmpp = true): ServiceSpec {
  return ServiceSpec.parse({ schemaVersion: 1, kind: "Service", id, domains: domains.map((name) => ({ name })), ...(xmpp ? { xmpp: { users } } : {}) });
}

/** A fresh actuator over its own folders (Prosody never runs in this file). */
function setup(extra: Partial<XmppActuatorOptions> = {}): { actuator: XmppActuator; options: XmppActuatorOptions; context: ActuatorContext } {
  const dir = join(root, `case-${++counter}`);
  const options: XmppActuatorOptions = {
    stateDir: join(dir, "state"),
    configDir: join(dir, "etc"),
    dataDir: join(dir, "data"),
    c2sPorts: [5222],
    s2sPorts: [5269],
    interfaces: ["127.0.0.1"],
    pidFile: join(dir, "prosody.pid"),
    logFile: join(dir, "prosody.log"),
    prosodyctl: join(dir, "no-such-prosodyctl"),
    ...extra,
  };
  return { actuator: createXmppActuator(options), options, context: { stateDir: options.stateDir, store, logger, signal: new AbortController().signal, server } };
}

/** Every file under the configuration and data folders with its content, the case's folder written as <case>. */
async function tree(options: XmppActuatorOptions): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const base of [options.configDir, options.dataDir]) {
    let entries;
    try {
      entries = await readdir(base, { recursive: true, withFileTypes: true });
    } catch {
      continue;
    }
    for (const entry of entries) {
      if (!entry.isFile()) continue;
      const text = await readFile(join(entry.parentPath, entry.name), "utf8");
      out[join(entry.parentPath, entry.name).slice(base.length)] = text.replaceAll(dirname(options.configDir), "<case>");
    }
  }
  return out;
}

const blog: Target = {
  id: "blog",
  spec: service("blog", ["example.org", "example.net"], [
    { username: "alice", domain: "example.org", passwordHash: hash.alice },
    { username: "bob.smith", domain: "example.org", passwordHash: hash.bob },
    { username: "carol", domain: "example.net", passwordHash: hash.carol },
  ]),
};

test("plans a new service's hosts and accounts in order, and the same plan for the same input", async () => {
  const { actuator, context } = setup();
  const observed = await actuator.observe(blog, context);
  const plan = actuator.plan(blog, observed, server);
  assert.deepEqual(actuator.plan(blog, observed, server), plan, "plan is pure");
  assert.deepEqual(plan.describe, [
    "write prosody.cfg.lua",
    "add VirtualHost example.org",
    "add VirtualHost example.net",
    "add account alice@example.org",
    "add account bob.smith@example.org",
    "add account carol@example.net",
  ]);
  assert.equal(actuator.appliesTo(service("x", ["x.org"], [])), true);
  assert.equal(actuator.appliesTo(service("web", ["web.org"], [], false)), false);
  assert.deepEqual(actuator.plan({ id: "web", spec: service("web", ["web.org"], [], false) }, observed, server).steps, [], "no xmpp section: nothing to do");
});

test("converges to the same files whatever step an earlier apply was killed after", async () => {
  const reference = setup();
  await converge(reference.actuator, blog, reference.context);
  const want = await tree(reference.options);
  assert.ok(want[`/example%2eorg/accounts/bob%2esmith.dat`], "accounts are where prosody looks");

  const { actuator, context } = setup();
  const steps = actuator.plan(blog, await actuator.observe(blog, context), server);
  for (let k = 0; k <= steps.steps.length; k++) {
    const run = setup();
    // A kill after k steps: only they were applied.
    const plan = run.actuator.plan(blog, await run.actuator.observe(blog, run.context), server);
    await run.actuator.apply({ steps: plan.steps.slice(0, k), describe: plan.describe.slice(0, k) }, blog, run.context);
    await converge(run.actuator, blog, run.context);
    assert.deepEqual(await tree(run.options), want, `killed after ${k} steps`);
    assert.equal((await converge(run.actuator, blog, run.context)).changed, false);
  }

  // The same for a deletion interrupted half-way: the rest is found and removed next time.
  const deleted: Target = { id: "blog", spec: undefined };
  const removal = reference.actuator.plan(deleted, await reference.actuator.observe(deleted, reference.context), server);
  assert.deepEqual(removal.describe, [
    "remove account carol@example.net",
    "remove account alice@example.org",
    "remove account bob.smith@example.org",
    "remove VirtualHost example.net",
    "remove VirtualHost example.org",
  ]);
  await reference.actuator.apply({ steps: removal.steps.slice(0, 2), describe: removal.describe.slice(0, 2) }, deleted, reference.context);
  await converge(reference.actuator, deleted, reference.context);
  assert.deepEqual(Object.keys(await tree(reference.options)), ["/prosody.cfg.lua"], "only the shared main file is left");
  assert.equal((await converge(reference.actuator, deleted, reference.context)).changed, false);
});

test("gives account files to the configured owner with mode 0640, and repairs them", async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip("changing a file's owner needs root");
    return;
  }
  const { actuator, options, context } = setup({ fileOwner: { uid: 65534, gid: 65534 } });
  await converge(actuator, blog, context);
  const file = accountFile(options.dataDir, "example.org", "alice");
  const stats = await stat(file);
  assert.deepEqual([stats.uid, stats.gid, stats.mode & 0o777], [65534, 65534, 0o640]);
  const dir = await stat(join(options.dataDir, "example%2eorg", "accounts"));
  assert.deepEqual([dir.uid, dir.gid, dir.mode & 0o777], [65534, 65534, 0o750]);
  // A kill between the rename and the chown leaves a root-owned file: the next run fixes it.
  await chown(file, 0, 0);
  const { changed, plan } = await converge(actuator, blog, context);
  assert.equal(changed, true);
  assert.deepEqual(plan.describe, ["update account alice@example.org"]);
  assert.equal((await stat(file)).uid, 65534);
});

test("reports duplicate users and malformed SCRAM-SHA-1 hashes, naming the user", async () => {
  const { actuator, options, context } = setup();
  const bad: Target = {
    id: "blog",
    spec: service("blog", ["example.org"], [
      { username: "alice", domain: "example.org", passwordHash: hash.alice },
      { username: "alice", domain: "example.org", passwordHash: hash.bob },
      { username: "bob", domain: "example.org", passwordHash: "{SCRAM-SHA-1}4096,AAAA,AAAA,AAAA" },
      { username: "carol", domain: "example.org", passwordHash: hash.carol },
    ]),
  };
  await assert.rejects(converge(actuator, bad, context), (error: unknown) => {
    assert.ok(error instanceof ActuatorError);
    assert.equal(error.terminal, true);
    assert.equal(error.reason, "DuplicateUser");
    assert.match(error.message, /^planning xmpp for service blog: user alice@example\.org is listed twice with different password hashes; user bob@example\.org has a malformed \{SCRAM-SHA-1\} hash/);
    return true;
  });
  // Carol, whose entry is fine, was provisioned all the same.
  await stat(accountFile(options.dataDir, "example.org", "carol"));
  await assert.rejects(stat(accountFile(options.dataDir, "example.org", "alice")), { code: "ENOENT" });
});

test("refuses a domain that a hand-written file already defines", async () => {
  const { actuator, options, context } = setup();
  await mkdir(join(options.configDir, "conf.d"), { recursive: true });
  await writeFile(join(options.configDir, "conf.d", "legacy.cfg.lua"), 'VirtualHost "example.net"\n');
  await assert.rejects(converge(actuator, blog, context), (error: unknown) => {
    assert.ok(error instanceof ActuatorError);
    assert.equal(error.reason, "DomainTaken");
    assert.match(error.message, /domain example\.net is already an xmpp host of a file coyote did not make \(conf\.d\/legacy\.cfg\.lua\)/);
    return true;
  });
  // The other domain is served; the hand-written file is left alone.
  const served = await tree(options);
  assert.ok(served["/conf.d/example.org.cfg.lua"]);
  assert.equal(await readFile(join(options.configDir, "conf.d", "legacy.cfg.lua"), "utf8"), 'VirtualHost "example.net"\n');

  // A file defining a domain the service already has does not make the actuator remove it.
  await writeFile(join(options.configDir, "conf.d", "other.cfg.lua"), 'VirtualHost "example.org"\n');
  await assert.rejects(converge(actuator, blog, context), /domain example\.org is already an xmpp host of a file coyote did not make \(conf\.d\/other\.cfg\.lua\); domain example\.net is/);
  const kept = await tree(options);
  delete kept["/conf.d/other.cfg.lua"];
  assert.deepEqual(kept, served);
});

test("removes what a service made when it drops its xmpp section, keeping other services' hosts", async () => {
  const { actuator, options, context } = setup();
  await converge(actuator, blog, context);
  const shop: Target = { id: "shop", spec: service("shop", ["shop.test"], [{ username: "dan", domain: "shop.test", passwordHash: hash.alice }]) };
  await converge(actuator, shop, context);
  const { plan } = await converge(actuator, { id: "blog", spec: service("blog", ["example.org", "example.net"], [], false) }, context);
  assert.equal(plan.describe.filter((d) => d.startsWith("remove VirtualHost")).length, 2);
  assert.deepEqual(Object.keys(await tree(options)).sort(), ["/conf.d/shop.test.cfg.lua", "/prosody.cfg.lua", "/shop%2etest/accounts/dan.dat"]);
});

test("commit with prosody stopped reloads nothing and settles its bookkeeping", async () => {
  const { actuator, options, context } = setup();
  await converge(actuator, blog, context);
  const lessUsers: Target = { id: "blog", spec: service("blog", ["example.org", "example.net"], [{ username: "alice", domain: "example.org", passwordHash: hash.alice }]) };
  const { plan } = await converge(actuator, lessUsers, context);
  assert.ok(plan.describe.includes("close the sessions of bob.smith@example.org, carol@example.net"));
  assert.deepEqual(JSON.parse(await readFile(join(options.stateDir, "xmppconf", "close-sessions.json"), "utf8")), ["bob.smith@example.org", "carol@example.net"]);
  // prosodyctl points nowhere: commit must not need it while prosody is not running.
  await actuator.commit?.(context);
  await assert.rejects(stat(join(options.stateDir, "xmppconf", "close-sessions.json")), { code: "ENOENT" });
  const state = JSON.parse(await readFile(join(options.stateDir, "xmppconf", "commit.json"), "utf8")) as { configDigest: string };
  assert.match(state.configDigest, /^[0-9a-f]{64}$/);
  await actuator.commit?.(context);
});

test("commit fails (to be retried) when prosody runs but its admin shell cannot be reached", async () => {
  const { actuator, options, context } = setup();
  await converge(actuator, blog, context);
  // Our own pid stands in for a running prosody.
  await writeFile(options.pidFile, `${process.pid}\n`);
  await assert.rejects(actuator.commit?.(context) ?? Promise.resolve(), (error: unknown) => {
    assert.ok(error instanceof ActuatorError);
    assert.equal(error.reason, "ReloadFailed");
    assert.equal(error.terminal, false);
    assert.match(error.message, /^committing xmpp: running .*no-such-prosodyctl shell config:reload\(\)/);
    return true;
  });
  await assert.rejects(stat(join(options.stateDir, "xmppconf", "commit.json")), { code: "ENOENT" }, "not recorded: the next commit tries again");
});

test("reads each user's credential from the secret the spec names; a missing secret keeps the account as it was", async () => {
  const { actuator, context, options } = setup();
  await store.writeSecret("credential-vault-xmpp-0000000000000000-000000000000", hash.alice);
  const spec = ServiceSpec.parse({
    schemaVersion: 1,
    kind: "Service",
    id: "vault",
    domains: [{ name: "vault.example" }],
    xmpp: { users: [{ username: "alice", domain: "vault.example", credential: "credential-vault-xmpp-0000000000000000-000000000000" }] },
  });
  await converge(actuator, { id: "vault", spec }, context);
  const account = await readFile(accountFile(options.dataDir, "vault.example", "alice"), "utf8");
  assert.match(account, /\["iteration_count"\] = 32768;/);

  const gone = ServiceSpec.parse({ ...spec, xmpp: { users: [{ username: "alice", domain: "vault.example", credential: "credential-vault-xmpp-0000000000000000-111111111111" }] } });
  const observed = await actuator.observe({ id: "vault", spec: gone }, context);
  assert.deepEqual(actuator.plan({ id: "vault", spec: gone }, observed, server).steps, [], "nothing to apply: the account stays");
  await assert.rejects(converge(actuator, { id: "vault", spec: gone }, context), (error: unknown) => error instanceof ActuatorError && /\{MISSING-SECRET\}/.test(error.message));
  assert.equal(await readFile(accountFile(options.dataDir, "vault.example", "alice"), "utf8"), account);
});
