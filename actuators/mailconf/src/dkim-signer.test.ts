// Outgoing mail signed end to end: the mail actuator makes a domain's key, dnsconf's built-in
// server publishes it, OpenDKIM signs with the signer's files, Postfix (rendered by this actuator)
// delivers to a Maildir, and mailauth verifies the delivered message against the box's own DNS.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmod, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ActuatorError, commitActuator, converge } from "@coyote/actuator";
import type { ActuatorContext } from "@coyote/actuator";
import { createDnsActuator } from "@coyote/actuator-dnsconf";
import { grantPassage } from "@coyote/component";
import { ServiceSpec } from "@coyote/spec";
import { freeUdpTcpPort, tempDir } from "@coyote/testing";
import { dkimVerify } from "mailauth";
import { createTransport } from "nodemailer";
import { createMailActuator } from "./actuator.ts";
import { dkimRecordOf, dkimRecordText, generateDkimKey } from "./dkim.ts";
import { postfixMilterLines, renderSignerFiles, signerPaths, writeSignerFiles } from "./dkim-signer.ts";
import type { DkimSignerOptions } from "./dkim-signer.ts";
import type { MailActuatorOptions } from "./options.ts";
import { hashPassword } from "./password.ts";
import { renderMainCf } from "./render.ts";
import { boxResolver, dnsContext, signerAccount, signerTempRoot, startOpenDkim, waitForSocket } from "./test/dkim-support.ts";
import type { GroupDaemon } from "./test/dkim-support.ts";
import { daemonTestsBlocked, findProgram, freePort, IN_CI, maildirNew, startPostfix, stopPostfix, waitFor } from "./test/support.ts";

const blocked = daemonTestsBlocked(["postfix", "opendkim", "git"]);
const skip = blocked !== undefined && !IN_CI ? blocked : false;
if (skip !== false) console.error(`\n*** skipping the DKIM signing tests with real Postfix and OpenDKIM: ${skip} ***\n`);

const HOSTNAME = "mx.box.test";
const DOMAIN = "shop.test";
const MAILBOX = `alice@${DOMAIN}`;

describe("outgoing mail signed by OpenDKIM and verified against the box's own DNS", () => {
  let root = "";
  let cleanup = async () => {};
  let options: MailActuatorOptions;
  let signer: DkimSignerOptions;
  let context: ActuatorContext & { logFile: string };
  let smtpPort = 0;
  let dnsPort = 0;
  let postfixPid: number | undefined;
  let opendkim: GroupDaemon | undefined;
  let stopDns: (() => Promise<void>) | undefined;
  let closeLogger = async () => {};
  let mail: ReturnType<typeof createMailActuator>;
  let dns: ReturnType<typeof createDnsActuator>;

  const mainCf = () => join(options.postfix.configDir, "main.cf");

  /**
   * Writes main.cf as the actuator renders it, with or without the signer's lines, and (re)starts
   * Postfix: a restart, not a reload, so that no smtpd process of the old configuration serves the
   * next connection.
   */
  async function renderPostfix(withSigner: boolean): Promise<void> {
    await writeFile(mainCf(), renderMainCf(withSigner ? options : { ...options, dkimSigner: undefined }, HOSTNAME));
    const postfix = findProgram("postfix") ?? "/usr/sbin/postfix";
    if (postfixPid !== undefined) await stopPostfix(postfix, options.postfix.configDir, postfixPid);
    postfixPid = await startPostfix(postfix, options.postfix.configDir, options.postfix.queueDirectory, join(root, "postfix-start.log"));
  }

  /** Sends one message with nodemailer over SMTP on loopback and returns the delivered file's text. */
  async function sendAndRead(from: string, subject: string, localAddress = "127.0.0.1"): Promise<string> {
    const seen = new Set(maildirNew(options.mailRoot, MAILBOX));
    const transport = createTransport({ host: "127.0.0.1", port: smtpPort, localAddress, secure: false, ignoreTLS: true, connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 20_000 });
    try {
      await transport.sendMail({ from, to: MAILBOX, subject, text: `${subject}\nA second line, and a trailing space \n` });
    } finally {
      transport.close();
    }
    return delivered(subject, seen);
  }

  /** The text of the message with this subject that arrives in the mailbox, among the files not in `seen`. */
  function delivered(subject: string, seen: ReadonlySet<string>, timeoutMs = 10_000): Promise<string> {
    const dir = join(options.mailRoot, DOMAIN, "alice", "new");
    return waitFor(`"${subject}" in ${MAILBOX}'s Maildir`, async () => {
      for (const name of maildirNew(options.mailRoot, MAILBOX).filter((n) => !seen.has(n))) {
        const text = await readFile(join(dir, name), "utf8");
        if (text.includes(`Subject: ${subject}`)) return text;
      }
      return undefined;
    }, timeoutMs);
  }

  before(async () => {
    if (skip !== false) return;
    if (blocked !== undefined) throw new Error(`CI=true: ${blocked}`);
    const account = signerAccount();
    assert.ok(account !== undefined, "the opendkim user (Debian package opendkim) and the postfix group exist");
    ({ dir: root, cleanup } = await signerTempRoot("coyote-dkim-"));
    smtpPort = await freePort();
    dnsPort = await freeUdpTcpPort();
    const stateDir = join(root, "state");
    options = {
      stateDir,
      postfix: { configDir: join(root, "postfix"), queueDirectory: join(root, "queue"), dataDirectory: join(root, "data"), smtpListen: `127.0.0.1:${smtpPort}`, maillogFile: join(root, "maillog") },
      dovecot: { usersFile: join(root, "dovecot-users", "passwd") },
      mailRoot: join(root, "mail"),
      vmailUid: 5000,
      vmailGid: 5000,
      // The actuator's commit writes the signer's files, and main.cf names its milter.
      dkimSigner: { account },
    };
    context = await dnsContext(stateDir, HOSTNAME, dnsPort);
    closeLogger = () => context.logger.close();
    // OpenDKIM takes on its user before it makes its socket and reads a key at each signature,
    // and Postfix's smtpd reaches that socket as its own: both are given passage through the
    // state folder, as the daemon supervisor does.
    await grantPassage(context.stateDir, ["opendkim", "postfix"]);
    const spec = ServiceSpec.parse({ schemaVersion: 1, kind: "Service", id: "shop", domains: [{ name: DOMAIN }], mail: { mailboxes: [{ address: MAILBOX, passwordHash: await hashPassword("alice-pw") }] } });

    // The mail actuator makes the key and the Postfix instance; dnsconf publishes the key.
    mail = createMailActuator(options);
    await converge(mail, { id: "shop", spec }, context);
    await commitActuator(mail, context);
    dns = createDnsActuator({ stateDir, backend: "builtin" });
    await converge(dns, { id: "shop", spec }, context);
    await commitActuator(dns, context);
    const handle = await dns.start?.(context);
    stopDns = handle === undefined ? undefined : () => handle.stop();

    signer = { stateDir, account };
    const written = await writeSignerFiles(signer);
    assert.deepEqual(written.domains, [DOMAIN]);
    assert.deepEqual(written.skipped, []);
    opendkim = startOpenDkim(signerPaths(stateDir).conf, join(root, "opendkim.log"));
    await waitForSocket(signerPaths(stateDir).socket);

    await renderPostfix(true);
  });

  after(async () => {
    if (root !== "") await stopPostfix(findProgram("postfix") ?? "/usr/sbin/postfix", options.postfix.configDir, postfixPid);
    await opendkim?.stop();
    await stopDns?.();
    await closeLogger();
    await cleanup();
  });

  it("signs a hosted domain's message with its key, relaxed/relaxed, and the signature verifies against the box's DNS", { skip }, async () => {
    const message = await sendAndRead(`Alice <${MAILBOX}>`, "signed hello");
    assert.match(message, /^DKIM-Signature: /m, message.slice(0, 2000));
    const verdict = await dkimVerify(Buffer.from(message), { resolver: boxResolver(dnsPort) });
    const result = verdict.results[0];
    assert.equal(verdict.results.length, 1);
    assert.equal(result?.status.result, "pass", JSON.stringify(result, null, 2));
    assert.equal(result.signingDomain, DOMAIN);
    assert.equal(result.selector, "coyote");
    assert.equal(result.format, "relaxed/relaxed");
    assert.equal(result.algo, "rsa-sha256");

    // The verifier is not a rubber stamp: the same message with its body changed fails.
    const tampered = message.replace("A second line", "A changed line");
    const bad = await dkimVerify(Buffer.from(tampered), { resolver: boxResolver(dnsPort) });
    assert.notEqual(bad.results[0]?.status.result, "pass");
  });

  it("signs mail submitted on the box with sendmail (non_smtpd_milters) as well", { skip }, async () => {
    const seen = new Set(maildirNew(options.mailRoot, MAILBOX));
    const subject = "submitted with sendmail";
    const result = spawnSync(findProgram("sendmail") ?? "/usr/sbin/sendmail", ["-C", options.postfix.configDir, "-f", MAILBOX, MAILBOX], {
      input: `From: Alice <${MAILBOX}>\nTo: ${MAILBOX}\nSubject: ${subject}\n\nA line from the box itself.\n`,
      encoding: "utf8",
      timeout: 20_000,
    });
    assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
    // Through the maildrop and pickup, which looks every 60 s unless woken: allow it that long.
    const message = await delivered(subject, seen, 70_000);
    const verdict = await dkimVerify(Buffer.from(message), { resolver: boxResolver(dnsPort) });
    assert.equal(verdict.results[0]?.status.result, "pass", message.slice(0, 1500));
  });

  it("does not sign a message whose From: is a domain the box does not host, nor a look-alike", { skip }, async () => {
    for (const from of ["someone@elsewhere.test", `someone@${DOMAIN}.evil.test`, `someone@evil-${DOMAIN}`, `someone@sub.${DOMAIN}`]) {
      const message = await sendAndRead(from, `unsigned from ${from}`);
      assert.doesNotMatch(message, /^DKIM-Signature: /m, `${from}: ${message.slice(0, 2000)}`);
    }
  });

  it("does not sign a hosted domain's message from a client that neither is internal nor authenticated", { skip }, async () => {
    // 127.0.0.2 is loopback but not in InternalHosts: to the signer it is any host out there.
    const message = await sendAndRead(MAILBOX, "from outside", "127.0.0.2");
    assert.match(message, /client=localhost\[127\.0\.0\.2\]|from [^\n]*127\.0\.0\.2/, "Postfix saw the other address");
    assert.doesNotMatch(message, /^DKIM-Signature: /m);
  });

  it("without the milter lines in main.cf the same message arrives unsigned and does not verify", { skip }, async () => {
    await renderPostfix(false);
    try {
      const message = await sendAndRead(MAILBOX, "not signed");
      assert.doesNotMatch(message, /^DKIM-Signature: /m);
      const verdict = await dkimVerify(Buffer.from(message), { resolver: boxResolver(dnsPort) });
      assert.notEqual(verdict.results[0]?.status.result, "pass");
    } finally {
      await renderPostfix(true);
    }
  });

  it("a domain added later is signed once the signer re-reads its tables on SIGUSR1, with the same pid", { skip }, async () => {
    const second = ServiceSpec.parse({ schemaVersion: 1, kind: "Service", id: "second", domains: [{ name: "second.test" }], mail: {} });
    await converge(mail, { id: "second", spec: second }, context);
    await commitActuator(mail, context);
    await converge(dns, { id: "second", spec: second }, context);
    await commitActuator(dns, context);
    // The commit wrote the new domain's tables; the signer has not re-read them yet.
    await renderPostfix(true);
    const before = await sendAndRead("bob@second.test", "before the reload");
    assert.doesNotMatch(before, /^DKIM-Signature: /m, "not signed while the signer does not know the domain");

    const written = await writeSignerFiles(signer);
    assert.deepEqual(written.domains, ["second.test", DOMAIN]);
    assert.ok(opendkim !== undefined);
    // OpenDKIM re-reads its configuration and tables at the next milter connection after the
    // signal (Postfix opens one per SMTP session); the signal is handled by a thread of its own,
    // so the first message may just miss it.
    process.kill(opendkim.pid, "SIGUSR1");
    const message = await waitFor("a message from second.test signed after the reload", async () => {
      const text = await sendAndRead("bob@second.test", `after the reload ${String(performance.now())}`);
      return /^DKIM-Signature: /m.test(text) ? text : undefined;
    }, 5000);
    const verdict = await dkimVerify(Buffer.from(message), { resolver: boxResolver(dnsPort) });
    assert.equal(verdict.results[0]?.status.result, "pass", JSON.stringify(verdict.results[0], null, 2));
    assert.equal(verdict.results[0].signingDomain, "second.test");
    assert.equal(opendkim.alive(), true);
  });

  it("signs a From: whose domain is written in capitals", { skip }, async () => {
    const message = await sendAndRead(`Alice <alice@${DOMAIN.toUpperCase()}>`, "capitals");
    const verdict = await dkimVerify(Buffer.from(message), { resolver: boxResolver(dnsPort) });
    assert.equal(verdict.results[0]?.status.result, "pass", message.slice(0, 1500));
  });

  it("while the signer is down a message is refused with a 4xx, to be retried, and never leaves unsigned", { skip }, async () => {
    await opendkim?.stop();
    const transport = createTransport({ host: "127.0.0.1", port: smtpPort, secure: false, ignoreTLS: true, connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 20_000 });
    try {
      await assert.rejects(transport.sendMail({ from: MAILBOX, to: MAILBOX, subject: "signer down", text: "signer down\n" }), (error: unknown) => {
        const code = (error as { responseCode?: number }).responseCode ?? 0;
        return code >= 400 && code < 500;
      });
    } finally {
      transport.close();
    }
    opendkim = startOpenDkim(signerPaths(options.stateDir).conf, join(root, "opendkim.log"));
    await waitForSocket(signerPaths(options.stateDir).socket);
    assert.match(await sendAndRead(MAILBOX, "signer back"), /^DKIM-Signature: /m);
  });
});

describe("the signer's files", () => {
  const stateDir = "/var/lib/coyote";
  const account = { user: "opendkim", uid: 107, group: "postfix", gid: 105 };

  it("renders the same bytes whatever the domains' order, one line per domain in each table", () => {
    const a = renderSignerFiles([{ domain: "b.example", selector: "coyote" }, { domain: "a.example", selector: "s2" }], { stateDir, account });
    const b = renderSignerFiles([{ domain: "a.example", selector: "s2" }, { domain: "b.example", selector: "coyote" }], { stateDir, account });
    assert.deepEqual(a, b);
    const lines = (text: string) => text.split("\n").filter((line) => line !== "" && !line.startsWith("#"));
    assert.deepEqual(lines(a.keyTable), [
      "s2._domainkey.a.example a.example:s2:/var/lib/coyote/mail/opendkim/keys/a.example.private",
      "coyote._domainkey.b.example b.example:coyote:/var/lib/coyote/mail/opendkim/keys/b.example.private",
    ]);
    assert.deepEqual(lines(a.signingTable), ["*@a.example s2._domainkey.a.example", "*@b.example coyote._domainkey.b.example"]);
    assert.deepEqual(lines(a.internalHosts), ["127.0.0.1", "::1"]);
    for (const line of ["Mode                    s", "Canonicalization        relaxed/relaxed", "UserID                  opendkim:postfix", "Socket                  local:/var/lib/coyote/mail/opendkim/run/opendkim.sock", "UMask                   007"]) {
      assert.ok(lines(a.conf).includes(line), line);
    }
    assert.ok(!a.conf.includes("UserID".padEnd(24) + "\n"), "no empty value");
    assert.ok(!renderSignerFiles([], { stateDir }).conf.includes("UserID"), "no UserID without an account");
  });

  it("refuses a domain, selector, account or path that could add a line or a field", () => {
    const hostile: Array<[string, () => unknown]> = [
      ["domain with a line break", () => renderSignerFiles([{ domain: "a.example\nMode v", selector: "coyote" }], { stateDir })],
      ["domain with a space", () => renderSignerFiles([{ domain: "a.example *", selector: "coyote" }], { stateDir })],
      ["domain with a colon", () => renderSignerFiles([{ domain: "a.example:x", selector: "coyote" }], { stateDir })],
      ["selector with a line break", () => renderSignerFiles([{ domain: "a.example", selector: "coyote\nSocket inet:25" }], { stateDir })],
      ["selector with a colon", () => renderSignerFiles([{ domain: "a.example", selector: "a:/etc/shadow" }], { stateDir })],
      ["state folder with a space", () => renderSignerFiles([], { stateDir: "/var/lib/co yote" })],
      ["state folder with a hash", () => renderSignerFiles([], { stateDir: "/var/lib/#coyote" })],
      ["user with a line break", () => renderSignerFiles([], { stateDir, account: { ...account, user: "opendkim\nMode v" } })],
      ["milter port out of range", () => renderSignerFiles([], { stateDir, socket: { kind: "inet", port: 70000 } })],
    ];
    for (const [what, render] of hostile) {
      assert.throws(render, (error: unknown) => error instanceof ActuatorError && error.reason === "InvalidDkimSigner", what);
    }
  });

  it("gives Postfix the milter on the signer's socket, tempfail when it is unreachable, protocol 6", () => {
    assert.deepEqual(postfixMilterLines({ stateDir }).filter((line) => !line.startsWith("#")), [
      "smtpd_milters = unix:/var/lib/coyote/mail/opendkim/run/opendkim.sock",
      "non_smtpd_milters = unix:/var/lib/coyote/mail/opendkim/run/opendkim.sock",
      "milter_default_action = tempfail",
      "milter_protocol = 6",
      "milter_connect_timeout = 10s",
      "milter_command_timeout = 30s",
      "milter_content_timeout = 60s",
    ]);
    const inet = postfixMilterLines({ stateDir, socket: { kind: "inet", port: 8891 }, unreachable: "accept" });
    assert.ok(inet.includes("smtpd_milters = inet:127.0.0.1:8891"));
    assert.ok(inet.includes("milter_default_action = accept"));
    assert.match(renderSignerFiles([], { stateDir, socket: { kind: "inet", port: 8891 } }).conf, /^Socket {18}inet:8891@\[127\.0\.0\.1\]$/m);
  });

  it("signs only for domains whose key is the published one, keeps the copies private and removes those of domains gone", { skip: IN_CI ? false : (daemonTestsBlocked(["opendkim"]) ?? false) }, async () => {
    const { dir, cleanup } = await signerTempRoot("coyote-dkim-files-");
    try {
      const state = join(dir, "state");
      const dkim = join(state, "mail", "dkim");
      await mkdir(dkim, { recursive: true });
      const good = await generateDkimKey();
      const other = await generateDkimKey();
      await writeFile(join(dkim, "good.example.key"), good, { mode: 0o600 });
      await writeFile(join(dkim, "good.example.json"), dkimRecordText(dkimRecordOf(good, "coyote")));
      // A key that is not the published one, a record without a key, a record with a hostile selector, a bad file name.
      await writeFile(join(dkim, "swapped.example.key"), other, { mode: 0o600 });
      await writeFile(join(dkim, "swapped.example.json"), dkimRecordText(dkimRecordOf(good, "coyote")));
      await writeFile(join(dkim, "keyless.example.json"), dkimRecordText(dkimRecordOf(good, "coyote")));
      await writeFile(join(dkim, "hostile.example.key"), good, { mode: 0o600 });
      await writeFile(join(dkim, "hostile.example.json"), JSON.stringify({ selector: "coyote\nMode v", txt: dkimRecordOf(good, "coyote").txt }));
      await writeFile(join(dkim, "Bad Name.json"), dkimRecordText(dkimRecordOf(good, "coyote")));
      const runAs = signerAccount();
      assert.ok(runAs !== undefined, "the opendkim user and the postfix group exist");
      await assert.rejects(writeSignerFiles({ stateDir: state }), (error: unknown) => error instanceof ActuatorError && error.reason === "InvalidDkimSigner", "as root, not without an account");
      const first = await writeSignerFiles({ stateDir: state, account: runAs });
      assert.deepEqual(first.domains, ["good.example"]);
      assert.deepEqual(first.skipped.map((s) => basename(s.file)).sort(), ["Bad Name.json", "hostile.example.json", "keyless.example.json", "swapped.example.json"]);
      const paths = signerPaths(state);
      assert.equal((await stat(paths.keys)).mode & 0o777, 0o700);
      assert.equal((await stat(join(paths.keys, "good.example.private"))).mode & 0o777, 0o600);
      assert.equal((await stat(paths.conf)).mode & 0o777, 0o644);
      assert.doesNotMatch(await readFile(paths.keyTable, "utf8"), /swapped|keyless|hostile|Bad/);
      // OpenDKIM's own check of its configuration accepts what was rendered.
      const check = spawnSync(findProgram("opendkim") ?? "/usr/sbin/opendkim", ["-n", "-x", paths.conf], { encoding: "utf8", timeout: 10_000 });
      assert.equal(check.status, 0, `${check.stdout}${check.stderr}`);

      assert.equal((await stat(join(paths.keys, "good.example.private"))).uid, runAs.uid, "the copy is the signer's");
      assert.deepEqual((await writeSignerFiles({ stateDir: state, account: runAs })).changed, [], "a converged signer writes nothing");
      await rm(join(dkim, "good.example.json"));
      const gone = await writeSignerFiles({ stateDir: state, account: runAs });
      assert.deepEqual(gone.domains, []);
      assert.ok(gone.changed.includes(join(paths.keys, "good.example.private")));
      assert.deepEqual(await readdir(paths.keys), []);

      // A folder above the state folder that the signer's user cannot pass through, or one below
      // a folder anyone may write to, is refused with the folder named rather than left to fail
      // every message. The state folder's own passage is its starter's (an ACL).
      const parentMode = (await stat(dir)).mode & 0o777;
      await chmod(dir, 0o700);
      await assert.rejects(writeSignerFiles({ stateDir: state, account: runAs }), (error: unknown) => error instanceof ActuatorError && error.reason === "DkimSignerUnsafe" && error.message.includes(`${dir} (mode 700)`));
      await chmod(dir, parentMode);
      await chmod(state, 0o700);
      await writeSignerFiles({ stateDir: state, account: runAs });
      const { dir: unsafe, cleanup: cleanupUnsafe } = await tempDir("coyote-dkim-unsafe-");
      try {
        // Below the sticky OS temp folder: accepted (only an entry's owner may rename it there).
        await chmod(unsafe, 0o755);
        await writeSignerFiles({ stateDir: join(unsafe, "sticky"), account: runAs });
        // Below a folder anyone may write to and that is not sticky: refused.
        await chmod(unsafe, 0o777);
        await assert.rejects(writeSignerFiles({ stateDir: join(unsafe, "open"), account: runAs }), (error: unknown) => error instanceof ActuatorError && error.reason === "DkimSignerUnsafe" && error.message.includes(`${unsafe} is writable by others and not sticky`));
      } finally {
        await cleanupUnsafe();
      }
    } finally {
      await cleanup();
    }
  });
});
