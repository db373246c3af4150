// Integration tests against a real Prosody 0.12 started here, listening on loopback only.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ActuatorError, commitActuator, converge, type ActuatorContext, type Target } from "@coyote/actuator";
import { createLogger, type CoyoteLogger } from "@coyote/log";
import { ServerSpec, ServiceSpec, StateStore } from "@coyote/spec";
import type { Client } from "@xmpp/client";
import { accountFile, createXmppActuator, DEFAULT_PROSODY_MODULES, prosodyFileOwner, scramSha1Credentials, scramSha256Credentials, type XmppActuator, type XmppActuatorOptions } from "./index.ts";
import { disconnected, freePort, login, pings, requireProgram, startProsody, type RunningProsody, type ScramMechanism } from "./test/prosody.ts";

const hasProsody = spawnSync("sh", ["-c", "command -v prosody && command -v prosodyctl"]).status === 0;

function service(id: string, domains: string[], users: { username: string; domain: string; passwordHash: string }[]): ServiceSpec {
  return ServiceSpec.parse({ schemaVersion: 1, kind: "Service", id, domains: domains.map((name) => ({ name })), xmpp: { users } });
}

/** Every file under a folder with its modification time, to prove that nothing was rewritten. */
async function mtimes(root: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out.set(path, (await stat(path)).mtimeMs);
  }
  return out;
}

function prosodyctl(configFile: string, ...args: string[]): { status: number | null; stdout: string } {
  const result = spawnSync("prosodyctl", ["--config", configFile, ...args], { encoding: "utf8", timeout: 30_000 });
  return { status: result.status, stdout: `${result.stdout}\n${result.stderr}` };
}

describe("xmppconf against a real prosody", { skip: !hasProsody && process.env.CI !== "true" ? "prosody is not installed (SKIPPED LOUDLY: install the Debian package prosody)" : false }, () => {
  let root: string;
  let actuator: XmppActuator;
  let options: XmppActuatorOptions;
  let context: ActuatorContext;
  let logger: CoyoteLogger;
  let prosody: RunningProsody | undefined;
  let c2sPort: number;
  const clients: Client[] = [];
  const pw = { alice: "alice-secret", bob: "bob-secret", carol: "carol-secret", erin: "erin-secret" };
  const hash = {
    alice: scramSha1Credentials(pw.alice),
    bob: scramSha1Credentials(pw.bob),
    carol: scramSha1Credentials(pw.carol),
    erin: scramSha1Credentials(pw.erin, undefined, 5000),
  };
  let alpha: Target;

  async function connect(domain: string, username: string, password: string, mechanism?: ScramMechanism): Promise<Client> {
    const result = await login(c2sPort, domain, username, password, mechanism);
    assert.ok(result.ok, `${username}@${domain} logs in: ${result.ok ? "" : result.error}`);
    clients.push(result.client);
    return result.client;
  }

  async function cannotLogIn(domain: string, username: string, password: string, mechanism?: ScramMechanism): Promise<string> {
    const result = await login(c2sPort, domain, username, password, mechanism);
    if (result.ok) {
      await result.client.stop();
      assert.fail(`${username}@${domain} must not log in`);
    }
    return result.error;
  }

  /** What the minion does for one service: converge, then commit when something was applied. */
  async function reconcile(target: Target): Promise<boolean> {
    const { changed } = await converge(actuator, target, context);
    if (changed) await commitActuator(actuator, context);
    return changed;
  }

  before(async () => {
    if (!hasProsody) throw new Error("prosody and prosodyctl are not installed: required with CI=true (tooling/system-deps.json)");
    root = await mkdtemp(join(tmpdir(), "coyote-xmpp-"));
    c2sPort = await freePort();
    const s2sPort = await freePort();
    options = {
      stateDir: join(root, "state"),
      configDir: join(root, "etc"),
      dataDir: join(root, "data"),
      c2sPorts: [c2sPort],
      s2sPorts: [s2sPort],
      interfaces: ["127.0.0.1"],
      pidFile: join(root, "run", "prosody.pid"),
      logFile: join(root, "log", "prosody.log"),
      logLevel: "debug",
      // Test only: log in without TLS on loopback. Without a certificate Prosody would offer
      // STARTTLS and fail the handshake, so mod_tls is left out too.
      requireEncryption: false,
      modules: DEFAULT_PROSODY_MODULES.filter((m) => m !== "tls"),
      runAsRoot: process.getuid?.() === 0,
    };
    await mkdir(join(root, "run"), { recursive: true });
    await mkdir(join(root, "log"), { recursive: true });
    actuator = createXmppActuator(options);
    logger = createLogger({ component: "xmppconf-test", file: join(root, "log", "coyote.log") });
    const store = await StateStore.open(options.stateDir);
    const server = ServerSpec.parse({ schemaVersion: 1, kind: "Server", name: "test", hostname: "box.example.net" });
    context = { stateDir: options.stateDir, store, logger, signal: new AbortController().signal, server };
    alpha = { id: "alpha", spec: service("alpha", ["example.org"], [
      { username: "alice", domain: "example.org", passwordHash: hash.alice },
      { username: "bob", domain: "example.org", passwordHash: hash.bob },
    ]) };
  });

  after(async () => {
    for (const c of clients) await c.stop().catch(() => undefined);
    await prosody?.stop();
    await logger.close();
    await rm(root, { recursive: true, force: true });
  });

  it("renders a configuration that prosodyctl check config accepts, and prosody starts on it", async (t) => {
    if (!requireProgram(t, "prosodyctl")) return;
    assert.equal(await reconcile(alpha), true);
    // Prosody is not running yet: commit has nothing to reload.
    const checked = prosodyctl(actuator.configFile, "check", "config");
    assert.equal(checked.status, 0, checked.stdout);
    assert.match(checked.stdout, /All checks passed/);
    assert.match(checked.stdout, /conf\.d\/example\.org\.cfg\.lua/);

    prosody = await startProsody({
      configFile: actuator.configFile,
      outputFile: join(root, "log", "prosody.out"),
      logFile: options.logFile,
      c2sPort,
      adminSocket: join(options.dataDir, "prosody.sock"),
    });
    assert.equal(await prosody.reloads(), 0);
  });

  it("lets a provisioned user log in with SCRAM-SHA-1 over plain loopback, and refuses a wrong password", async () => {
    const alice = await connect("example.org", "alice", pw.alice);
    assert.equal(await pings(alice, "example.org"), true);
    assert.equal(await cannotLogIn("example.org", "alice", "not-her-password"), "not-authorized");
    assert.equal(await cannotLogIn("example.org", "mallory", "anything"), "not-authorized");
    const log = await readFile(options.logFile, "utf8");
    assert.match(log, /mechanism='SCRAM-SHA-1'/, "the client authenticated with SCRAM-SHA-1");
    assert.doesNotMatch(log, /Offering usable mechanisms:.*PLAIN/, "PLAIN is not offered without TLS");
  });

  it("applies the same spec a second time without rewriting a file or reloading prosody", async () => {
    assert.ok(prosody);
    const reloads = await prosody.reloads();
    const before = new Map([...(await mtimes(options.configDir)), ...(await mtimes(options.dataDir))]);
    const { changed, plan } = await converge(actuator, alpha, context);
    assert.equal(changed, false, plan.describe.join("; "));
    // Even an extra commit (the minion owing one after a crash) reloads nothing.
    await actuator.commit?.(context);
    const after = new Map([...(await mtimes(options.configDir)), ...(await mtimes(options.dataDir))]);
    assert.deepEqual(after, before);
    assert.equal(await prosody.reloads(), reloads);
  });

  it("makes a second service's domain a working VirtualHost with one reload, without breaking the first", async () => {
    assert.ok(prosody);
    const alice = clients[0];
    assert.ok(alice);
    const reloads = await prosody.reloads();
    const beta: Target = { id: "beta", spec: service("beta", ["second.test"], [{ username: "carol", domain: "second.test", passwordHash: hash.carol }]) };
    assert.equal(await reconcile(beta), true);
    assert.equal(await prosody.reloads(), reloads + 1, "one reload for the new VirtualHost");
    const hosts = prosodyctl(actuator.configFile, "shell", "host:list()");
    assert.match(hosts.stdout, /^second\.test$/m, "prosody 0.12 needed host:activate after the reload");

    const carol = await connect("second.test", "carol", pw.carol);
    assert.equal(await pings(carol, "second.test"), true);
    assert.equal(await pings(alice, "example.org"), true, "alice's session survived the reload");
    await connect("example.org", "alice", pw.alice);

    assert.equal(await reconcile(beta), false);
    await actuator.commit?.(context);
    assert.equal(await prosody.reloads(), reloads + 1, "no second reload");
  });

  it("refuses a domain another service holds with a terminal DomainTaken, changing nothing", async () => {
    const before = new Map([...(await mtimes(options.configDir)), ...(await mtimes(options.dataDir))]);
    const gamma: Target = { id: "gamma", spec: service("gamma", ["example.org"], [{ username: "alice", domain: "example.org", passwordHash: hash.bob }]) };
    await assert.rejects(converge(actuator, gamma, context), (error: unknown) => {
      assert.ok(error instanceof ActuatorError);
      assert.equal(error.reason, "DomainTaken");
      assert.equal(error.terminal, true);
      assert.match(error.message, /^planning xmpp for service gamma: domain example\.org is already an xmpp host of service alpha/);
      return true;
    });
    const after = new Map([...(await mtimes(options.configDir)), ...(await mtimes(options.dataDir))]);
    assert.deepEqual(after, before);
    await connect("example.org", "alice", pw.alice);
  });

  it("ends the session of a user removed from the spec, who cannot log in any more, without a reload", async () => {
    assert.ok(prosody);
    const bob = await connect("example.org", "bob", pw.bob);
    const reloads = await prosody.reloads();
    alpha = { id: "alpha", spec: service("alpha", ["example.org"], [{ username: "alice", domain: "example.org", passwordHash: hash.alice }]) };
    assert.equal(await reconcile(alpha), true);
    await assert.rejects(stat(accountFile(options.dataDir, "example.org", "bob")), { code: "ENOENT" });
    assert.equal(await disconnected(bob, 10_000), true, "bob's open session was closed");
    assert.equal(await cannotLogIn("example.org", "bob", pw.bob), "not-authorized");
    await connect("example.org", "alice", pw.alice);
    assert.equal(await prosody.reloads(), reloads, "accounts are read at each login: no reload");
  });

  it("reports an unsupported password hash as a terminal error naming the user, while the other users log in", async () => {
    alpha = { id: "alpha", spec: service("alpha", ["example.org"], [
      { username: "alice", domain: "example.org", passwordHash: hash.alice },
      { username: "dave", domain: "example.org", passwordHash: "{SHA512-CRYPT}$6$salt$0123456789abcdef" },
      { username: "erin", domain: "example.org", passwordHash: hash.erin },
    ]) };
    const check = (error: unknown) => {
      assert.ok(error instanceof ActuatorError);
      assert.equal(error.reason, "UnsupportedPasswordHash");
      assert.equal(error.terminal, true);
      assert.match(error.message, /user dave@example\.org has a \{SHA512-CRYPT\} password hash/);
      return true;
    };
    await assert.rejects(reconcile(alpha), check);
    await actuator.commit?.(context);
    await connect("example.org", "erin", pw.erin);
    await connect("example.org", "alice", pw.alice);
    await cannotLogIn("example.org", "dave", "anything");

    // Reconciled again: nothing left to do, the same error, no file touched.
    const before = new Map([...(await mtimes(options.configDir)), ...(await mtimes(options.dataDir))]);
    await assert.rejects(converge(actuator, alpha, context), check);
    assert.deepEqual(new Map([...(await mtimes(options.configDir)), ...(await mtimes(options.dataDir))]), before);

    // A user whose hash turns bad keeps the account they had: a bad spec never wipes good state.
    const broken: Target = { id: "alpha", spec: service("alpha", ["example.org"], [
      { username: "alice", domain: "example.org", passwordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA" },
      { username: "erin", domain: "example.org", passwordHash: hash.erin },
    ]) };
    await assert.rejects(converge(actuator, broken, context), /user alice@example\.org has a \$argon2id\$ password hash/);
    await connect("example.org", "alice", pw.alice);
  });

  it("removes a deleted service's VirtualHost and accounts, and nothing else", async () => {
    assert.ok(prosody);
    const reloads = await prosody.reloads();
    // Data Prosody made itself for carol, and a file someone put in conf.d: not the actuator's.
    const roster = join(options.dataDir, "second%2etest", "roster", "carol.dat");
    await mkdir(join(options.dataDir, "second%2etest", "roster"), { recursive: true });
    await writeFile(roster, "return {};\n");
    const foreign = join(options.configDir, "conf.d", "README");
    await writeFile(foreign, "hand-written\n");
    const alphaFiles = [join(options.configDir, "conf.d", "example.org.cfg.lua"), accountFile(options.dataDir, "example.org", "alice")];
    const alphaBefore = await Promise.all(alphaFiles.map((f) => stat(f).then((s) => s.mtimeMs)));

    assert.equal(await reconcile({ id: "beta", spec: undefined }), true);
    await assert.rejects(stat(join(options.configDir, "conf.d", "second.test.cfg.lua")), { code: "ENOENT" });
    await assert.rejects(stat(accountFile(options.dataDir, "second.test", "carol")), { code: "ENOENT" });
    assert.equal(await readFile(roster, "utf8"), "return {};\n");
    assert.equal(await readFile(foreign, "utf8"), "hand-written\n");
    assert.deepEqual(await Promise.all(alphaFiles.map((f) => stat(f).then((s) => s.mtimeMs))), alphaBefore);

    assert.equal(await prosody.reloads(), reloads + 1);
    assert.doesNotMatch(prosodyctl(actuator.configFile, "shell", "host:list()").stdout, /^second\.test$/m, "the host was deactivated");
    assert.notEqual(await cannotLogIn("second.test", "carol", pw.carol), "");
    await connect("example.org", "alice", pw.alice);
    assert.equal(await reconcile({ id: "beta", spec: undefined }), false);
  });

  it("ends the sessions of a user whose password changed, who logs in with the new one, without a reload", async () => {
    assert.ok(prosody);
    const reloads = await prosody.reloads();
    const alice = await connect("example.org", "alice", pw.alice);
    const newPassword = "alice-new-secret";
    alpha = { id: "alpha", spec: service("alpha", ["example.org"], [
      { username: "alice", domain: "example.org", passwordHash: scramSha1Credentials(newPassword) },
      { username: "erin", domain: "example.org", passwordHash: hash.erin },
    ]) };
    assert.equal(await reconcile(alpha), true);
    assert.equal(await disconnected(alice, 10_000), true, "the session opened with the old password was closed");
    assert.equal(await cannotLogIn("example.org", "alice", pw.alice), "not-authorized");
    await connect("example.org", "alice", newPassword);
    assert.equal(await prosody.reloads(), reloads);
  });

  it("gives a service whose users have SCRAM-SHA-256 credentials a SHA-256 host, where they log in with SCRAM-SHA-256", async () => {
    const delta: Target = { id: "delta", spec: service("delta", ["third.test"], [
      { username: "dora", domain: "third.test", passwordHash: scramSha256Credentials("dora-secret") },
      { username: "fred", domain: "third.test", passwordHash: scramSha256Credentials("fred-secret") },
    ]) };
    assert.equal(await reconcile(delta), true);
    const hostFile = await readFile(join(options.configDir, "conf.d", "third.test.cfg.lua"), "utf8");
    assert.match(hostFile, /^VirtualHost "third\.test"\npassword_hash = "SHA-256"$/m);
    assert.match(await readFile(accountFile(options.dataDir, "third.test", "dora"), "utf8"), /\["stored_key"\] = "[0-9a-f]{64}";/, "32-byte SHA-256 keys");

    const dora = await connect("third.test", "dora", "dora-secret", "SCRAM-SHA-256");
    assert.equal(await pings(dora, "third.test"), true);
    assert.equal(await cannotLogIn("third.test", "dora", "not-her-password", "SCRAM-SHA-256"), "not-authorized");
    assert.match(await cannotLogIn("third.test", "fred", "fred-secret"), /SCRAM-SHA-1 not offered/, "the host verifies SHA-256 only");
    assert.match(await readFile(options.logFile, "utf8"), /mechanism='SCRAM-SHA-256'/);
    // The SHA-1 host beside it is unchanged.
    await connect("example.org", "alice", "alice-new-secret");
  });

  it("refuses a host whose users mix SCRAM-SHA-1 and SCRAM-SHA-256 with a terminal error, changing nothing", async () => {
    const mixed: Target = { id: "delta", spec: service("delta", ["third.test"], [
      { username: "dora", domain: "third.test", passwordHash: scramSha256Credentials("dora-other") },
      { username: "fred", domain: "third.test", passwordHash: scramSha256Credentials("fred-secret") },
      { username: "gina", domain: "third.test", passwordHash: scramSha1Credentials("gina-secret") },
    ]) };
    const before = new Map([...(await mtimes(options.configDir)), ...(await mtimes(options.dataDir))]);
    await assert.rejects(converge(actuator, mixed, context), (error: unknown) => {
      assert.ok(error instanceof ActuatorError);
      assert.equal(error.reason, "MixedPasswordHashes");
      assert.equal(error.terminal, true);
      assert.match(error.message, /host third\.test has users with \{SCRAM-SHA-1\} \(gina\) and \{SCRAM-SHA-256\} \(dora, fred\) credentials; prosody verifies one scheme per host/);
      return true;
    });
    assert.deepEqual(new Map([...(await mtimes(options.configDir)), ...(await mtimes(options.dataDir))]), before, "no account or host file is written");
    await connect("third.test", "dora", "dora-secret", "SCRAM-SHA-256");
    assert.notEqual(await cannotLogIn("third.test", "gina", "gina-secret"), "");
  });

  it("moves a running host to SHA-256 once all its users have SCRAM-SHA-256 credentials, without a restart", async () => {
    assert.ok(prosody);
    alpha = { id: "alpha", spec: service("alpha", ["example.org"], [
      { username: "alice", domain: "example.org", passwordHash: scramSha256Credentials("alice-256") },
      { username: "erin", domain: "example.org", passwordHash: scramSha256Credentials(pw.erin) },
    ]) };
    assert.equal(await reconcile(alpha), true);
    assert.match(await readFile(join(options.configDir, "conf.d", "example.org.cfg.lua"), "utf8"), /^password_hash = "SHA-256"$/m);
    await connect("example.org", "alice", "alice-256", "SCRAM-SHA-256");
    await connect("example.org", "erin", pw.erin, "SCRAM-SHA-256");
    assert.match(await cannotLogIn("example.org", "alice", "alice-256"), /SCRAM-SHA-1 not offered/);
    assert.equal(await reconcile(alpha), false);
  });

  it("renders a production configuration (TLS required, all modules, prosody's own user) that check config accepts", async (t) => {
    if (!requireProgram(t, "prosodyctl")) return;
    // prosodyctl run as root switches to the prosody user, who must be able to read the files.
    const prod = await mkdtemp(join(tmpdir(), "coyote-xmpp-prod-"));
    try {
      await chmod(prod, 0o755);
      await mkdir(join(prod, "certs"), { recursive: true, mode: 0o755 });
      const production = createXmppActuator({
        stateDir: join(prod, "state"),
        configDir: join(prod, "etc"),
        dataDir: join(prod, "data"),
        c2sPorts: [5222],
        s2sPorts: [5269],
        interfaces: ["*", "::"],
        pidFile: join(prod, "run", "prosody.pid"),
        logFile: join(prod, "log", "prosody.log"),
        certificatesDir: join(prod, "certs"),
        // Under root, the files are given to the prosody user, as the minion gives them.
        fileOwner: prosodyFileOwner(),
      });
      // Only apply: this configuration is checked, never started (it would listen on 5222).
      const spec = service("alpha", ["example.org"], [{ username: "alice", domain: "example.org", passwordHash: hash.alice }]);
      assert.equal((await converge(production, { id: "alpha", spec }, context)).changed, true);
      const text = await readFile(production.configFile, "utf8");
      assert.match(text, /^c2s_require_encryption = true$/m);
      assert.doesNotMatch(text, /run_as_root/);
      await chmod(join(prod, "etc"), 0o755);
      const checked = prosodyctl(production.configFile, "check", "config");
      assert.equal(checked.status, 0, checked.stdout);
      assert.match(checked.stdout, /All checks passed/);
    } finally {
      await rm(prod, { recursive: true, force: true });
    }
  });
});
