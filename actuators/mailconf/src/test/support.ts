// Helpers for this package's tests only (not exported from index.ts): temp folders, loopback
// ports, the real Postfix and Dovecot daemons started and stopped by pid, and a tiny SMTP client.
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync } from "node:fs";
import { chmod, readFile, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import type { Socket } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { ActuatorContext } from "@coyote/actuator";
import { createLogger } from "@coyote/log";
import { ServerSpec, StateStore } from "@coyote/spec";
import { findProgram, freePort, IN_CI, stopPid as stopProcess, tempDir, waitFor as waitUntil } from "@coyote/testing";

export { findProgram, IN_CI };

/**
 * Why the daemon tests cannot run here (missing programs, not root), or undefined when they can.
 * Under CI the caller turns this into a failure; elsewhere into a loud skip.
 */
export function daemonTestsBlocked(programs: readonly string[]): string | undefined {
  const missing = programs.filter((p) => findProgram(p) === undefined);
  if (missing.length > 0) return `missing programs: ${missing.join(", ")} (Debian packages postfix, dovecot-core; see tooling/system-deps.json)`;
  if (process.getuid?.() !== 0) return "Postfix and Dovecot instances need root (they switch to their own users)";
  return undefined;
}

// Dovecot's IMAP server (Debian package dovecot-imapd) is not on PATH: it lives in Dovecot's own folder.
const IMAP_SERVER = "/usr/lib/dovecot/imap";

/** Why the tests that serve mail over TLS cannot run here (as {@link daemonTestsBlocked}, plus IMAP and openssl). */
export function servingTestsBlocked(): string | undefined {
  return daemonTestsBlocked(["postfix", "dovecot", "doveadm", "openssl", "git"]) ?? (existsSync(IMAP_SERVER) ? undefined : `missing ${IMAP_SERVER} (Debian package dovecot-imapd)`);
}

/** A fresh temp folder that the daemons' own users can traverse, and its cleanup. */
export async function tempRoot(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const temp = await tempDir(prefix);
  // mkdtemp makes 0700; postfix, dovecot and the vmail uid must reach their folders inside.
  await chmod(temp.dir, 0o755);
  return temp;
}

export { freePort };

/** Polls until `check` returns a value other than undefined, or throws after `timeoutMs` (the daemons here are slow to start). */
export function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  return waitUntil(what, check, timeoutMs);
}

/** The files in a Maildir's `new/` folder (empty when it does not exist yet). */
export function maildirNew(mailRoot: string, address: string): string[] {
  const at = address.lastIndexOf("@");
  try {
    return readdirSync(join(mailRoot, address.slice(at + 1), address.slice(0, at), "new")).sort();
  } catch {
    return [];
  }
}

/** Sends SIGTERM to one pid, waits for it to go, and SIGKILLs it after `timeoutMs`. */
export async function stopPid(pid: number, timeoutMs = 10_000): Promise<void> {
  await stopProcess(pid, { graceMs: timeoutMs });
}

/** A `postfix` wrapper that appends each command (`reload`, `status`, ...) to `countFile`. */
export async function writeCountingPostfix(dir: string, realPostfix: string, countFile: string): Promise<string> {
  const path = join(dir, "postfix-counting");
  await writeFile(path, `#!/bin/sh\n# Counts the commands the actuator runs, then runs the real postfix.\nprintf '%s\\n' "$3" >> '${countFile}'\nexec '${realPostfix}' "$@"\n`, { mode: 0o755 });
  return path;
}

/** How often the wrapper of {@link writeCountingPostfix} saw `command`. */
export async function countCommand(countFile: string, command: string): Promise<number> {
  const text = await readFile(countFile, "utf8").catch(() => "");
  return text.split("\n").filter((line) => line === command).length;
}

/**
 * Runs a command that starts a daemon, with its output going to a file: a daemon's children keep
 * inherited pipes open, so a pipe would hold the call until its timeout.
 */
function runToFile(file: string, args: readonly string[], outputFile: string): { status: number | null; output: string } {
  const fd = openSync(outputFile, "a");
  try {
    const result = spawnSync(file, args, { stdio: ["ignore", fd, fd], timeout: 60_000 });
    return { status: result.status, output: readFileSync(outputFile, "utf8") };
  } finally {
    closeSync(fd);
  }
}

/** Starts a Postfix instance (`postfix -c DIR start`, output to `outputFile`) and returns its master's pid. */
export async function startPostfix(postfixBin: string, configDir: string, queueDirectory: string, outputFile: string): Promise<number> {
  const result = runToFile(postfixBin, ["-c", configDir, "start"], outputFile);
  if (result.status !== 0) throw new Error(`postfix -c ${configDir} start exited with ${String(result.status)}: ${result.output}`);
  const pidText = await waitFor("the postfix master pid", async () => {
    const text = await readFile(join(queueDirectory, "pid", "master.pid"), "utf8").catch(() => "");
    return text.trim() === "" ? undefined : text;
  });
  return Number(pidText.trim());
}

/**
 * Stops a Postfix instance: `postfix stop` first (the master ends its children), then the master
 * by its pid in case it is still there.
 */
export async function stopPostfix(postfixBin: string, configDir: string, masterPid: number | undefined): Promise<void> {
  spawnSync(postfixBin, ["-c", configDir, "stop"], { stdio: "ignore", timeout: 30_000 });
  if (masterPid !== undefined) await stopPid(masterPid);
}

/** Writes a minimal dovecot.conf (no listeners, everything in `dir`) around the actuator's auth sections. */
export async function writeDovecotConf(dir: string, authConf: string): Promise<string> {
  const path = join(dir, "dovecot.conf");
  const text = [
    `base_dir = ${join(dir, "run")}`,
    `state_dir = ${join(dir, "state")}`,
    "instance_name = coyote-mailconf-test",
    "protocols =",
    "ssl = no",
    `log_path = ${join(dir, "dovecot.log")}`,
    "auth_verbose = yes",
    // Wrong passwords are part of the tests; Dovecot's default 2 s delay only slows them down.
    "auth_failure_delay = 0",
    // No growing penalty for the same client's failures (Dovecot's documented way to turn it off).
    "service anvil {",
    "  unix_listener anvil-auth-penalty {",
    "    mode = 0",
    "  }",
    "}",
    authConf,
  ].join("\n");
  await writeFile(path, text);
  return path;
}

/** Starts Dovecot with a config (it daemonizes; output to `outputFile`) and returns its master's pid. */
export async function startDovecot(config: string, baseDir: string, outputFile: string): Promise<number> {
  const result = runToFile(findProgram("dovecot") ?? "dovecot", ["-c", config], outputFile);
  if (result.status !== 0) throw new Error(`dovecot -c ${config} exited with ${String(result.status)}: ${result.output}`);
  const pidText = await waitFor("the dovecot master pid", async () => {
    const text = await readFile(join(baseDir, "master.pid"), "utf8").catch(() => "");
    return text.trim() === "" ? undefined : text;
  });
  // The auth socket appears once the auth service is ready to be connected to.
  await waitFor("dovecot's auth socket", () => Promise.resolve(statSync(join(baseDir, "auth-client"), { throwIfNoEntry: false })?.isSocket() === true ? true : undefined));
  return Number(pidText.trim());
}

/** Runs `doveadm -c CONFIG auth test USER PASSWORD` and tells whether the login succeeded. */
export function doveadmAuth(config: string, user: string, password: string): { ok: boolean; output: string } {
  const result = spawnSync(findProgram("doveadm") ?? "doveadm", ["-c", config, "auth", "test", user, password], { encoding: "utf8", timeout: 30_000 });
  const output = `${result.stdout}${result.stderr}`;
  return { ok: result.status === 0 && output.includes("auth succeeded"), output };
}

/** One SMTP reply: the code and the text of its lines. */
export interface SmtpReply {
  readonly code: number;
  readonly text: string;
}

/** A minimal SMTP client over node:net, enough to talk to a Postfix on loopback. */
export class SmtpClient {
  #socket: Socket;
  #buffer = "";
  #waiters: Array<() => void> = [];

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      this.#buffer += chunk;
      for (const waiter of this.#waiters.splice(0)) waiter();
    });
  }

  /** Connects and reads the greeting. */
  static async connect(port: number, host = "127.0.0.1"): Promise<SmtpClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ port, host }, () => {
        resolve(s);
      });
      s.once("error", reject);
    });
    const client = new SmtpClient(socket);
    const greeting = await client.#reply();
    if (greeting.code !== 220) throw new Error(`unexpected SMTP greeting: ${greeting.code} ${greeting.text}`);
    const ehlo = await client.command("EHLO client.test");
    if (ehlo.code !== 250) throw new Error(`EHLO refused: ${ehlo.code} ${ehlo.text}`);
    return client;
  }

  async #reply(timeoutMs = 15_000): Promise<SmtpReply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines = this.#buffer.split("\r\n");
      const lastIndex = lines.findIndex((line) => /^\d{3} /.test(line));
      if (lastIndex >= 0) {
        const reply = lines.slice(0, lastIndex + 1);
        this.#buffer = lines.slice(lastIndex + 1).join("\r\n");
        const last = reply[reply.length - 1] ?? "";
        return { code: Number(last.slice(0, 3)), text: reply.map((l) => l.slice(4)).join("\n") };
      }
      if (Date.now() > deadline) throw new Error(`no SMTP reply (got ${JSON.stringify(this.#buffer)})`);
      await Promise.race([new Promise<void>((resolve) => this.#waiters.push(resolve)), sleep(100)]);
    }
  }

  /** Sends one command line and reads its reply. */
  async command(line: string): Promise<SmtpReply> {
    this.#socket.write(`${line}\r\n`);
    return this.#reply();
  }

  /**
   * Sends one message to some recipients.
   * @returns the reply to each RCPT TO and, when one was accepted, the reply to the data.
   */
  async send(from: string, recipients: readonly string[], body: string): Promise<{ rcpt: SmtpReply[]; data: SmtpReply | undefined }> {
    const mail = await this.command(`MAIL FROM:<${from}>`);
    if (mail.code !== 250) throw new Error(`MAIL FROM refused: ${mail.code} ${mail.text}`);
    const rcpt: SmtpReply[] = [];
    for (const to of recipients) rcpt.push(await this.command(`RCPT TO:<${to}>`));
    if (!rcpt.some((r) => r.code === 250)) {
      await this.command("RSET");
      return { rcpt, data: undefined };
    }
    const start = await this.command("DATA");
    if (start.code !== 354) throw new Error(`DATA refused: ${start.code} ${start.text}`);
    const escaped = body.split("\n").map((line) => (line.startsWith(".") ? `.${line}` : line)).join("\r\n");
    this.#socket.write(`${escaped}\r\n.\r\n`);
    return { rcpt, data: await this.#reply() };
  }

  /** Says QUIT and closes the connection. */
  async close(): Promise<void> {
    try {
      await this.command("QUIT");
    } finally {
      this.#socket.destroy();
    }
  }
}

/** Sends one message in its own connection (see {@link SmtpClient.send}). */
export async function sendMail(port: number, from: string, recipients: readonly string[], subject: string): Promise<{ rcpt: SmtpReply[]; data: SmtpReply | undefined }> {
  const client = await SmtpClient.connect(port);
  try {
    return await client.send(from, recipients, `From: <${from}>\nTo: <${recipients.join(">, <")}>\nSubject: ${subject}\n\n${subject}\n`);
  } finally {
    await client.close();
  }
}

/** An actuator context over a fresh state store in `stateDir`, logging to a file there. */
export async function makeContext(stateDir: string, hostname = "mx.test.example"): Promise<ActuatorContext & { logFile: string }> {
  const store = await StateStore.open(stateDir);
  const logFile = join(stateDir, "logs", "mailconf-test.log");
  const logger = createLogger({ component: "minion", file: logFile, level: "debug" });
  const server = ServerSpec.parse({ schemaVersion: 1, kind: "Server", name: "test", hostname });
  return { stateDir: store.root, store, logger, signal: new AbortController().signal, server, logFile };
}

/** The gid of a system group (e.g. `dovecot`), or undefined when there is none. */
export function groupId(name: string): number | undefined {
  const result = spawnSync("getent", ["group", name], { encoding: "utf8" });
  const gid = Number(result.stdout.split(":")[2]);
  return result.status === 0 && Number.isInteger(gid) ? gid : undefined;
}

/** How many times a Postfix log shows its master reloading. */
export async function countReloadsInLog(maillog: string): Promise<number> {
  const text = await readFile(maillog, "utf8").catch(() => "");
  return text.split("\n").filter((line) => /\/master\[\d+\]: reload -- version/.test(line)).length;
}
