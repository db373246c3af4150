/**
 * Test support shared by the packages that test certificates end to end: Pebble, Let's Encrypt's
 * ACME test server (Debian package `pebble`), started on loopback and stopped by its pid.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, openSync, closeSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer as createHttpServer, get as httpGet } from "node:http";
import { createServer as createHttpsServer, request } from "node:https";
import { createServer as createTcpServer, type AddressInfo, type Socket } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { LocalCa } from "../local-ca.ts";
import { freePort, freeUdpTcpPort, stopChild } from "@coyote/testing";

/** The Pebble binary of Debian's package. */
export const PEBBLE = "/usr/bin/pebble";

/** A running Pebble. */
export interface Pebble {
  /** Its ACME directory URL (`https://localhost:<port>/dir`). */
  readonly directoryUrl: string;
  /** The file with the CA of Pebble's own TLS certificate, for `certificates.caBundleFile`. */
  readonly tlsCaFile: string;
  /** The PEM of that CA. */
  readonly tlsCaPem: string;
  /** The root that signs the certificates Pebble issues (from its management API). */
  rootPem(): Promise<string>;
  /** Stops Pebble by its pid and waits for it to exit. */
  stop(): Promise<void>;
}

function get(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, timeout: 2000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end();
  });
}

/**
 * Starts Pebble in `dir` (config, TLS key and certificate, log file `pebble.log`).
 * @param options `httpPort`: where Pebble validates HTTP-01 (snitch-proxy's HTTP listener);
 *   `dnsServer`: the `host:port` Pebble resolves names through (our own DNS server).
 */
export async function startPebble(dir: string, options: { httpPort: number; dnsServer: string }): Promise<Pebble> {
  if (!existsSync(PEBBLE)) throw new Error(`starting pebble: ${PEBBLE} is missing (apt-get install pebble)`);
  await mkdir(dir, { recursive: true });
  const ca = await LocalCa.open(join(dir, "tls-ca"), "pebble");
  const tls = ca.issue(["localhost"]);
  await writeFile(join(dir, "key.pem"), tls.keyPem, { mode: 0o600 });
  await writeFile(join(dir, "cert.pem"), tls.chainPem);
  const tlsCaFile = join(dir, "tls-ca", "ca.pem");
  const [port, managementPort, tlsPort] = [await freePort(), await freePort(), await freePort()];
  await writeFile(join(dir, "pebble.json"), JSON.stringify({
    pebble: {
      listenAddress: `127.0.0.1:${port}`,
      managementListenAddress: `127.0.0.1:${managementPort}`,
      certificate: join(dir, "cert.pem"),
      privateKey: join(dir, "key.pem"),
      httpPort: options.httpPort,
      tlsPort,
      ocspResponderURL: "",
      externalAccountBindingRequired: false,
    },
  }));
  const log = openSync(join(dir, "pebble.log"), "a");
  let child: ChildProcess;
  try {
    child = spawn(PEBBLE, ["-config", join(dir, "pebble.json"), "-dnsserver", options.dnsServer], {
      stdio: ["ignore", log, log],
      // No sleeps before validations and no random nonce rejections: tests stay fast and exact.
      env: { PATH: "/usr/bin:/bin", PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0", PEBBLE_AUTHZREUSE: "0" },
    });
  } finally {
    closeSync(log);
  }
  const life = { gone: false };
  child.once("exit", () => {
    life.gone = true;
  });
  const directoryUrl = `https://localhost:${port}/dir`;
  const stop = async () => {
    await stopChild(child, 5000);
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await get(directoryUrl, ca.certificatePem).then((r) => r.status === 200, () => false);
    if (ok) break;
    if (life.gone || Date.now() > deadline) {
      await stop();
      throw new Error(`starting pebble: it did not answer at ${directoryUrl} (see ${join(dir, "pebble.log")})`);
    }
    await sleep(50);
  }
  return {
    directoryUrl,
    tlsCaFile,
    tlsCaPem: ca.certificatePem,
    rootPem: async () => (await get(`https://localhost:${managementPort}/roots/0`, ca.certificatePem)).body,
    stop,
  };
}

/** The program of Debian's `pebble` package that answers DNS queries with fixed addresses. */
export const CHALLTESTSRV = "/usr/bin/pebble-challtestsrv";

/** A DNS server that answers every A query with 127.0.0.1 (and no AAAA), for Pebble to resolve names no zone of ours holds. */
export interface FakeDns {
  /** `127.0.0.1:<port>`, for Pebble's `dnsServer`. */
  readonly address: string;
  /** Stops it by its pid and waits for it to exit. */
  stop(): Promise<void>;
}

/**
 * Starts `pebble-challtestsrv` on loopback as a DNS server only (its challenge listeners off),
 * logging to `dir/challtestsrv.log`.
 */
export async function startFakeDns(dir: string): Promise<FakeDns> {
  if (!existsSync(CHALLTESTSRV)) throw new Error(`starting the fake DNS server: ${CHALLTESTSRV} is missing (apt-get install pebble)`);
  await mkdir(dir, { recursive: true });
  const [port, management] = [await freeUdpTcpPort(), await freePort()];
  const log = openSync(join(dir, "challtestsrv.log"), "a");
  let child: ChildProcess;
  try {
    child = spawn(CHALLTESTSRV, ["-dns01", `127.0.0.1:${port}`, "-http01", "", "-https01", "", "-tlsalpn01", "", "-management", `127.0.0.1:${management}`, "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""], { stdio: ["ignore", log, log], env: { PATH: "/usr/bin:/bin" } });
  } finally {
    closeSync(log);
  }
  const stop = async () => {
    await stopChild(child, 5000);
  };
  // Ready once its management API answers (it binds DNS first).
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = httpGet(`http://127.0.0.1:${management}/`, { timeout: 1000 }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on("timeout", () => req.destroy());
      req.on("error", () => resolve(false));
    });
    if (ok) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`starting the fake DNS server: it did not answer (see ${join(dir, "challtestsrv.log")})`);
    }
    await sleep(50);
  }
  return { address: `127.0.0.1:${port}`, stop };
}

/** A plain HTTP listener answering HTTP-01 challenges from a folder (see {@link serveChallenges}). */
export interface ChallengeServer {
  /** The hosts the answered requests named (the Host header), in order. */
  readonly hosts: readonly string[];
  close(): Promise<void>;
}

/**
 * Answers `/.well-known/acme-challenge/<token>` from `challengesDir` on 127.0.0.1:`port`, whatever
 * the Host, as snitch-proxy's plain HTTP listener does (it needs no route for the hostname).
 */
export async function serveChallenges(challengesDir: string, port: number): Promise<ChallengeServer> {
  const hosts: string[] = [];
  const server = createHttpServer((req, res) => {
    const token = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]{1,256})$/.exec(req.url ?? "")?.[1];
    const answer = token === undefined ? Promise.reject(new Error("not a challenge")) : readFile(join(challengesDir, token), "utf8");
    void answer.then(
      (body) => {
        hosts.push(req.headers.host ?? "");
        res.writeHead(200, { "content-type": "text/plain" });
        res.end(body);
      },
      () => {
        res.writeHead(404);
        res.end();
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { hosts, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** A CA that stalls, for deadline tests (see {@link startStalledCa}). */
export interface StalledCa {
  /** Its ACME directory URL (`https://localhost:<port>/dir`); the directory itself answers. */
  readonly directoryUrl: string;
  /** The file with the CA of its TLS certificate, for `certificates.caBundleFile`. */
  readonly caFile: string;
  /** How many connections to the stalled URLs are open now. */
  openConnections(): number;
  /** Closes both listeners and every connection. */
  stop(): Promise<void>;
}

/**
 * Starts a CA on loopback whose directory answers and whose every other URL is a port that
 * accepts TCP connections and never sends a byte, not even a TLS handshake: a stalled CA.
 */
export async function startStalledCa(dir: string): Promise<StalledCa> {
  await mkdir(dir, { recursive: true });
  const sockets = new Set<Socket>();
  const stuck = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
  });
  await new Promise<void>((resolve) => stuck.listen(0, "127.0.0.1", resolve));
  const stuckUrl = `https://localhost:${(stuck.address() as AddressInfo).port}`;
  const ca = await LocalCa.open(join(dir, "tls-ca"), "stalled-ca");
  const tls = ca.issue(["localhost"]);
  const caFile = join(dir, "tls-ca", "ca.pem");
  const directory = createHttpsServer({ key: tls.keyPem, cert: tls.chainPem }, (_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ renewalInfo: `${stuckUrl}/ari`, newNonce: `${stuckUrl}/nonce`, newAccount: `${stuckUrl}/account`, newOrder: `${stuckUrl}/order`, revokeCert: `${stuckUrl}/revoke`, keyChange: `${stuckUrl}/key` }));
  });
  await new Promise<void>((resolve) => directory.listen(0, "127.0.0.1", resolve));
  return {
    directoryUrl: `https://localhost:${(directory.address() as AddressInfo).port}/dir`,
    caFile,
    openConnections: () => sockets.size,
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      directory.closeAllConnections();
      await Promise.all([new Promise((resolve) => stuck.close(resolve)), new Promise((resolve) => directory.close(resolve))]);
    },
  };
}
