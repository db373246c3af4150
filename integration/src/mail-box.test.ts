// The box serving mail and XMPP as `coyote up` runs it: the real minion with the bundled actuators
// writes every daemon's configuration under one state folder (0700), the daemon supervisor runs
// Knot-less DNS's neighbours (OpenDKIM, Postfix, Dovecot, Prosody) as their own users through the
// folder's passage, and real clients use what a customer is told: submission with a login, IMAP
// over TLS, XMPP over STARTTLS, all with the box's own certificate. The conditions tell the truth:
// a killed daemon turns its condition False, naming it, until the supervisor has it back.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import { Resolver } from "node:dns/promises";
import { connect as connectTcp } from "node:net";
import { join } from "node:path";
import { connect as connectTls, getCACertificates, setDefaultCACertificates } from "node:tls";
import { after, before, describe, it } from "node:test";
import { client, xml, type Client, type Element } from "@xmpp/client";
import { ImapFlow } from "imapflow";
import { dkimVerify } from "mailauth";
import nodemailer from "nodemailer";
import { hashPassword } from "@coyote/actuator-mailconf";
import { LocalCa } from "@coyote/actuator-snickers";
import { scramSha1Credentials } from "@coyote/actuator-xmppconf";
import { DaemonSupervisor } from "@coyote/component";
import { createLogger, logFileFor, type CoyoteLogger } from "@coyote/log";
import { bundledActuators, Minion } from "@coyote/minion";
import { certificateFileName, ServerSpec, ServiceSpec, StateStore, validate, writeFileAtomic, type Condition } from "@coyote/spec";
import { daemonTempDir, freePorts, freeUdpTcpPort, IN_CI, waitFor } from "@coyote/testing";

const AUTHOR = { name: "Test", email: "test@example.org" };
const HOST = "box.test";
const DOMAIN = "shop.example";
const LIMITS = { connectionTimeout: 15_000, greetingTimeout: 15_000, socketTimeout: 30_000 };
const skip = process.getuid?.() !== 0 && !IN_CI ? "the box's daemons run as their own users only when started by root" : false;

let root = "";
let store: StateStore;
let stateDir = "";
let minion: Minion | undefined;
let daemons: DaemonSupervisor | undefined;
const loggers: CoyoteLogger[] = [];
const xmppClients: Client[] = [];
let ca = "";
let dnsPort = 0;
let ports = { smtp: 0, submission: 0, submissions: 0, imap: 0, imaps: 0, c2s: 0, s2s: 0 };

/** The customer's service: anna and bob with a mailbox and a chat account each (no site). */
async function shopSpec(annaPassword: string): Promise<ServiceSpec> {
  return validate(ServiceSpec, {
    schemaVersion: 1, kind: "Service", id: "shop", domains: [{ name: DOMAIN }],
    mail: { mailboxes: [{ address: `anna@${DOMAIN}`, passwordHash: await hashPassword(annaPassword) }, { address: `bob@${DOMAIN}`, passwordHash: await hashPassword("bob-pw") }] },
    xmpp: { users: [{ username: "anna", domain: DOMAIN, passwordHash: scramSha1Credentials(annaPassword) }, { username: "bob", domain: DOMAIN, passwordHash: scramSha1Credentials("bob-pw") }] },
  }, "shop");
}

/** Whether a login to IMAP over TLS succeeds. */
async function imapLogs(user: string, pass: string): Promise<boolean> {
  const imap = new ImapFlow({ host: "127.0.0.1", port: ports.imaps, secure: true, tls: tls(), auth: { user, pass }, logger: false, ...LIMITS });
  imap.on("error", () => undefined);
  try {
    await imap.connect();
    await imap.logout();
    return true;
  } catch {
    return false;
  }
}

function condition(type: string): Condition | undefined {
  return minion?.statuses.get("shop")?.conditions.find((c) => c.type === type);
}

async function until(what: string, check: () => boolean, timeoutMs = 90_000): Promise<void> {
  await waitFor(what, () => Promise.resolve(check() ? true : undefined), { timeoutMs, intervalMs: 100 }).catch((error: unknown) => {
    throw new Error(`${error instanceof Error ? error.message : String(error)}: ${JSON.stringify(minion?.statuses.get("shop")?.conditions)}\n${JSON.stringify(daemons?.states())}`, { cause: error });
  });
}

const tls = () => ({ ca, servername: HOST, minVersion: "TLSv1.2" as const });
/** The serial of the certificate a TLS server presents: at once (`implicit`), or after SMTP's STARTTLS. */
function presentedSerial(port: number, starttls: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp(port, "127.0.0.1");
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no answer on ${String(port)} within 10 s`)));
    socket.once("error", reject);
    const secure = () => {
      const secured = connectTls({ socket, ...tls() }, () => {
        resolve(secured.getPeerX509Certificate()?.serialNumber ?? "");
        secured.destroy();
      });
      secured.once("error", reject);
    };
    if (!starttls) {
      secure();
      return;
    }
    let heard = "";
    const steps = ["EHLO client.test\r\n", "STARTTLS\r\n"];
    const onData = (chunk: Buffer) => {
      heard += chunk.toString("latin1");
      // A reply is complete at a line "NNN text" (not "NNN-text").
      if (!/(^|\n)\d{3} [^\n]*\r\n$/.test(heard)) return;
      const step = steps.shift();
      if (heard.startsWith("220 ") && step === undefined) {
        socket.off("data", onData);
        secure();
        return;
      }
      heard = "";
      if (step !== undefined) socket.write(step);
    };
    socket.on("data", onData);
  });
}


async function xmppLogin(username: string, password: string): Promise<Client> {
  const xmpp = client({ service: `xmpp://127.0.0.1:${ports.c2s}`, domain: DOMAIN, resource: "test", username, password, timeout: 15_000 });
  xmpp.reconnect.stop();
  xmpp.on("error", () => undefined);
  await xmpp.start();
  xmppClients.push(xmpp);
  return xmpp;
}

/** The TXT answers of the box's own DNS server: what a verifier on the internet would find. */
function boxResolver(): (name: string, rrtype: string) => Promise<string[][]> {
  const resolver = new Resolver({ timeout: 2000, tries: 1 });
  resolver.setServers([`127.0.0.1:${dnsPort}`]);
  return (name, rrtype) => {
    if (rrtype !== "TXT") return Promise.reject(Object.assign(new Error(`only TXT is asked here, not ${rrtype}`), { code: "ENOTFOUND" }));
    return resolver.resolveTxt(name);
  };
}

describe("the box serving mail and XMPP with its own daemons", { skip }, () => {
  before(async () => {
    root = (await daemonTempDir("coyote-mail-box-")).dir;
    stateDir = join(root, "state");
    const [smtp = 0, submission = 0, submissions = 0, imap = 0, imaps = 0, c2s = 0, s2s = 0, panel = 0, http = 0, https = 0] = await freePorts(10);
    ports = { smtp, submission, submissions, imap, imaps, c2s, s2s };
    dnsPort = await freeUdpTcpPort();
    store = await StateStore.open(stateDir, { author: AUTHOR });
    const server = validate(ServerSpec, {
      schemaVersion: 1, kind: "Server", name: "box", hostname: HOST, publicIPv4: "192.0.2.7", activated: true,
      dns: { listen: [`127.0.0.1:${dnsPort}`] },
      ports: { panel, http, https },
      mail: { smtpListen: `127.0.0.1:${smtp}`, submissionListen: `127.0.0.1:${submission}`, submissionsListen: `127.0.0.1:${submissions}`, imapListen: `127.0.0.1:${imap}`, imapsListen: `127.0.0.1:${imaps}` },
      xmpp: { interfaces: ["127.0.0.1"], clientPort: c2s, serverPort: s2s },
    }, "server");
    await store.applySpec(server, { author: AUTHOR });
    await store.applySpec(await shopSpec("anna-pw"), { author: AUTHOR });

    // As `coyote up` does: the components first (the minion writes the daemons' files), then the daemons.
    const minionLogger = createLogger({ component: "minion", file: logFileFor(stateDir, "minion") });
    const supervisorLogger = createLogger({ component: "supervisor", file: logFileFor(stateDir, "supervisor") });
    loggers.push(minionLogger, supervisorLogger);
    minion = new Minion({ stateDir, logger: minionLogger, actuators: (spec) => bundledActuators(spec, stateDir), debounceMs: 10, daemonPollMs: 200, backoffInitialMs: 200, backoffMaxMs: 2000 });
    await minion.start();
    // A killed daemon stays down for 3 s before its restart: long enough for the minion, which
    // reads the daemons' states every 200 ms, to see it down (a quicker restart may be missed,
    // and then nothing was down that any client could notice).
    daemons = new DaemonSupervisor({ stateDir, logger: supervisorLogger, backoff: { initialMs: 3000, maxMs: 3000, resetAfterMs: 60_000 }, pollMs: 200 });
    await daemons.start();
    await until("the service Ready with its daemons serving it", () => condition("Ready")?.status === "True", 120_000);
    ca = (await LocalCa.open(join(stateDir, "proxy", "ca"), HOST)).certificatePem;
    // XMPP clients trust the box's CA, as a customer's client trusts the box's public one.
    setDefaultCACertificates([...getCACertificates("default"), ca]);
  });

  after(async () => {
    for (const c of xmppClients) await c.stop().catch(() => undefined);
    setDefaultCACertificates(getCACertificates("bundled"));
    await minion?.stop();
    await daemons?.stop();
    for (const logger of loggers) await logger.close();
    if (root !== "" && process.env.KEEP_ROOT === undefined) await rm(root, { recursive: true, force: true });
  });

  it("takes anna's mail over submission with her login, signs it, and bob reads it over IMAP with TLS; the signature verifies against the box's DNS", async () => {
    const transport = nodemailer.createTransport({ host: "127.0.0.1", port: ports.submission, secure: false, requireTLS: true, tls: tls(), auth: { user: `anna@${DOMAIN}`, pass: "anna-pw" }, ...LIMITS });
    const info = await transport.sendMail({ from: `Anna <anna@${DOMAIN}>`, to: `bob@${DOMAIN}`, subject: "hello from the box", text: "Hello Bob,\r\nthis came through the box's own daemons.\r\n" });
    assert.deepEqual(info.accepted, [`bob@${DOMAIN}`]);

    const imap = new ImapFlow({ host: "127.0.0.1", port: ports.imaps, secure: true, tls: tls(), auth: { user: `bob@${DOMAIN}`, pass: "bob-pw" }, logger: false, ...LIMITS });
    await imap.connect();
    let source = "";
    try {
      await waitFor("the message in bob's INBOX", async () => {
        const lock = await imap.getMailboxLock("INBOX");
        try {
          for await (const message of imap.fetch("1:*", { envelope: true, source: true })) {
            if (message.envelope?.subject === "hello from the box") source = message.source?.toString("utf8") ?? "";
          }
        } finally {
          lock.release();
        }
        return source === "" ? undefined : true;
      }, { timeoutMs: 30_000, intervalMs: 250 });
    } finally {
      await imap.logout().catch(() => undefined);
    }
    assert.match(source, /^DKIM-Signature: /m, source.slice(0, 2000));
    const verdict = await dkimVerify(Buffer.from(source), { resolver: boxResolver() });
    assert.equal(verdict.results[0]?.status.result, "pass", JSON.stringify(verdict.results, null, 2));
    assert.equal(verdict.results[0].signingDomain, DOMAIN);
  });

  it("refuses submission without a login, and a logged-in sender writing as someone else", async () => {
    const refusedCode = async (auth?: { user: string; pass: string }, from = `anna@${DOMAIN}`) => {
      const transport = nodemailer.createTransport({ host: "127.0.0.1", port: ports.submission, secure: false, requireTLS: true, tls: tls(), ...(auth ? { auth } : {}), ...LIMITS });
      try {
        await transport.sendMail({ from, to: `bob@${DOMAIN}`, subject: "refused", text: "x" });
        return 0;
      } catch (error) {
        return (error as { responseCode?: number }).responseCode ?? -1;
      }
    };
    assert.ok((await refusedCode()) >= 500, "no login: refused");
    assert.ok((await refusedCode({ user: `anna@${DOMAIN}`, pass: "anna-pw" }, `bob@${DOMAIN}`)) >= 500, "anna writing as bob: refused");
    assert.ok((await refusedCode({ user: `anna@${DOMAIN}`, pass: "wrong" })) >= 500, "a wrong password: refused");
  });

  it("lets anna and bob chat over XMPP with the box's certificate", async () => {
    const anna = await xmppLogin("anna", "anna-pw");
    const bob = await xmppLogin("bob", "bob-pw");
    const received = new Promise<string>((resolve) => {
      bob.on("stanza", (stanza: Element) => {
        if (stanza.is("message")) resolve(stanza.getChildText("body") ?? "");
      });
    });
    await bob.send(xml("presence"));
    await anna.send(xml("message", { to: `bob@${DOMAIN}`, type: "chat" }, xml("body", {}, "hi bob")));
    assert.equal(await Promise.race([received, new Promise<string>((resolve) => setTimeout(() => resolve("(nothing within 10 s)"), 10_000).unref())]), "hi bob");
  });

  it("serves a renewed certificate over SMTP's STARTTLS and IMAPS without restarting Postfix or Dovecot", async () => {
    const pids = () => daemons?.states().filter((d) => d.name === "postfix" || d.name === "dovecot").map((d) => `${d.name}:${String(d.pid)}`);
    const before = pids();
    const file = join(stateDir, "proxy", "certs", certificateFileName(HOST));
    const old = await presentedSerial(ports.imaps, false);
    assert.equal(await presentedSerial(ports.submission, true), old, "submission and IMAP present the same certificate");
    // A renewal as snickers writes it: key and chain in one file, replaced at once.
    const renewed = (await LocalCa.open(join(stateDir, "proxy", "ca"), HOST)).issue([HOST]);
    await writeFileAtomic(file, `${renewed.keyPem}${renewed.chainPem}`, { mode: 0o600 });
    const inFile = async () => new X509Certificate(await readFile(file, "utf8")).serialNumber;
    for (const [port, starttls] of [[ports.imaps, false], [ports.submission, true]] as const) {
      await waitFor(`the renewed certificate on port ${String(port)}`, async () => {
        const now = await presentedSerial(port, starttls);
        return now !== old && now === (await inFile()) ? true : undefined;
      }, { timeoutMs: 30_000, intervalMs: 250 });
    }
    assert.deepEqual(pids(), before, "reloaded, not restarted");
  });

  it("takes a password changed in the spec, as the shop writes it, for IMAP and XMPP at once, and refuses the old one", async () => {
    const generation = (await store.applySpec(await shopSpec("anna-new-pw"), { author: AUTHOR })).generation;
    await until("the new password's generation Ready", () => (minion?.statuses.get("shop")?.observedGeneration ?? 0) >= generation && condition("Ready")?.status === "True");
    assert.equal(await imapLogs(`anna@${DOMAIN}`, "anna-new-pw"), true, "IMAP: the new password");
    assert.equal(await imapLogs(`anna@${DOMAIN}`, "anna-pw"), false, "IMAP: not the old one");
    const anna = await xmppLogin("anna", "anna-new-pw");
    assert.equal(anna.status, "online", "XMPP: the new password");
    await assert.rejects(xmppLogin("anna", "anna-pw"), "XMPP: not the old one");
  });

  // Each daemon killed (its whole process group): the condition it serves turns False naming it,
  // and True again once the supervisor has started it anew.
  for (const [name, type, named] of [["postfix", "MailReady", /postfix/], ["dovecot", "MailReady", /dovecot/], ["opendkim", "MailReady", /opendkim/], ["prosody", "XmppReady", /prosody/]] as const) {
    it(`says ${type} False naming ${name} while it is killed, and True again once the supervisor has it back`, async () => {
      const before = daemons?.states().find((d) => d.name === name);
      assert.ok(before?.pid !== undefined, JSON.stringify(before));
      process.kill(-before.pid, "SIGKILL");
      await until(`${type} False, naming ${name}`, () => condition(type)?.status === "False" && named.test(condition(type)?.message ?? ""), 30_000);
      await until(`${type} True again`, () => condition(type)?.status === "True", 90_000);
      assert.notEqual(daemons?.states().find((d) => d.name === name)?.pid, before.pid, `a new ${name}`);
    });
  }
});
