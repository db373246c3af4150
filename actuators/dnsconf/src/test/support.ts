// Helpers for this package's tests only (not exported from index.ts): temp folders, specs, real
// programs (kdig, knotd) run as children on loopback ports, and actuator contexts.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { openSync, closeSync } from "node:fs";
import { join } from "node:path";
import type { ActuatorContext } from "@coyote/actuator";
import { createLogger } from "@coyote/log";
import type { CoyoteLogger } from "@coyote/log";
import { ServerSpec, ServiceSpec, StateStore } from "@coyote/spec";
import { findProgram, freeUdpTcpPort, logEvents, requireProgram, skipWithout as skipWithoutPrograms, stopChild, tempDir as makeTempDir, waitFor as waitUntil, type TempDir } from "@coyote/testing";

/** A temporary folder under the OS temp folder and a function that removes it. */
export function tempDir(prefix = "coyote-dnsconf-"): Promise<TempDir> {
  return makeTempDir(prefix);
}

/** The skip reason for tests that need these Knot programs (see `skipWithout` of @coyote/testing). */
export function skipWithout(...names: string[]): string | false {
  return skipWithoutPrograms(names, "Debian packages knot and knot-dnsutils");
}

export { findProgram, requireProgram };

/** A loopback port free for both UDP and TCP right now (the DNS servers listen on both). */
export const freePort = freeUdpTcpPort;

/** One resource record as kdig printed it. */
export interface DigRecord {
  readonly name: string;
  readonly type: string;
  readonly ttl: number;
  /** The data in presentation form, trimmed. */
  readonly data: string;
}

/** A response as kdig printed it (its `+json` form, RFC 8427). */
export interface DigResult {
  readonly rcode: number;
  readonly aa: boolean;
  readonly tc: boolean;
  readonly answer: DigRecord[];
  readonly authority: DigRecord[];
  readonly additional: DigRecord[];
}

interface KdigJsonRecord {
  NAME: string;
  TYPEname: string;
  TTL: number;
  [key: string]: unknown;
}

function records(list: unknown): DigRecord[] {
  if (!Array.isArray(list)) return [];
  return (list as KdigJsonRecord[]).map((r) => {
    const data = r[`rdata${r.TYPEname}`];
    return { name: r.NAME, type: r.TYPEname, ttl: r.TTL, data: typeof data === "string" ? data.trim() : String(r.RDATAHEX) };
  });
}

/**
 * Queries a server on 127.0.0.1 with kdig (one try, two seconds).
 * @param options tcp: over TCP; bufsize: an EDNS buffer size; noedns: without EDNS.
 */
export function kdig(port: number, name: string, type: string, options: { tcp?: boolean; bufsize?: number; noedns?: boolean } = {}): Promise<DigResult> {
  const args = [`@127.0.0.1`, "-p", String(port), "+timeout=2", "+retry=0", "+json", "+norecurse"];
  if (options.tcp === true) args.push("+tcp");
  if (options.noedns === true) args.push("+noedns", "+ignore");
  if (options.bufsize !== undefined) args.push(`+bufsize=${options.bufsize}`, "+ignore");
  args.push(name, type);
  return new Promise((resolve, reject) => {
    execFile(requireProgram("kdig"), args, { encoding: "utf8", timeout: 10_000 }, (error, stdout, stderr) => {
      if (error !== null) {
        reject(new Error(`kdig ${args.join(" ")}: ${error.message} ${stderr}`));
        return;
      }
      try {
        const json = JSON.parse(stdout) as Record<string, unknown>;
        resolve({
          rcode: Number(json.RCODE),
          aa: json.AA === 1,
          tc: json.TC === 1,
          answer: records(json.answerRRs),
          authority: records(json.authorityRRs),
          additional: records(json.additionalRRs),
        });
      } catch (cause) {
        reject(new Error(`kdig ${args.join(" ")}: unreadable output: ${stdout} ${stderr}`, { cause }));
      }
    });
  });
}

/** The data of the answers of one type, sorted, for comparisons. */
export function dataOf(result: DigResult, type: string): string[] {
  return result.answer.filter((r) => r.type === type).map((r) => r.data).sort();
}

/**
 * Waits until `check` returns a value other than undefined, or fails after `timeoutMs`; a check
 * that throws (a server not listening yet) is tried again.
 */
export function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  return waitUntil(what, check, { timeoutMs, retryErrors: true });
}

/** A child daemon started by a test: its pid, stopped by pid. */
export interface Daemon {
  readonly pid: number;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts a program as a child with its output going to a file (never to the test's output).
 * `stop` sends SIGTERM to that pid, then SIGKILL after five seconds.
 */
export function startDaemon(program: string, args: readonly string[], logFile: string): Daemon {
  const fd = openSync(logFile, "a");
  const child = spawn(program, args, { stdio: ["ignore", fd, fd] });
  closeSync(fd);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`starting ${program} failed`);
  return {
    pid,
    child,
    async stop() {
      await stopChild(child, 5_000);
    },
  };
}

/** A server spec for tests. */
export function serverSpec(overrides: Record<string, unknown> = {}): ServerSpec {
  return ServerSpec.parse({
    schemaVersion: 1,
    kind: "Server",
    name: "test box",
    hostname: "ns1.coyote-host.net",
    publicIPv4: "192.0.2.10",
    publicIPv6: "2001:db8::10",
    certificates: { mode: "acme", directoryUrl: "https://acme.example.net/directory", email: "admin@coyote-host.net" },
    ...overrides,
  });
}

/** A service spec for tests. */
export function serviceSpec(id: string, fields: Record<string, unknown>): ServiceSpec {
  return ServiceSpec.parse({ schemaVersion: 1, kind: "Service", id, ...fields });
}

/** An actuator context over a fresh state store, logging to `<stateDir>/test-log.jsonl`. */
export async function testContext(stateDir: string, server: ServerSpec): Promise<ActuatorContext & { logFile: string; logger: CoyoteLogger }> {
  const store = await StateStore.open(stateDir);
  const logFile = join(stateDir, "test-log.jsonl");
  const logger = createLogger({ component: "dnsconf-test", file: logFile, level: "debug" });
  return { stateDir: store.root, store, logger, signal: new AbortController().signal, server, logFile };
}

/** The DKIM value the fixtures publish (longer than 255 bytes, so it is split). */
export const DKIM_TXT = `v=DKIM1; k=rsa; p=${"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA".repeat(9)}`;

/** The site fixture: web, mail, XMPP and the spec's own records on example.org. */
export function siteSpec(extraRecords: unknown[] = []): ServiceSpec {
  return serviceSpec("site", {
    domains: [
      {
        name: "example.org",
        records: [
          { type: "CNAME", name: "blog", target: "blogs.example.net" },
          { type: "TXT", name: "@", text: "hello world" },
          { type: "A", name: "*.dyn", address: "192.0.2.77" },
          { type: "CAA", name: "@", tag: "iodef", value: "mailto:security@example.org" },
          { type: "MX", name: "backup", priority: 20, exchange: "mx.example.net" },
          { type: "SRV", name: "sip", priority: 1, weight: 2, port: 5060, target: "sip.example.net" },
          ...extraRecords,
        ],
      },
    ],
    web: { hostnames: ["example.org", "www.example.org"], backend: { kind: "static", root: "." } },
    mail: {},
    xmpp: {},
  });
}

/**
 * The MTA-STS policy id a box whose MX is `mx` publishes, computed here from the policy text as
 * RFC 8461 writes it (not with the code under test): the first 20 hex digits of its SHA-256.
 */
export function expectedPolicyId(mx: string): string {
  return createHash("sha256").update(`version: STSv1\r\nmode: enforce\r\nmx: ${mx}\r\nmax_age: 604800\r\n`).digest("hex").slice(0, 20);
}

/**
 * Checks with kdig that a server serves exactly the site fixture's records, authoritatively.
 * @param serial the SOA serial expected.
 */
export async function assertServesSite(port: number, serial: number, tcp = false): Promise<void> {
  const expected: [string, string, string[]][] = [
    ["www.example.org", "A", ["192.0.2.10"]],
    ["www.example.org", "AAAA", ["2001:db8::10"]],
    ["example.org", "A", ["192.0.2.10"]],
    ["blog.example.org", "CNAME", ["blogs.example.net."]],
    ["example.org", "MX", ["10 ns1.coyote-host.net."]],
    ["backup.example.org", "MX", ["20 mx.example.net."]],
    ["example.org", "TXT", ['"hello world"', '"v=spf1 mx -all"']],
    ["_dmarc.example.org", "TXT", ['"v=DMARC1; p=quarantine; rua=mailto:postmaster@example.org"']],
    ["coyote._domainkey.example.org", "TXT", [`"${DKIM_TXT.slice(0, 255)}" "${DKIM_TXT.slice(255)}"`]],
    ["example.org", "CAA", ['0 iodef "mailto:security@example.org"', '0 issue "letsencrypt.org"']],
    ["_xmpp-client._tcp.example.org", "SRV", ["0 5 5222 ns1.coyote-host.net."]],
    ["_xmpp-server._tcp.example.org", "SRV", ["0 5 5269 ns1.coyote-host.net."]],
    ["sip.example.org", "SRV", ["1 2 5060 sip.example.net."]],
    ["anything.dyn.example.org", "A", ["192.0.2.77"]],
    ["autoconfig.example.org", "CNAME", ["ns1.coyote-host.net."]],
    ["mta-sts.example.org", "CNAME", ["ns1.coyote-host.net."]],
    ["_mta-sts.example.org", "TXT", [`"v=STSv1; id=${expectedPolicyId("ns1.coyote-host.net")}"`]],
    ["_smtp._tls.example.org", "TXT", ['"v=TLSRPTv1; rua=mailto:postmaster@example.org"']],
    ["example.org", "NS", ["ns1.coyote-host.net."]],
    ["example.org", "SOA", [`ns1.coyote-host.net. hostmaster.example.org. ${serial} 3600 900 1209600 300`]],
  ];
  for (const [name, type, data] of expected) {
    const result = await kdig(port, name, type, { tcp });
    assert.equal(result.rcode, 0, `${name} ${type}: NOERROR`);
    assert.equal(result.aa, true, `${name} ${type}: authoritative`);
    assert.deepEqual(dataOf(result, type), data, `${name} ${type}`);
    assert.equal(result.answer.length, data.length, `${name} ${type}: nothing else in the answer`);
  }
}

/** The SOA serial a server gives for a zone, or undefined when it does not answer for it. */
export async function servedSerial(port: number, zone: string): Promise<number | undefined> {
  const result = await kdig(port, zone, "SOA");
  const soa = dataOf(result, "SOA")[0];
  return result.rcode === 0 && soa !== undefined ? Number(soa.split(" ")[2]) : undefined;
}

/** Counts the log events of a name (and optionally with a field) in a JSON-lines log file. */
export async function countEvents(logFile: string, event: string, field?: string): Promise<number> {
  return (await logEvents(logFile, event, field)).length;
}
