import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createPrivateKey, createPublicKey, sign, verify } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ActuatorError, commitActuator, converge, isActuator } from "@coyote/actuator";
import type { Actuator, ActuatorContext } from "@coyote/actuator";
import { ServerSpec, ServiceSpec } from "@coyote/spec";
import { createMailActuator, mailPaths } from "./actuator.ts";
import type { MailObserved, MailStep } from "./actuator.ts";
import { DkimRecordFile } from "./dkim.ts";
import type { MailActuatorOptions } from "./options.ts";
import { hashPassword } from "./password.ts";
import { renderDovecotAuthConf } from "./render-dovecot.ts";
import {
  countCommand,
  countReloadsInLog,
  daemonTestsBlocked,
  doveadmAuth,
  findProgram,
  freePort,
  groupId,
  IN_CI,
  maildirNew,
  makeContext,
  SmtpClient,
  startDovecot,
  startPostfix,
  stopPid,
  stopPostfix,
  tempRoot,
  waitFor,
  writeCountingPostfix,
  writeDovecotConf,
} from "./test/support.ts";

const blocked = daemonTestsBlocked(["postfix", "dovecot", "doveadm", "git"]);
const skip = blocked !== undefined && !IN_CI ? blocked : false;
if (skip !== false) console.error(`\n*** skipping the mail actuator tests with real Postfix and Dovecot: ${skip} ***\n`);

function service(id: string, domains: string[], mail: Record<string, unknown> | undefined): ServiceSpec {
  return ServiceSpec.parse({ schemaVersion: 1, kind: "Service", id, domains: domains.map((name) => ({ name })), ...(mail === undefined ? {} : { mail }) });
}

/** Every file under some folders with its mtime and inode, to tell whether anything was rewritten. */
async function snapshot(dirs: readonly string[]): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else {
        const stats = await stat(path);
        files.set(path, `${stats.ino}:${stats.mtimeMs}:${stats.size}`);
      }
    }
  };
  for (const dir of dirs) await walk(dir);
  return files;
}

describe("the mail actuator with real Postfix and Dovecot", () => {
  let root = "";
  let cleanup = async () => {};
  let options: MailActuatorOptions;
  let context: ActuatorContext & { logFile: string };
  let port = 0;
  let countFile = "";
  let maillog = "";
  let postfixBin = "";
  let postfixPid: number | undefined;
  let dovecotPid: number | undefined;
  let dovecotConf = "";
  let configDir = "";
  let closeLogger = async () => {};
  let actuator: ReturnType<typeof createMailActuator>;
  const passwords = new Map<string, string>();
  let alphaMail: Record<string, unknown> = {};

  const reconcile = (id: string, spec: ServiceSpec | undefined) => converge(actuator, { id, spec }, context);
  const reloads = () => countCommand(countFile, "reload");

  /** Commits, then waits until Postfix's log shows as many reloads as the actuator asked for. */
  async function commit(): Promise<void> {
    await commitActuator(actuator, context);
    const asked = await reloads();
    if (postfixPid !== undefined) await waitFor(`${asked} postfix reloads in the log`, async () => ((await countReloadsInLog(maillog)) >= asked ? true : undefined));
  }

  /** The reply to RCPT TO for an address, polled until it has `code` (a reload ends old smtpd processes asynchronously). */
  async function rcptEventually(address: string, code: number): Promise<string> {
    let last = "";
    try {
      return await waitFor(`RCPT TO:<${address}> to answer ${code}`, async () => {
        const client = await SmtpClient.connect(port);
        try {
          await client.command("MAIL FROM:<sender@outside.test>");
          const reply = await client.command(`RCPT TO:<${address}>`);
          last = `${reply.code} ${reply.text}`;
          return reply.code === code ? last : undefined;
        } finally {
          await client.close();
        }
      }, 10_000);
    } catch (error) {
      throw new Error(`${(error as Error).message}; last reply: ${last}`, { cause: error });
    }
  }

  /** Sends a message and waits until it lands in the Maildir of `mailbox`. */
  async function deliver(to: string, mailbox: string, subject: string): Promise<void> {
    await rcptEventually(to, 250);
    const before = new Set(maildirNew(options.mailRoot, mailbox));
    const client = await SmtpClient.connect(port);
    try {
      const result = await client.send("sender@outside.test", [to], `Subject: ${subject}\n\n${subject}\n`);
      assert.equal(result.rcpt[0]?.code, 250, result.rcpt[0]?.text);
      assert.equal(result.data?.code, 250, result.data?.text);
    } finally {
      await client.close();
    }
    // Maildir names do not sort by arrival, so look at the files that were not there before.
    const at = mailbox.lastIndexOf("@");
    const dir = join(options.mailRoot, mailbox.slice(at + 1), mailbox.slice(0, at), "new");
    await waitFor(`the message "${subject}" in ${mailbox}'s Maildir`, async () => {
      for (const name of maildirNew(options.mailRoot, mailbox).filter((n) => !before.has(n))) {
        if ((await readFile(join(dir, name), "utf8")).includes(`Subject: ${subject}\n`)) return true;
      }
      return undefined;
    });
  }

  async function authEventually(user: string, password: string, ok: boolean): Promise<void> {
    let output = "";
    await waitFor(`dovecot to ${ok ? "accept" : "refuse"} ${user}`, () => {
      const result = doveadmAuth(dovecotConf, user, password);
      output = result.output;
      return Promise.resolve(result.ok === ok ? true : undefined);
    }, 10_000).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}: ${output}`, { cause: error });
    });
  }

  before(async () => {
    if (skip !== false) return;
    if (blocked !== undefined) throw new Error(`CI=true: ${blocked}`);
    ({ dir: root, cleanup } = await tempRoot("coyote-mailconf-"));
    port = await freePort();
    countFile = join(root, "postfix-commands");
    maillog = join(root, "maillog");
    postfixBin = await writeCountingPostfix(root, findProgram("postfix") ?? "/usr/sbin/postfix", countFile);
    const dovecotGid = groupId("dovecot");
    assert.ok(dovecotGid !== undefined, "the dovecot group exists (Debian package dovecot-core)");
    configDir = join(root, "postfix");
    options = {
      stateDir: join(root, "state"),
      postfix: {
        configDir,
        queueDirectory: join(root, "queue"),
        dataDirectory: join(root, "data"),
        smtpListen: `127.0.0.1:${port}`,
        postfixBin,
        maillogFile: maillog,
      },
      dovecot: { usersFile: join(root, "dovecot-users", "passwd"), readerGid: dovecotGid },
      mailRoot: join(root, "mail"),
      vmailUid: 5000,
      vmailGid: 5000,
    };
    actuator = createMailActuator(options);
    context = await makeContext(options.stateDir);
    closeLogger = () => context.logger.close();
    dovecotConf = await writeDovecotConf(root, renderDovecotAuthConf(options.dovecot.usersFile));
    passwords.set("alice@a.test", "alice-pw");
    passwords.set("bob@a.test", "bob-pw");
    alphaMail = {
      mailboxes: [
        { address: "alice@a.test", passwordHash: await hashPassword("alice-pw") },
        // A PHC string without Dovecot's scheme prefix, as a web framework would store it.
        { address: "bob@a.test", passwordHash: (await hashPassword("bob-pw", { scheme: "ARGON2ID" })).replace("{ARGON2ID}", "") },
      ],
      aliases: [{ address: "info@a.test", to: ["alice@a.test"] }],
    };
  });

  after(async () => {
    // Whatever failed before, stop what may have started: both daemons by pid, Postfix by its
    // config folder too (its master may be up even if reading its pid failed).
    if (configDir !== "") await stopPostfix(findProgram("postfix") ?? "/usr/sbin/postfix", configDir, postfixPid);
    const dovecotPidFile = root === "" ? "" : await readFile(join(root, "run", "master.pid"), "utf8").catch(() => "");
    const pid = dovecotPid ?? (dovecotPidFile.trim() === "" ? undefined : Number(dovecotPidFile.trim()));
    if (pid !== undefined) await stopPid(pid);
    await closeLogger();
    await cleanup();
  });

  it("provisions a service: its fragment, the maps, the users file and a DKIM key, in a config `postfix check` accepts", { skip }, async () => {
    const result = await reconcile("alpha", service("alpha", ["a.test"], alphaMail));
    assert.equal(result.changed, true);
    assert.deepEqual(result.plan.steps.map((s) => s.kind), ["write-fragment", "ensure-dkim"]);
    await commit();
    assert.equal(await reloads(), 0, "postfix is not running yet: nothing to reload");
    const paths = mailPaths(options.stateDir);
    assert.equal((await stat(join(paths.services, "alpha.json"))).mode & 0o777, 0o600, "the fragment holds hashes");
    assert.equal(existsSync(paths.reloadPending), false);
    const mailboxes = await readFile(join(options.postfix.configDir, "virtual_mailboxes"), "utf8");
    assert.match(mailboxes, /^alice@a\.test a\.test\/alice\/$/m);
    const users = await readFile(options.dovecot.usersFile, "utf8");
    assert.match(users, /^bob@a\.test:\{ARGON2ID\}\$argon2id\$/m, "the PHC string got its {ARGON2ID} prefix");

    const check = spawnSync(postfixBin, ["-c", options.postfix.configDir, "check"], { encoding: "utf8" });
    assert.equal(check.status, 0, `${check.stderr}\n${await readFile(maillog, "utf8").catch(() => "")}`);
    postfixPid = await startPostfix(postfixBin, options.postfix.configDir, options.postfix.queueDirectory, join(root, "postfix.out"));
    dovecotPid = await startDovecot(dovecotConf, join(root, "run"), join(root, "dovecot.out"));
  });

  it("delivers mail for a mailbox to its Maildir, rejects unknown users with 550 5.1.1 and refuses other domains", { skip }, async () => {
    await deliver("alice@a.test", "alice@a.test", "hello-alice");
    const unknown = await rcptEventually("nobody@a.test", 550);
    assert.match(unknown, /5\.1\.1/);
    const relay = await rcptEventually("someone@elsewhere.test", 554);
    assert.match(relay, /5\.7\.1 .*Relay access denied/);
  });

  it("delivers mail for an alias to its target mailbox", { skip }, async () => {
    await deliver("info@a.test", "alice@a.test", "hello-info");
    assert.deepEqual(maildirNew(options.mailRoot, "info@a.test"), [], "an alias has no Maildir of its own");
  });

  it("lets Dovecot log users in with the hashes from the spec, and refuses wrong passwords", { skip }, async () => {
    await authEventually("alice@a.test", "alice-pw", true);
    await authEventually("alice@a.test", "wrong", false);
    await authEventually("bob@a.test", "bob-pw", true);
    await authEventually("bob@a.test", "alice-pw", false);
  });

  it("changes nothing when the same spec is applied again: no file rewritten, no reload", { skip }, async () => {
    const dirs = [join(options.stateDir, "mail"), options.postfix.configDir, join(root, "dovecot-users")];
    const before = await snapshot(dirs);
    const reloadsBefore = await reloads();
    const logReloadsBefore = await countReloadsInLog(maillog);
    const result = await reconcile("alpha", service("alpha", ["a.test"], alphaMail));
    assert.equal(result.changed, false);
    assert.deepEqual(result.plan.steps, []);
    await commit();
    assert.deepEqual(await snapshot(dirs), before);
    assert.equal(await reloads(), reloadsBefore);
    assert.equal(await countReloadsInLog(maillog), logReloadsBefore);
  });

  it("adds a second service's domain without touching the first's mail, and on deletion removes the domain but keeps the Maildir", { skip }, async () => {
    const aliceMail = maildirNew(options.mailRoot, "alice@a.test");
    const reloadsBefore = await reloads();
    const beta = service("beta", ["b.test"], {
      mailboxes: [{ address: "carol@b.test", passwordHash: await hashPassword("carol-pw", { scheme: "SCRAM-SHA-256" }) }],
      catchAll: "carol@b.test",
    });
    await reconcile("beta", beta);
    await commit();
    assert.equal(await reloads(), reloadsBefore + 1, "one reload for the batch");
    await deliver("carol@b.test", "carol@b.test", "hello-carol");
    await deliver("anything@b.test", "carol@b.test", "hello-catch-all");
    await authEventually("carol@b.test", "carol-pw", true);
    assert.deepEqual(maildirNew(options.mailRoot, "alice@a.test"), aliceMail, "the first service's mail is untouched");
    assert.ok(existsSync(join(options.stateDir, "mail", "dkim", "b.test.key")));

    const deleted = await reconcile("beta", undefined);
    assert.deepEqual(deleted.plan.steps.map((s) => s.kind), ["remove-dkim", "remove-fragment"]);
    await commit();
    assert.equal(await reloads(), reloadsBefore + 2);
    assert.doesNotMatch(await readFile(join(options.postfix.configDir, "virtual_domains"), "utf8"), /b\.test/);
    assert.match(await rcptEventually("carol@b.test", 554), /Relay access denied/);
    assert.equal(maildirNew(options.mailRoot, "carol@b.test").length, 2, "the deleted service's Maildir and its mail are kept");
    assert.equal(existsSync(join(options.stateDir, "mail", "dkim", "b.test.key")), false);
    assert.equal(existsSync(join(options.stateDir, "mail", "dkim", "b.test.json")), false);
    await authEventually("carol@b.test", "carol-pw", false);
    assert.deepEqual(maildirNew(options.mailRoot, "alice@a.test"), aliceMail);
    await rcptEventually("alice@a.test", 250);
    assert.equal((await reconcile("beta", undefined)).changed, false, "deleting twice is a no-op");
  });

  it("reports an unsupported password hash as a terminal error naming the address, while the other mailboxes and services keep working", { skip }, async () => {
    const gamma = service("gamma", ["c.test"], {
      mailboxes: [
        { address: "dave@c.test", passwordHash: await hashPassword("dave-pw") },
        { address: "erin@c.test", passwordHash: "$scrypt$ln=16,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo" },
      ],
    });
    await assert.rejects(reconcile("gamma", gamma), (error: unknown) => {
      assert.ok(error instanceof ActuatorError);
      assert.equal(error.reason, "UnsupportedPasswordHash");
      assert.equal(error.terminal, true);
      assert.match(error.message, /^applying mail for service gamma: unsupported password hash for erin@c\.test/);
      assert.doesNotMatch(error.message, /c2FsdHNhbHQ/, "the hash itself is not echoed");
      return true;
    });
    await commit();
    await deliver("dave@c.test", "dave@c.test", "hello-dave");
    await authEventually("dave@c.test", "dave-pw", true);
    await rcptEventually("erin@c.test", 550);
    await rcptEventually("alice@a.test", 250);
    await authEventually("alice@a.test", "alice-pw", true);

    // Again: nothing is left to change, so the plan itself reports it, and nothing is rewritten.
    const fragment = join(options.stateDir, "mail", "services", "gamma.json");
    const mtime = (await stat(fragment)).mtimeMs;
    await assert.rejects(reconcile("gamma", gamma), (error: unknown) => error instanceof ActuatorError && error.terminal && /^planning mail for service gamma: .*erin@c\.test/.test(error.message));
    assert.equal((await stat(fragment)).mtimeMs, mtime);

    // A working mailbox whose hash is edited into one Dovecot cannot use keeps its old hash.
    const broken = structuredClone(alphaMail) as { mailboxes: Array<{ address: string; passwordHash: string }> };
    const alice = broken.mailboxes[0];
    assert.ok(alice !== undefined);
    alice.passwordHash = "{SCRAM-SHA-512}4096,c2FsdA==,a2V5,c2Vydg==";
    await assert.rejects(reconcile("alpha", service("alpha", ["a.test"], broken)), (error: unknown) => error instanceof ActuatorError && /alice@a\.test .*previous hash is kept/.test(error.message));
    await commit();
    await authEventually("alice@a.test", "alice-pw", true);
    await rcptEventually("alice@a.test", 250);
  });

  it("refuses a domain that another service has, without touching that service", { skip }, async () => {
    const before = await snapshot([join(options.stateDir, "mail")]);
    const intruder = service("intruder", ["a.test"], { mailboxes: [{ address: "mallory@a.test", passwordHash: await hashPassword("x") }] });
    await assert.rejects(reconcile("intruder", intruder), (error: unknown) =>
      error instanceof ActuatorError && error.reason === "MailDomainTaken" && !error.terminal && /domain a\.test already receives mail for service alpha/.test(error.message));
    assert.deepEqual(await snapshot([join(options.stateDir, "mail")]), before);
    await rcptEventually("mallory@a.test", 550);
  });

  it("creates one DKIM key per domain, mode 0600, whose JSON record holds the matching SPKI public key, and never replaces it", { skip }, async () => {
    const keyPath = join(options.stateDir, "mail", "dkim", "a.test.key");
    const recordPath = join(options.stateDir, "mail", "dkim", "a.test.json");
    const keyStats = await stat(keyPath);
    assert.equal(keyStats.mode & 0o777, 0o600);
    const pem = await readFile(keyPath, "utf8");
    const record = DkimRecordFile.parse(JSON.parse(await readFile(recordPath, "utf8")));
    assert.equal(record.selector, "coyote");
    const der = Buffer.from(record.txt.replace(/^v=DKIM1; k=rsa; p=/, ""), "base64");
    const publicKey = createPublicKey({ key: der, format: "der", type: "spki" });
    assert.equal(publicKey.asymmetricKeyType, "rsa");
    assert.equal(publicKey.asymmetricKeyDetails?.modulusLength, 2048);
    const signature = sign("sha256", Buffer.from("dkim"), createPrivateKey(pem));
    assert.ok(verify("sha256", Buffer.from("dkim"), publicKey, signature), "the published key verifies the private key's signature");

    // A lost record (a crash between the key and its record) is rebuilt from the same key.
    await unlink(recordPath);
    const again = await reconcile("alpha", service("alpha", ["a.test"], alphaMail));
    assert.deepEqual(again.plan.steps.map((s) => s.kind), ["ensure-dkim"]);
    assert.equal(await readFile(keyPath, "utf8"), pem, "the key is not replaced");
    assert.equal((await stat(keyPath)).mtimeMs, keyStats.mtimeMs);
    assert.deepEqual(DkimRecordFile.parse(JSON.parse(await readFile(recordPath, "utf8"))), record);
    assert.equal((await reconcile("alpha", service("alpha", ["a.test"], alphaMail))).changed, false);
  });

  it("lets Dovecot see a changed password without reloading anything", { skip }, async () => {
    const reloadsBefore = await reloads();
    const changed = structuredClone(alphaMail) as { mailboxes: Array<{ address: string; passwordHash: string }> };
    const alice = changed.mailboxes[0];
    assert.ok(alice !== undefined);
    alice.passwordHash = await hashPassword("alice-new-pw");
    alphaMail = changed;
    await reconcile("alpha", service("alpha", ["a.test"], alphaMail));
    await commit();
    assert.equal(await reloads(), reloadsBefore, "the Postfix maps did not change");
    await authEventually("alice@a.test", "alice-new-pw", true);
    await authEventually("alice@a.test", "alice-pw", false);
  });

  it("lets Dovecot log a user in with the hash read from the secret the spec names", { skip }, async () => {
    const name = "credential-alpha-mail-0123456789abcdef-0123456789ab";
    await context.store.writeSecret(name, await hashPassword("from-secrets"));
    const changed = structuredClone(alphaMail) as { mailboxes: Array<Record<string, unknown>> };
    const alice = changed.mailboxes[0];
    assert.ok(alice !== undefined);
    delete alice.passwordHash;
    alice.credential = name;
    alphaMail = changed;
    await reconcile("alpha", service("alpha", ["a.test"], alphaMail));
    await commit();
    await authEventually("alice@a.test", "from-secrets", true);
    const fragment = await readFile(join(options.stateDir, "mail", "services", "alpha.json"), "utf8");
    assert.doesNotMatch(fragment, new RegExp(name), "the fragment holds the hash itself, never a name to look up later");
  });

  it("reloads at the next commit when a commit died between writing the Postfix files and reloading", { skip }, async () => {
    // A postfix that fails to reload stands in for a crash right before the reload.
    const failing = join(root, "postfix-failing-reload");
    await writeFile(failing, `#!/bin/sh\n[ "$3" = reload ] && exit 1\nexec '${postfixBin}' "$@"\n`, { mode: 0o755 });
    const broken = createMailActuator({ ...options, postfix: { ...options.postfix, postfixBin: failing } });
    const withAlias = { ...alphaMail, aliases: [{ address: "info@a.test", to: ["alice@a.test"] }, { address: "sales@a.test", to: ["bob@a.test"] }] };
    alphaMail = withAlias;
    await converge(broken, { id: "alpha", spec: service("alpha", ["a.test"], withAlias) }, context);
    const reloadsBefore = await reloads();
    await assert.rejects(broken.commit?.(context) ?? Promise.resolve(), (error: unknown) => error instanceof ActuatorError && error.reason === "PostfixReloadFailed" && !error.terminal);
    assert.ok(existsSync(mailPaths(options.stateDir).reloadPending), "the pending reload is remembered");
    assert.match(await readFile(join(options.postfix.configDir, "virtual_aliases"), "utf8"), /^sales@a\.test bob@a\.test$/m);

    await commit();
    assert.equal(await reloads(), reloadsBefore + 1, "the files were already converged, yet the reload happens");
    assert.equal(existsSync(mailPaths(options.stateDir).reloadPending), false);
    await deliver("sales@a.test", "bob@a.test", "hello-sales");
    await commit();
    assert.equal(await reloads(), reloadsBefore + 1, "and only once");
  });
});

describe("createMailActuator without daemons", () => {
  const options: MailActuatorOptions = {
    stateDir: "/nonexistent/coyote-mailconf/state",
    postfix: { configDir: "/nonexistent/coyote-mailconf/postfix", queueDirectory: "/nonexistent/q", dataDirectory: "/nonexistent/d", smtpListen: "127.0.0.1:2525" },
    dovecot: { usersFile: "/nonexistent/coyote-mailconf/users/passwd" },
    mailRoot: "/nonexistent/mail",
    vmailUid: 5000,
    vmailGid: 5000,
  };
  const server = ServerSpec.parse({ schemaVersion: 1, kind: "Server", name: "test", hostname: "mx.test.example" });
  const empty: MailObserved = { fragmentText: undefined, fragment: undefined, owners: {}, dkim: {} };

  it("is side-effect free and satisfies the actuator contract", () => {
    const actuator = createMailActuator(options) satisfies Actuator<MailObserved, MailStep>;
    assert.ok(isActuator(actuator));
    assert.equal(actuator.id, "actuator.mailconf.postfix");
    assert.equal(actuator.condition, "MailReady");
    assert.equal(existsSync("/nonexistent/coyote-mailconf"), false);
  });

  it("plans the same steps for the same input, and nothing for a deleted service that left nothing behind", () => {
    const actuator = createMailActuator(options);
    const spec = service("alpha", ["a.test"], { mailboxes: [{ address: "Alice@a.test", passwordHash: "$6$salt$hash" }] });
    const first = actuator.plan({ id: "alpha", spec }, empty, server);
    assert.deepEqual(actuator.plan({ id: "alpha", spec }, empty, server), first);
    assert.deepEqual(first.steps.map((s) => s.kind), ["write-fragment", "ensure-dkim"]);
    const write = first.steps[0];
    assert.ok(write?.kind === "write-fragment");
    assert.match(write.text, /"address": "alice@a\.test"/, "addresses are stored in lower case");
    assert.match(write.text, /"passwordHash": "\{SHA512-CRYPT\}\$6\$salt\$hash"/);
    assert.deepEqual(actuator.plan({ id: "alpha", spec: undefined }, empty, server).steps, []);
  });

  it("refuses addresses that differ only in letter case, terminally", () => {
    const actuator = createMailActuator(options);
    const spec = service("alpha", ["a.test"], {
      mailboxes: [{ address: "alice@a.test", passwordHash: "$6$salt$hash" }],
      aliases: [{ address: "ALICE@a.test", to: ["bob@b.test"] }],
    });
    assert.throws(() => actuator.plan({ id: "alpha", spec }, empty, server), (error: unknown) => error instanceof ActuatorError && error.reason === "DuplicateAddress" && error.terminal);
  });

  it("never replaces a DKIM key it cannot read: that is a terminal error for a human", () => {
    const actuator = createMailActuator(options);
    const spec = service("alpha", ["a.test"], { mailboxes: [] });
    const observed: MailObserved = { ...empty, dkim: { "a.test": { keyMode: 0o600, recordText: undefined, expectedRecordText: undefined, keyError: "not a pem" } } };
    assert.throws(() => actuator.plan({ id: "alpha", spec }, observed, server), (error: unknown) => error instanceof ActuatorError && error.reason === "InvalidDkimKey" && error.terminal);
  });
});
