// The attacker of bench/attack: connection shapes that try to use up a proxy's connection budget
// (silent TCP, slow heads, slow bodies, idle keep-alive, held upgrades), bursts of malformed
// requests, and bursts of wrong sign-ins to the panel. Each shape keeps a number of connections
// open from a few loopback source addresses, opening new ones at a bounded rate as the server
// closes them, and records how long the server let each one live.
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";

/** Where the attacker aims. */
export interface AttackTarget {
  /** snitch-proxy's TLS port on 127.0.0.1. */
  readonly httpsPort: number;
  /** A site behind it whose backend answers plain requests. */
  readonly site: string;
  /** A site whose backend accepts websocket upgrades and then says nothing. */
  readonly wsSite: string;
  /** The panel's base URL (ends with `/`). */
  readonly panelUrl: string;
  /** Loopback source addresses to attack from (127.0.0.2, ...). */
  readonly sources: readonly string[];
}

/** What one shape did. */
export interface ShapeReport {
  readonly shape: string;
  opened: number;
  /** Closed by the server (not by the attacker at the end). */
  closedByServer: number;
  /** How long the server let the connections it closed live, ms. */
  readonly lifetimes: number[];
  /** Answers seen, by status line or outcome. */
  readonly answers: Map<string, number>;
}

type Opener = (source: string, done: (byServer: boolean) => void, answer: (what: string) => void) => Socket;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The shapes, each a way to open and then hold one connection. */
function shapes(target: AttackTarget): Record<string, Opener> {
  // TLS over a TCP socket of our own: only the TCP connect can choose the source address.
  const tls = (source: string, servername: string) => tlsConnect({ socket: netConnect({ host: "127.0.0.1", port: target.httpsPort, localAddress: source }), servername, rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] });
  // Writes `line` every `everyMs` until the socket closes.
  const drip = (socket: Socket, line: string, everyMs: number) => {
    const timer = setInterval(() => socket.write(line), everyMs);
    socket.once("close", () => clearInterval(timer));
  };
  const statusOf = (socket: Socket, answer: (what: string) => void) => {
    let seen = false;
    socket.on("data", (chunk: Buffer) => {
      if (seen) return;
      seen = true;
      answer(chunk.toString("latin1").split("\r\n")[0] ?? "?");
    });
  };
  return {
    "silent TCP": (source) => netConnect({ host: "127.0.0.1", port: target.httpsPort, localAddress: source }),
    "slow head": (source, _done, answer) => {
      const socket = tls(source, target.site);
      socket.once("secureConnect", () => {
        socket.write(`GET / HTTP/1.1\r\nHost: ${target.site}\r\n`);
        drip(socket, "X-Slow: 1\r\n", 1000);
      });
      statusOf(socket, answer);
      return socket;
    },
    "slow body": (source, _done, answer) => {
      const socket = tls(source, target.site);
      socket.once("secureConnect", () => {
        socket.write(`POST / HTTP/1.1\r\nHost: ${target.site}\r\nContent-Length: 500000\r\n\r\n`);
        drip(socket, "x", 1000);
      });
      statusOf(socket, answer);
      return socket;
    },
    "idle keep-alive": (source, _done, answer) => {
      const socket = tls(source, target.site);
      socket.once("secureConnect", () => socket.write(`GET / HTTP/1.1\r\nHost: ${target.site}\r\n\r\n`));
      statusOf(socket, answer);
      return socket;
    },
    "held upgrade": (source, _done, answer) => {
      const socket = tls(source, target.wsSite);
      socket.once("secureConnect", () => socket.write(`GET /ws HTTP/1.1\r\nHost: ${target.wsSite}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`));
      statusOf(socket, answer);
      return socket;
    },
    "bad requests": (source, done, answer) => {
      const socket = tls(source, target.site);
      socket.once("secureConnect", () => socket.write(`POST / HTTP/1.1\r\nHost: ${target.site}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`));
      statusOf(socket, answer);
      // Not held: the attacker hangs up after the answer, and the shape opens the next one.
      socket.on("data", () => {
        socket.destroy();
        done(false);
      });
      return socket;
    },
  };
}

/**
 * Keeps `perShape` connections of every shape open until `signal` aborts, opening at most
 * `openPerSecond` new ones a second per shape. Returns a report per shape.
 */
export async function holdShapes(target: AttackTarget, perShape: number, openPerSecond: number, signal: AbortSignal): Promise<ShapeReport[]> {
  const reports: ShapeReport[] = [];
  const open = new Set<Socket>();
  const runs = Object.entries(shapes(target)).map(async ([shape, opener]) => {
    const report: ShapeReport = { shape, opened: 0, closedByServer: 0, lifetimes: [], answers: new Map() };
    reports.push(report);
    let live = 0;
    let next = 0;
    while (!signal.aborted) {
      if (live >= perShape) {
        await sleep(20);
        continue;
      }
      const source = target.sources[next++ % target.sources.length] ?? "127.0.0.2";
      const started = performance.now();
      let finished = false;
      const done = (byServer: boolean) => {
        if (finished) return;
        finished = true;
        live--;
        if (byServer && !signal.aborted) {
          report.closedByServer++;
          report.lifetimes.push(performance.now() - started);
        }
      };
      const answer = (what: string) => report.answers.set(what, (report.answers.get(what) ?? 0) + 1);
      live++;
      report.opened++;
      const socket = opener(source, done, answer);
      open.add(socket);
      socket.on("error", () => undefined);
      socket.once("close", () => {
        open.delete(socket);
        done(true);
      });
      await sleep(1000 / openPerSecond);
    }
  });
  await Promise.all(runs);
  for (const socket of open) socket.destroy();
  return reports;
}

/** Hidden fields and the CSRF cookie of the panel's sign-in form. */
async function signInForm(panelUrl: string): Promise<{ fields: [string, string][]; cookie: string }> {
  const page = await fetch(new URL("login", panelUrl), { redirect: "manual", signal: AbortSignal.timeout(10_000) });
  const html = await page.text();
  const cookie = (page.headers.getSetCookie().find((c) => c.startsWith("__Host-coyote-csrf=")) ?? "").split(";")[0] ?? "";
  const fields: [string, string][] = [];
  for (const match of html.matchAll(/<input[^>]*type="hidden"[^>]*>/g)) {
    const name = /name="([^"]*)"/.exec(match[0])?.[1];
    const value = /value="([^"]*)"/.exec(match[0])?.[1] ?? "";
    if (name !== undefined) fields.push([name.replaceAll("&quot;", '"').replaceAll("&amp;", "&"), value.replaceAll("&quot;", '"').replaceAll("&amp;", "&")]);
  }
  return { fields, cookie };
}

/**
 * Wrong sign-ins to the panel, `inFlight` at a time, as a browser without JavaScript posts the
 * form, until `signal` aborts. Counts the answers by status.
 */
export async function signInBursts(target: AttackTarget, inFlight: number, signal: AbortSignal): Promise<Map<string, number>> {
  const answers = new Map<string, number>();
  const count = (what: string) => answers.set(what, (answers.get(what) ?? 0) + 1);
  const form = await signInForm(target.panelUrl);
  const origin = new URL(target.panelUrl).origin;
  let n = 0;
  const worker = async () => {
    while (!signal.aborted) {
      const body = new FormData();
      for (const [name, value] of form.fields) body.append(name, value);
      body.set("email", `admin${n++ % 3}@bench.example`);
      body.set("password", `wrong-${n}`);
      try {
        const r = await fetch(new URL("login", target.panelUrl), { method: "POST", body, redirect: "manual", headers: { cookie: form.cookie, origin }, signal: AbortSignal.timeout(15_000) });
        await r.body?.cancel();
        count(String(r.status));
      } catch (error) {
        count((error as Error).name);
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return answers;
}
