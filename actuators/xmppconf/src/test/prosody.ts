// Test fixtures: a real Prosody started by the test on loopback, an XMPP client that logs in with
// SCRAM-SHA-1 or SCRAM-SHA-256, and the checks for the programs the tests need.
import { spawn } from "node:child_process";
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { connect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { setTimeout as sleep } from "node:timers/promises";
import type { TestContext } from "node:test";
import { client, xml, type Client } from "@xmpp/client";
import { findProgram, freePort, IN_CI, stopChild } from "@coyote/testing";

/**
 * Tells whether a program is on the PATH. With CI=true a missing program fails the test (CI must
 * install it, see tooling/system-deps.json); elsewhere the test is skipped with a loud message.
 * @returns true when the program is there; false when the test was skipped.
 */
export function requireProgram(t: TestContext, program: string): boolean {
  if (findProgram(program) !== undefined) return true;
  const message = `${program} is not installed (Debian package listed in tooling/system-deps.json)`;
  if (IN_CI) throw new Error(`${message}: required with CI=true`);
  t.diagnostic(`SKIPPED LOUDLY: ${message}`);
  t.skip(message);
  return false;
}

export { freePort };

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** A Prosody the test started. */
export interface RunningProsody {
  /** Its process id. */
  readonly pid: number;
  /** How many times it has reloaded its configuration, counted in its log. */
  reloads(): Promise<number>;
  /** Stops it by its pid (SIGTERM, then SIGKILL), and waits until it is gone. */
  stop(): Promise<void>;
}

/**
 * Starts `prosody -F --config <file>` (0.12: `-F` keeps it in the foreground), its output going to
 * a file, and waits until its c2s port accepts connections and its admin socket exists.
 */
export async function startProsody(options: { configFile: string; outputFile: string; logFile: string; c2sPort: number; adminSocket: string; user?: { uid: number; gid: number } }): Promise<RunningProsody> {
  const output = await open(options.outputFile, "a");
  // As the daemon supervisor does: its own process group, and its own user when one is given.
  const child = spawn("prosody", ["-F", "--config", options.configFile], { stdio: ["ignore", output.fd, output.fd], detached: true, ...options.user });
  await output.close();
  const pid = child.pid;
  if (pid === undefined) throw new Error("starting prosody: no pid");
  let exited = child.exitCode !== null;
  void once(child, "exit").then(() => {
    exited = true;
  });
  // By its pid only: other Prosody processes on the machine are not ours.
  const stop = async () => {
    await stopChild(child, 10_000);
  };
  const deadline = Date.now() + 20_000;
  while (!(await accepts(options.c2sPort)) || !existsSync(options.adminSocket)) {
    if (exited || Date.now() > deadline) {
      await stop();
      const out = await readFile(options.outputFile, "utf8").catch(() => "");
      const log = await readFile(options.logFile, "utf8").catch(() => "");
      throw new Error(`starting prosody: it ${exited ? "exited" : "did not listen in time"}\n${out.slice(-2000)}\n${log.slice(-3000)}`);
    }
    await sleep(100);
  }
  return {
    pid,
    async reloads() {
      const log = await readFile(options.logFile, "utf8");
      return log.split("\n").filter((line) => line.includes("Reloading configuration file")).length;
    },
    stop,
  };
}

/** The outcome of a login attempt, with the SASL mechanisms the server offered. */
export type LoginResult = ({ readonly ok: true; readonly client: Client } | { readonly ok: false; readonly error: string }) & { readonly mechanisms: readonly string[] };

/**
 * The client side of SCRAM-SHA-256 (RFC 7677), which @xmpp/client lacks, written from the RFC
 * rather than from the code under test, for the shape @xmpp/sasl drives: `response` for the
 * client-first message, `challenge` with the server-first message, `response` for the final one.
 * Without channel binding, as over plain loopback.
 */
class ScramSha256Client {
  readonly name = "SCRAM-SHA-256";
  readonly clientFirst = true;
  private readonly nonce = randomBytes(18).toString("base64");
  private clientFirstBare: string | undefined;
  private serverFirst = "";

  challenge(text: string): this {
    this.serverFirst = text;
    return this;
  }

  response(credentials: { username: string; password: string }): string {
    if (this.clientFirstBare === undefined) {
      this.clientFirstBare = `n=${credentials.username.replace(/=/g, "=3D").replace(/,/g, "=2C")},r=${this.nonce}`;
      return `n,,${this.clientFirstBare}`;
    }
    const fields = new Map(this.serverFirst.split(",").map((field) => [field.slice(0, 1), field.slice(2)]));
    const nonce = fields.get("r") ?? "";
    const salt = Buffer.from(fields.get("s") ?? "", "base64");
    const iterations = Number(fields.get("i"));
    if (!nonce.startsWith(this.nonce) || salt.length === 0 || !Number.isInteger(iterations)) throw new Error(`a bad server-first message: ${this.serverFirst}`);
    const salted = pbkdf2Sync(credentials.password, salt, iterations, 32, "sha256");
    const clientKey = createHmac("sha256", salted).update("Client Key").digest();
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const signature = createHmac("sha256", createHash("sha256").update(clientKey).digest()).update(authMessage).digest();
    return `${withoutProof},p=${Buffer.from(clientKey.map((byte, i) => byte ^ (signature[i] ?? 0))).toString("base64")}`;
  }
}

/** The SCRAM mechanisms {@link login} can insist on. */
export type ScramMechanism = "SCRAM-SHA-1" | "SCRAM-SHA-256";

/**
 * Logs in to Prosody over a plain TCP connection on loopback, insisting on one SCRAM mechanism
 * (the test fails to log in if Prosody does not offer it), without reconnecting after a disconnect.
 */
export async function login(port: number, domain: string, username: string, password: string, mechanism: ScramMechanism = "SCRAM-SHA-1"): Promise<LoginResult> {
  let offered: readonly string[] = [];
  const xmpp = client({
    service: `xmpp://127.0.0.1:${port}`,
    domain,
    resource: "test",
    timeout: 10_000,
    credentials: async (authenticate, mechanisms) => {
      offered = [...mechanisms];
      if (!mechanisms.includes(mechanism)) throw new Error(`${mechanism} not offered (${mechanisms.join(", ")})`);
      await authenticate({ username, password }, mechanism);
    },
  });
  xmpp.saslFactory.use("SCRAM-SHA-256", ScramSha256Client);
  xmpp.reconnect.stop();
  // Errors are also thrown by start(); without a listener an 'error' event would crash the test.
  xmpp.on("error", () => undefined);
  try {
    await xmpp.start();
    return { ok: true, client: xmpp, mechanisms: offered };
  } catch (error) {
    await xmpp.stop().catch(() => undefined);
    const condition = (error as { condition?: unknown }).condition;
    return { ok: false, error: typeof condition === "string" ? condition : error instanceof Error ? error.message : String(error), mechanisms: offered };
  }
}

/** Whether a logged-in client's session still answers: a ping to its server. */
export async function pings(xmpp: Client, domain: string): Promise<boolean> {
  try {
    await xmpp.iqCaller.request(xml("iq", { type: "get", to: domain }, xml("ping", { xmlns: "urn:xmpp:ping" })), 5_000);
    return true;
  } catch {
    return false;
  }
}

/** Waits until a client is disconnected (its status leaves `online`), or the time runs out. */
export async function disconnected(xmpp: Client, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (xmpp.status !== "online") return true;
    await sleep(50);
  }
  return false;
}

/**
 * Speaks to Prosody's c2s port (or, with `jabber:server`, its s2s port as a peer server) without
 * TLS, as a client that never upgrades would: opens a stream,
 * reads its features, then sends `then` (an element) and reads the answer. Bounded: 5 s, 64 KiB.
 * @returns the features and the answer as received.
 */
export async function plainStream(port: number, domain: string, then: string, namespace: "jabber:client" | "jabber:server" = "jabber:client"): Promise<{ features: string; answer: string }> {
  const socket = connect({ host: "127.0.0.1", port });
  socket.setEncoding("utf8");
  let received = "";
  let features = "";
  const done = new Promise<{ features: string; answer: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ features, answer: features === "" ? "" : received.slice(received.indexOf("</stream:features>") + "</stream:features>".length) });
    }, 5000);
    socket.on("data", (chunk: string) => {
      received += chunk;
      if (received.length > 65536) socket.destroy(new Error("more than 64 KiB"));
      const end = received.indexOf("</stream:features>");
      if (features === "" && end !== -1) {
        features = received.slice(0, end + "</stream:features>".length);
        socket.write(then);
        return;
      }
      const answer = features === "" ? "" : received.slice(features.length);
      if (/<\/(failure|iq|challenge|success)>|<(failure|iq|challenge|success)[^>]*\/>|<\/stream:stream>/.test(answer)) {
        clearTimeout(timer);
        socket.destroy();
        resolve({ features, answer });
      }
    });
    socket.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
  const from = namespace === "jabber:server" ? " from='peer.test' xmlns:db='jabber:server:dialback'" : "";
  socket.write(`<?xml version='1.0'?><stream:stream to='${domain}'${from} xmlns='${namespace}' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`);
  return done;
}

/**
 * Opens a c2s stream, upgrades it with STARTTLS (the certificate checked against the trusted CAs
 * and the domain) and tells the serial number of the certificate Prosody presented. Bounded: 5 s.
 */
export async function starttlsSerial(port: number, domain: string): Promise<string> {
  const socket = connect({ host: "127.0.0.1", port });
  socket.setEncoding("utf8");
  let received = "";
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no <proceed/> within 5 s: ${received.slice(-300)}`)), 5000);
      let asked = false;
      socket.on("data", (chunk: string) => {
        received += chunk;
        if (received.length > 65536) reject(new Error("more than 64 KiB before <proceed/>"));
        if (!asked && received.includes("</stream:features>")) {
          asked = true;
          socket.write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        }
        if (/<proceed[^>]*\/>/.test(received)) {
          clearTimeout(timer);
          socket.removeAllListeners("data");
          resolve();
        }
      });
      socket.once("error", reject);
      socket.write(`<?xml version='1.0'?><stream:stream to='${domain}' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`);
    });
    const secure = tlsConnect({ socket, servername: domain });
    await once(secure, "secureConnect");
    const serial = secure.getPeerCertificate().serialNumber;
    secure.destroy();
    return serial;
  } finally {
    socket.destroy();
  }
}
