// The two mail setups bench/mail compares, each a Postfix instance (and, for Coyote, Dovecot)
// started from a work folder on loopback ports: Coyote's, as the mail actuator renders it (TLS,
// submission with a login through Dovecot, own-address senders, DKIM signing by OpenDKIM), and a hand-written minimal
// Postfix that only accepts plain SMTP for the same mailbox and delivers it the same way.
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { commitActuator, converge, type ActuatorContext } from "@coyote/actuator";
import { createMailActuator, dovecotRuntime, hashPassword, resolveOptions, signerPaths, type MailActuatorOptions } from "@coyote/actuator-mailconf";
import { createLogger } from "@coyote/log";
import { certificateFileName, findExecutable, proxyRuntimePaths, ServerSpec, ServiceSpec, StateStore } from "@coyote/spec";
import { startDaemon, stopDaemon, type Daemon } from "./proc.ts";

/** The mailbox both setups deliver to, and the sender that logs in to Coyote's submission. */
export const DOMAIN = "bench.test";
export const MAILBOX = `inbox@${DOMAIN}`;
export const SENDER = `sender@${DOMAIN}`;
export const SENDER_PASSWORD = "bench sender password";
export const MAIL_HOST = "mx.bench.test";
const VMAIL = 5000;

const SBIN_DIRS = ["/usr/sbin", "/usr/bin", "/usr/lib/postfix/sbin"];
const program = (name: string): string => {
  const found = findExecutable(name, SBIN_DIRS);
  if (!found) throw new Error(`bench/mail needs ${name} (Debian packages postfix, dovecot-core, dovecot-imapd)`);
  return found;
};

/** A running setup: where to send, how to count what was delivered, and how to stop it. */
export interface MailInstance {
  readonly name: string;
  readonly port: number;
  /** The Maildir `new/` folder of {@link MAILBOX}. */
  readonly inbox: string;
  /** The daemons' processes (Postfix's master, Dovecot's). */
  readonly daemons: readonly Daemon[];
  stop(): Promise<void>;
}

/** The id of a system user or group, from `getent`; throws naming the Debian package's account when there is none. */
function systemId(database: "passwd" | "group", name: string): number {
  const id = Number(execFileSync("getent", [database, name], { encoding: "utf8" }).split(":")[2]);
  if (!Number.isInteger(id)) throw new Error(`bench/mail needs the system ${database === "passwd" ? "user" : "group"} ${name} (Debian packages postfix, dovecot-core, opendkim)`);
  return id;
}

/** Counts the messages delivered to an inbox (its `new/` files). */
export function delivered(inbox: string): number {
  try {
    return readdirSync(inbox).length;
  } catch {
    return 0;
  }
}

/** Runs Postfix's master in the foreground (after `postfix check` made its queue) and waits for its SMTP greeting. */
async function startPostfix(name: string, configDir: string, logFile: string, port: number, maillog: string): Promise<Daemon> {
  const check = spawnSync(program("postfix"), ["-c", configDir, "check"], { encoding: "utf8", timeout: 30_000 });
  if (check.status !== 0) throw new Error(`postfix -c ${configDir} check exited with ${String(check.status)}: ${check.stderr} ${existsSync(maillog) ? readFileSync(maillog, "utf8").slice(-2000) : ""}`);
  const master = startDaemon(name, program("master"), ["-c", configDir, "-s"], logFile);
  await waitGreeting(port, master, logFile, maillog);
  return master;
}

async function waitGreeting(port: number, daemon: Daemon, logFile: string, maillog: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (daemon.hasExited()) throw new Error(`${daemon.name} exited (${String(await daemon.exited)}): ${readFileSync(logFile, "utf8").slice(-1000)} ${existsSync(maillog) ? readFileSync(maillog, "utf8").slice(-2000) : ""}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: "127.0.0.1", port });
      socket.setTimeout(2000, () => socket.destroy());
      socket.once("data", (data) => {
        socket.destroy();
        resolve(data.toString().startsWith("220"));
      });
      socket.once("error", () => resolve(false));
      socket.once("close", () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`${daemon.name} did not greet on port ${String(port)} within 30 s; see ${logFile}`);
}

function selfSigned(pemFile: string, workDir: string): string {
  const key = join(workDir, "tls-key.pem");
  const cert = join(workDir, "tls-cert.pem");
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", `/CN=${MAIL_HOST}`, "-addext", `subjectAltName=DNS:${MAIL_HOST}`, "-days", "2", "-keyout", key, "-out", cert], { stdio: "ignore", timeout: 30_000 });
  mkdirSync(join(pemFile, ".."), { recursive: true });
  const certPem = readFileSync(cert, "utf8");
  writeFileSync(pemFile, readFileSync(key, "utf8") + certPem, { mode: 0o600 });
  return certPem;
}

/**
 * Coyote's mail: the mail actuator converges one service with the mailbox and the sender, and
 * Postfix and Dovecot run with what it rendered. Submission (587, STARTTLS, login) is where the
 * benchmark sends.
 * @returns the instance and the certificate clients must trust.
 */
export async function startCoyoteMail(root: string, ports: { smtp: number; submission: number; submissions: number; imap: number; imaps: number }): Promise<{ instance: MailInstance; ca: string }> {
  const dir = join(root, "coyote");
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chmodSync(dir, 0o755);
  const stateDir = join(dir, "state");
  const uid = systemId("passwd", "opendkim");
  const postfixGid = systemId("group", "postfix");
  const dovecotGid = systemId("group", "dovecot");
  const options: MailActuatorOptions = {
    stateDir,
    postfix: {
      configDir: join(dir, "postfix"),
      queueDirectory: join(dir, "queue"),
      dataDirectory: join(dir, "data"),
      smtpListen: `127.0.0.1:${String(ports.smtp)}`,
      submissionListen: `127.0.0.1:${String(ports.submission)}`,
      submissionsListen: `127.0.0.1:${String(ports.submissions)}`,
      postfixBin: program("postfix"),
      maillogFile: join(dir, "maillog"),
    },
    // Outside the state folder (0700): smtpd, as the postfix user, reaches the SASL socket here.
    dovecot: { usersFile: join(dir, "dovecot-users", "passwd"), readerGid: dovecotGid, configFile: join(dir, "dovecot", "dovecot.conf"), imapListen: `127.0.0.1:${String(ports.imap)}`, imapsListen: `127.0.0.1:${String(ports.imaps)}` },
    mailRoot: join(dir, "mail"),
    vmailUid: VMAIL,
    vmailGid: VMAIL,
    // Outgoing mail is signed, as on a box: OpenDKIM as Postfix's milter.
    dkimSigner: { account: { user: "opendkim", uid, group: "postfix", gid: postfixGid } },
  };
  const ca = selfSigned(join(proxyRuntimePaths(stateDir).certs, certificateFileName(MAIL_HOST)), dir);
  const logger = createLogger({ component: "bench-mail", file: join(dir, "actuator.log") });
  const store = await StateStore.open(stateDir);
  // OpenDKIM reaches its files as its own user: it must pass through the state folder.
  chmodSync(store.root, 0o711);
  const server = ServerSpec.parse({ schemaVersion: 1, kind: "Server", name: "bench", hostname: MAIL_HOST });
  const context: ActuatorContext = { stateDir: store.root, store, logger, signal: new AbortController().signal, server };
  const actuator = createMailActuator(options);
  const spec = ServiceSpec.parse({ schemaVersion: 1, kind: "Service", id: "bench", domains: [{ name: DOMAIN }], mail: { mailboxes: [{ address: MAILBOX, passwordHash: await hashPassword("inbox password") }, { address: SENDER, passwordHash: await hashPassword(SENDER_PASSWORD) }] } });
  await converge(actuator, { id: "bench", spec }, context);
  await commitActuator(actuator, context);
  const resolved = resolveOptions(options);
  const dovecot = startDaemon("coyote dovecot", program("dovecot"), ["-F", "-c", resolved.dovecotConf], join(dir, "dovecot.out"));
  const socket = join(dovecotRuntime(resolved).baseDir, "auth-client");
  for (let i = 0; i < 300 && !existsSync(socket); i++) await sleep(100);
  const signer = signerPaths(stateDir);
  const opendkim = startDaemon("coyote opendkim", program("opendkim"), ["-f", "-x", signer.conf], join(dir, "opendkim.out"));
  for (let i = 0; i < 300 && !existsSync(signer.socket); i++) await sleep(100);
  if (!existsSync(signer.socket)) throw new Error(`opendkim made no socket: ${readFileSync(join(dir, "opendkim.out"), "utf8").slice(-1000)}`);
  const postfix = await startPostfix("coyote postfix", resolved.configDir, join(dir, "postfix.out"), ports.submission, join(dir, "maillog")).catch(async (error: unknown) => {
    await stopDaemon(dovecot, 10_000);
    await stopDaemon(opendkim, 10_000);
    await logger.close();
    throw error;
  });
  const inbox = join(options.mailRoot, DOMAIN, MAILBOX.split("@")[0] ?? "", "new");
  return {
    ca,
    instance: {
      name: "coyote",
      port: ports.submission,
      inbox,
      daemons: [postfix, dovecot, opendkim],
      async stop() {
        await stopDaemon(postfix, 10_000);
        await stopDaemon(dovecot, 10_000);
        await stopDaemon(opendkim, 10_000);
        await logger.close();
      },
    },
  };
}

/** Debian's master.cf, less what a mailbox host does not use, without chroot; SMTP on `listen` only. */
function minimalMasterCf(listen: string): string {
  return [
    // service     type  private unpriv chroot wakeup maxproc command
    `${listen}     inet  n       -      n      -      -       smtpd`,
    "pickup        unix  n       -      n      60     1       pickup",
    "cleanup       unix  n       -      n      -      0       cleanup",
    "qmgr          unix  n       -      n      300    1       qmgr",
    "rewrite       unix  -       -      n      -      -       trivial-rewrite",
    "bounce        unix  -       -      n      -      0       bounce",
    "defer         unix  -       -      n      -      0       bounce",
    "trace         unix  -       -      n      -      0       bounce",
    "verify        unix  -       -      n      -      1       verify",
    "flush         unix  n       -      n      1000?  0       flush",
    "proxymap      unix  -       -      n      -      -       proxymap",
    "smtp          unix  -       -      n      -      -       smtp",
    "showq         unix  n       -      n      -      -       showq",
    "error         unix  -       -      n      -      -       error",
    "retry         unix  -       -      n      -      -       error",
    "discard       unix  -       -      n      -      -       discard",
    "virtual       unix  -       n      n      -      -       virtual",
    "anvil         unix  -       -      n      -      1       anvil",
    "scache        unix  -       -      n      -      1       scache",
    "postlog       unix-dgram n  -      n      -      1       postlogd",
    "",
  ].join("\n");
}

/**
 * The peer: a Postfix written by hand with the least a mailbox host needs (one virtual domain,
 * one mailbox, plain SMTP, no relay), delivering to a Maildir as Coyote's does.
 */
export async function startMinimalPostfix(root: string, port: number): Promise<MailInstance> {
  const dir = join(root, "minimal");
  const conf = join(dir, "conf");
  mkdirSync(conf, { recursive: true });
  chmodSync(dir, 0o755);
  const mailRoot = join(dir, "mail");
  mkdirSync(mailRoot, { recursive: true });
  mkdirSync(join(dir, "queue"), { recursive: true });
  execFileSync("chown", [`${String(VMAIL)}:${String(VMAIL)}`, mailRoot]);
  writeFileSync(join(conf, "mailboxes"), `${MAILBOX} ${DOMAIN}/${MAILBOX.split("@")[0] ?? ""}/\n`);
  writeFileSync(join(conf, "main.cf"), [
    "compatibility_level = 3.6",
    `queue_directory = ${join(dir, "queue")}`,
    `data_directory = ${join(dir, "data")}`,
    `maillog_file = ${join(dir, "maillog")}`,
    `maillog_file_prefixes = ${dir}`,
    "myhostname = minimal.bench.test",
    "mydestination =",
    "inet_interfaces = 127.0.0.1",
    "smtpd_relay_restrictions = reject_unauth_destination",
    `virtual_mailbox_domains = ${DOMAIN}`,
    `virtual_mailbox_maps = texthash:${join(conf, "mailboxes")}`,
    `virtual_mailbox_base = ${mailRoot}`,
    `virtual_uid_maps = static:${String(VMAIL)}`,
    `virtual_gid_maps = static:${String(VMAIL)}`,
    "",
  ].join("\n"));
  writeFileSync(join(conf, "master.cf"), minimalMasterCf(`127.0.0.1:${String(port)}`));
  const postfix = await startPostfix("minimal postfix", conf, join(dir, "postfix.out"), port, join(dir, "maillog"));
  return {
    name: "minimal",
    port,
    inbox: join(mailRoot, DOMAIN, MAILBOX.split("@")[0] ?? "", "new"),
    daemons: [postfix],
    stop: () => stopDaemon(postfix, 10_000),
  };
}
