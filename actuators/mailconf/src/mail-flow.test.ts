// Mail through the real daemons: Postfix and Dovecot run with the configuration the actuator
// renders, on loopback ports, and real client libraries send and read mail over TLS.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ImapFlow } from "imapflow";
import nodemailer from "nodemailer";
import { commitActuator, converge } from "@coyote/actuator";
import type { ActuatorContext } from "@coyote/actuator";
import { certificateFileName, proxyRuntimePaths, ServiceSpec } from "@coyote/spec";
import { freePorts } from "@coyote/testing";
import { createMailActuator } from "./actuator.ts";
import type { MailActuatorOptions } from "./options.ts";
import { hashPassword } from "./password.ts";
import { dovecotRuntime } from "./render-dovecot.ts";
import { resolveOptions } from "./options.ts";
import { findProgram, groupId, IN_CI, maildirNew, makeContext, servingTestsBlocked, SmtpClient, startDovecot, startPostfix, stopPid, stopPostfix, tempRoot, waitFor } from "./test/support.ts";
import { writeSelfSignedChain } from "./test/tls.ts";

const blocked = servingTestsBlocked();
const skip = blocked !== undefined && !IN_CI ? blocked : false;
if (skip !== false) console.error(`\n*** skipping the mail flow tests with real Postfix and Dovecot: ${skip} ***\n`);

const HOST = "mx.test.example";
const LIMITS = { connectionTimeout: 15_000, greetingTimeout: 15_000, socketTimeout: 30_000 };

function service(id: string, domain: string, mailboxes: Array<{ address: string; passwordHash: string }>): ServiceSpec {
  return ServiceSpec.parse({ schemaVersion: 1, kind: "Service", id, domains: [{ name: domain }], mail: { mailboxes } });
}

describe("mail through real Postfix and Dovecot over TLS", () => {
  let root = "";
  let cleanup = async () => {};
  let options: MailActuatorOptions | undefined;
  let context: ActuatorContext;
  let ca = "";
  let ports = { smtp: 0, submission: 0, submissions: 0, imap: 0, imaps: 0 };
  let postfixPid: number | undefined;
  let dovecotPid: number | undefined;
  let closeLogger = async () => {};

  const tls = () => ({ ca, servername: HOST, minVersion: "TLSv1.2" as const });
  const smtp = (port: number, extra: Record<string, unknown> = {}) => nodemailer.createTransport({ host: "127.0.0.1", port, secure: false, requireTLS: true, tls: tls(), ...LIMITS, ...extra });

  /** Waits until a message with `subject` is in the Maildir of `address`. */
  async function delivered(address: string, subject: string): Promise<void> {
    const mailRoot = options?.mailRoot ?? "";
    const at = address.lastIndexOf("@");
    const dir = join(mailRoot, address.slice(at + 1), address.slice(0, at), "new");
    await waitFor(`"${subject}" in ${address}'s Maildir`, async () => {
      for (const name of maildirNew(mailRoot, address)) {
        if ((await readFile(join(dir, name), "utf8")).includes(`Subject: ${subject}`)) return true;
      }
      return undefined;
    });
  }

  /** The SMTP reply code a refused send got (nodemailer's `responseCode`). */
  async function refused(send: Promise<unknown>): Promise<{ code: number; text: string }> {
    try {
      await send;
    } catch (error) {
      const e = error as { responseCode?: number; response?: string; message: string };
      return { code: e.responseCode ?? 0, text: e.response ?? e.message };
    }
    assert.fail("the message was accepted");
  }

  /** Sends IMAP commands in clear text from 127.0.0.2, one per tagged answer, and returns all the server said. */
  async function imapTranscript(port: number, commands: readonly string[]): Promise<string> {
    const socket = connect({ host: "127.0.0.1", port, localAddress: "127.0.0.2" });
    socket.setEncoding("utf8");
    let text = "";
    socket.on("data", (chunk: string) => {
      if (text.length < 65536) text += chunk;
    });
    try {
      await waitFor("the IMAP greeting", () => Promise.resolve(text.includes("* OK") ? true : undefined), 10_000);
      for (const command of commands) {
        const tag = command.slice(0, command.indexOf(" "));
        socket.write(`${command}\r\n`);
        await waitFor(`the answer to ${tag}`, () => Promise.resolve(new RegExp(`^${tag} (OK|NO|BAD)`, "m").test(text) ? true : undefined), 10_000);
      }
      return text;
    } finally {
      socket.destroy();
    }
  }

  before(async () => {
    if (skip !== false) return;
    if (blocked !== undefined) throw new Error(`CI=true: ${blocked}`);
    ({ dir: root, cleanup } = await tempRoot("coyote-mailflow-"));
    const [smtpPort = 0, submission = 0, submissions = 0, imap = 0, imaps = 0] = await freePorts(5);
    ports = { smtp: smtpPort, submission, submissions, imap, imaps };
    const dovecotGid = groupId("dovecot");
    assert.ok(dovecotGid !== undefined, "the dovecot group exists (Debian package dovecot-core)");
    const stateDir = join(root, "state");
    options = {
      stateDir,
      postfix: {
        configDir: join(root, "postfix"),
        queueDirectory: join(root, "queue"),
        dataDirectory: join(root, "data"),
        smtpListen: `127.0.0.1:${smtpPort}`,
        submissionListen: `127.0.0.1:${submission}`,
        submissionsListen: `127.0.0.1:${submissions}`,
        postfixBin: findProgram("postfix") ?? "/usr/sbin/postfix",
        maillogFile: join(root, "maillog"),
      },
      // Outside the state root, which is 0700: Postfix's smtpd (user postfix) reaches the SASL socket here.
      dovecot: { usersFile: join(root, "dovecot-users", "passwd"), readerGid: dovecotGid, configFile: join(root, "dovecot", "dovecot.conf"), imapListen: `127.0.0.1:${imap}`, imapsListen: `127.0.0.1:${imaps}` },
      mailRoot: join(root, "mail"),
      vmailUid: 5000,
      vmailGid: 5000,
    };
    context = await makeContext(stateDir, HOST);
    closeLogger = () => context.logger.close();
    // Where snickers puts the certificate of the mail hostname: the actuator's default.
    ca = await writeSelfSignedChain(join(proxyRuntimePaths(stateDir).certs, certificateFileName(HOST)), HOST, root);

    const actuator = createMailActuator(options);
    await converge(actuator, { id: "alpha", spec: service("alpha", "a.test", [{ address: "alice@a.test", passwordHash: await hashPassword("alice-pw") }]) }, context);
    await converge(actuator, { id: "beta", spec: service("beta", "b.test", [{ address: "carol@b.test", passwordHash: await hashPassword("carol-pw") }]) }, context);
    await commitActuator(actuator, context);

    const resolved = resolveOptions(options);
    dovecotPid = await startDovecot(resolved.dovecotConf, dovecotRuntime(resolved).baseDir, join(root, "dovecot.out"));
    postfixPid = await startPostfix(resolved.postfixBin, resolved.configDir, resolved.queueDirectory, join(root, "postfix.out"));
  });

  after(async () => {
    if (options !== undefined) await stopPostfix(findProgram("postfix") ?? "/usr/sbin/postfix", options.postfix.configDir, postfixPid);
    if (dovecotPid !== undefined) await stopPid(dovecotPid);
    await closeLogger();
    await cleanup();
  });

  it("delivers a message sent over SMTP with STARTTLS, and reads it back over IMAPS (993) and IMAP with STARTTLS (143)", { skip }, async () => {
    const info = await smtp(ports.smtp).sendMail({ from: "someone@outside.test", to: "alice@a.test", subject: "over starttls", text: "hello alice" });
    assert.deepEqual(info.accepted, ["alice@a.test"]);
    await delivered("alice@a.test", "over starttls");
    for (const [port, secure] of [[ports.imaps, true], [ports.imap, false]] as const) {
      const client = new ImapFlow({ host: "127.0.0.1", port, secure, ...(secure ? {} : { doSTARTTLS: true }), tls: tls(), auth: { user: "alice@a.test", pass: "alice-pw" }, logger: false, ...LIMITS });
      await client.connect();
      try {
        const lock = await client.getMailboxLock("INBOX");
        try {
          const subjects: string[] = [];
          for await (const message of client.fetch("1:*", { envelope: true })) subjects.push(message.envelope?.subject ?? "");
          assert.ok(subjects.includes("over starttls"), `INBOX over ${port} holds the message (${subjects.join(", ")})`);
        } finally {
          lock.release();
        }
      } finally {
        await client.logout();
      }
    }
  });

  it("refuses an IMAP login before STARTTLS on 143", { skip }, async () => {
    // Dovecot counts a client whose address is the server's own as secure, so the client comes
    // from another loopback address, as a remote one would.
    const transcript = await imapTranscript(ports.imap, ["a CAPABILITY", "b LOGIN alice@a.test alice-pw"]);
    assert.match(transcript, /LOGINDISABLED/, transcript);
    assert.match(transcript, /^b NO /m, transcript);
    assert.doesNotMatch(transcript, /^b OK/m, transcript);
  });

  it("refuses submission (587) without a login, and a logged-in user sending as a foreign address; accepts and delivers with a login as one's own", { skip }, async () => {
    // Without a login, as a hosted address and as any other, to a hosted mailbox: both refused.
    for (const from of ["alice@a.test", "someone@outside.test"]) {
      const anonymous = await refused(smtp(ports.submission).sendMail({ from, to: "carol@b.test", subject: "anonymous", text: "x" }));
      assert.ok(anonymous.code >= 500 && anonymous.code < 600, `without a login, from ${from}: ${anonymous.code} ${anonymous.text}`);
    }
    const alice = smtp(ports.submission, { auth: { user: "alice@a.test", pass: "alice-pw" } });
    for (const from of ["carol@b.test", "someone@outside.test"]) {
      const foreign = await refused(alice.sendMail({ from, to: "carol@b.test", subject: `as ${from}`, text: "x" }));
      assert.equal(foreign.code, 553, `alice sending as ${from}: ${foreign.text}`);
    }
    const wrong = await refused(smtp(ports.submission, { auth: { user: "alice@a.test", pass: "wrong" } }).sendMail({ from: "alice@a.test", to: "carol@b.test", subject: "wrong password", text: "x" }));
    assert.equal(wrong.code, 535, wrong.text);
    const info = await alice.sendMail({ from: "alice@a.test", to: "carol@b.test", subject: "submitted by alice", text: "hello carol" });
    assert.deepEqual(info.accepted, ["carol@b.test"]);
    await delivered("carol@b.test", "submitted by alice");
  });

  it("accepts submission over implicit TLS (465) with a login", { skip }, async () => {
    const transport = nodemailer.createTransport({ host: "127.0.0.1", port: ports.submissions, secure: true, tls: tls(), auth: { user: "carol@b.test", pass: "carol-pw" }, ...LIMITS });
    const info = await transport.sendMail({ from: "carol@b.test", to: "alice@a.test", subject: "over implicit tls", text: "hello alice" });
    assert.deepEqual(info.accepted, ["alice@a.test"]);
    await delivered("alice@a.test", "over implicit tls");
    const anonymous = await refused(nodemailer.createTransport({ host: "127.0.0.1", port: ports.submissions, secure: true, tls: tls(), ...LIMITS }).sendMail({ from: "carol@b.test", to: "alice@a.test", subject: "anonymous", text: "x" }));
    assert.ok(anonymous.code >= 500, `${anonymous.code} ${anonymous.text}`);
  });

  it("relays for no one on SMTP (25): mail to a foreign domain is refused, and SMTP offers no login", { skip }, async () => {
    const client = await SmtpClient.connect(ports.smtp);
    try {
      const ehlo = await client.command("EHLO client.test");
      assert.doesNotMatch(ehlo.text, /^AUTH/m, "no AUTH on port 25");
      assert.match(ehlo.text, /^STARTTLS$/m);
      assert.equal((await client.command("VRFY alice@a.test")).code, 502, "VRFY tells nothing");
      const result = await client.send("alice@a.test", ["someone@outside.test"], "Subject: relay\n\nrelay\n");
      assert.equal(result.rcpt[0]?.code, 554, result.rcpt[0]?.text);
      assert.equal(result.data, undefined);
    } finally {
      await client.close();
    }
    const overSubmission = await refused(smtp(ports.submission).sendMail({ from: "someone@outside.test", to: "else@outside.test", subject: "relay", text: "x" }));
    assert.ok(overSubmission.code >= 500, `${overSubmission.code} ${overSubmission.text}`);
  });
});
