// bench/tls-audit: testssl.sh (Debian's package) against snitch-proxy and, as the peer, nginx with
// its stock TLS settings, both serving the same certificate (ECDSA P-256 from the local CA, with
// the CRL distribution point every certificate of the local CA carries) on loopback. Prints the
// count of findings per severity for each, and every finding rated MEDIUM or worse; exits 1 when
// snitch-proxy has a finding rated HIGH or CRITICAL.
//
//   node --import tsx bench/src/tls-audit.ts [--peer] [--workers 1]
//
// testssl.sh is told the address (--ip 127.0.0.1) and to look nothing up (--nodns none); it
// contacts nothing else unless asked to (--phone-out, not given). Every daemon runs from a
// temporary folder and is stopped by its pid; the folder is removed at the end.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { freePorts } from "@coyote/testing";
import { benchSetup, startBackend, startNginxProxy, startSnitch } from "./lib/peers.ts";
import { startDaemon, stopDaemon, type Daemon } from "./lib/proc.ts";

const { values } = parseArgs({
  options: {
    // Also audit nginx with its stock TLS settings, for comparison.
    peer: { type: "boolean", default: true },
    workers: { type: "string", default: "1" },
  },
});

const TESTSSL = "/usr/bin/testssl";
const HOST = "bench.localhost";
const BODY = "hello from the backend\n";
const SEVERITIES = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "WARN", "INFO", "OK"] as const;
const RUN_LIMIT_MS = 15 * 60_000;

const out = (line: string) => process.stdout.write(`${line}\n`);

interface Finding {
  readonly id: string;
  readonly severity: string;
  readonly finding: string;
}

const workDir = mkdtempSync(join(tmpdir(), "coyote-tls-audit-"));
const daemons: Daemon[] = [];
const cleanup = async () => {
  await Promise.all(daemons.map((d) => stopDaemon(d)));
  if (process.env.BENCH_KEEP === undefined) rmSync(workDir, { recursive: true, force: true });
  else out(`work folder kept in ${workDir}`);
};
process.once("SIGINT", () => void cleanup().finally(() => process.exit(130)));

/** Polls an address until it accepts TLS connections, within 30 s. */
async function waitListening(port: number): Promise<void> {
  const { connect } = await import("node:tls");
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: "127.0.0.1", port, servername: HOST, rejectUnauthorized: false, timeout: 2000 });
      socket.once("secureConnect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
      socket.once("timeout", () => {
        socket.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`nothing answered TLS on 127.0.0.1:${port} within 30 s`);
}

/** Runs testssl.sh against one port and reads its findings. */
async function audit(name: string, port: number, caFile: string): Promise<Finding[]> {
  const json = join(workDir, `${name}.json`);
  const args = ["--quiet", "--color", "0", "--warnings", "off", "--nodns", "none", "--ip", "127.0.0.1", "--add-ca", caFile, "--connect-timeout", "10", "--openssl-timeout", "10", "--jsonfile", json, `https://${HOST}:${port}/`];
  const daemon = startDaemon(`testssl ${name}`, TESTSSL, args, join(workDir, `${name}.log`));
  daemons.push(daemon);
  let timer: NodeJS.Timeout | undefined;
  const done = await Promise.race([daemon.exited.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), RUN_LIMIT_MS)))]);
  clearTimeout(timer);
  if (!done) {
    await stopDaemon(daemon, 1000);
    throw new Error(`testssl.sh against ${name} did not finish within ${RUN_LIMIT_MS / 60_000} minutes`);
  }
  const parsed = JSON.parse(readFileSync(json, "utf8")) as unknown;
  if (!Array.isArray(parsed)) throw new Error(`${json}: not the list of findings testssl.sh writes`);
  return parsed.map((f: { id?: unknown; severity?: unknown; finding?: unknown }) => ({ id: String(f.id), severity: String(f.severity), finding: String(f.finding) }));
}

process.exitCode = 1;
try {
  try {
    execFileSync("test", ["-x", TESTSSL]);
  } catch {
    throw new Error(`bench/tls-audit: ${TESTSSL} is missing (Debian package testssl.sh)`);
  }
  const { setup, caFile } = await benchSetup(workDir, HOST, daemons);

  const [backendPort = 0, snitchPort = 0, nginxPort = 0] = await freePorts(3);
  startBackend(setup, backendPort, BODY);
  const benchDir = dirname(dirname(fileURLToPath(import.meta.url)));
  // The site opts in to HSTS, as a service's spec can (web.hsts).
  startSnitch(setup, { name: "snitch", benchDir, port: snitchPort, backendPort, workers: values.workers, hsts: true });
  await waitListening(snitchPort);
  const targets: [string, number][] = [["snitch-proxy", snitchPort]];
  if (values.peer) {
    startNginxProxy(setup, nginxPort, backendPort);
    await waitListening(nginxPort);
    targets.push(["nginx", nginxPort]);
  }
  out(`testssl.sh: ${execFileSync(TESTSSL, ["--version"], { encoding: "utf8", timeout: 60_000 }).split("\n").find((l) => l.includes("testssl.sh"))?.trim() ?? "?"}`);
  const results = new Map<string, Finding[]>();
  for (const [name, port] of targets) {
    out(`auditing ${name} on 127.0.0.1:${port} ...`);
    results.set(name, await audit(name, port, caFile));
  }
  out("");
  out(`| severity | ${targets.map(([name]) => name).join(" | ")} |`);
  out(`|---|${targets.map(() => "---|").join("")}`);
  for (const severity of SEVERITIES) out(`| ${severity} | ${targets.map(([name]) => String((results.get(name) ?? []).filter((f) => f.severity === severity).length)).join(" | ")} |`);
  for (const [name] of targets) {
    const serious = (results.get(name) ?? []).filter((f) => ["CRITICAL", "HIGH", "MEDIUM"].includes(f.severity));
    out("");
    out(`${name}: ${serious.length === 0 ? "no finding rated MEDIUM or worse" : "findings rated MEDIUM or worse:"}`);
    for (const f of serious) out(`  ${f.severity.padEnd(8)} ${f.id}: ${f.finding}`);
  }
  const serious = (results.get("snitch-proxy") ?? []).filter((f) => f.severity === "HIGH" || f.severity === "CRITICAL");
  out("");
  const crl = (results.get("snitch-proxy") ?? []).find((f) => f.id === "cert_crlDistributionPoints");
  out(`certificate's CRL distribution point: ${crl?.finding ?? "(not reported)"}`);
  out(serious.length === 0 ? "snitch-proxy: no finding rated HIGH or CRITICAL" : `snitch-proxy: ${serious.length} findings rated HIGH or CRITICAL`);
  process.exitCode = serious.length > 0 ? 1 : 0;
} finally {
  await cleanup();
}
process.exit();
