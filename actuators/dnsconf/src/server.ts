/**
 * The built-in authoritative DNS server (the embedded default backend; Knot in production): UDP and TCP on
 * the addresses the server spec lists, answering from the JSON zone files the actuator writes,
 * reloaded in-process. Bad input never takes it down: a malformed packet gets FORMERR or nothing,
 * a bad zone file is skipped with an ERROR log while the other zones keep being served.
 */
import { createSocket } from "node:dgram";
import type { Socket as UdpSocket } from "node:dgram";
import { createServer, isIP } from "node:net";
import type { Server as TcpServer, Socket as TcpSocket } from "node:net";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { ActuatorError, DirectoryCache } from "@coyote/actuator";
import type { CoyoteLogger } from "@coyote/log";
import { answerQuery, indexZones } from "./answer.ts";
import type { ZoneSet } from "./answer.ts";
import { readAcmeChallenges, type AcmeChallenge } from "@coyote/spec";
import { isInZone } from "./names.ts";
import { DnsZoneFile } from "./render.ts";

/** Options of {@link startDnsServer}. */
export interface DnsServerOptions {
  /** `host:port` addresses to answer on over UDP and TCP, e.g. `127.0.0.1:5353` or `[::1]:5353`. */
  readonly listen: readonly string[];
  /** The folder of JSON zone files (`<zone>.json`). A missing folder means no zones. */
  readonly zonesDir: string;
  /** Where loading problems and reloads are logged. */
  readonly logger: CoyoteLogger;
  /** How long an idle TCP connection is kept, in ms (default 10 s). */
  readonly tcpIdleTimeoutMs?: number;
  /** The most TCP connections served at once (default 256). */
  readonly maxTcpConnections?: number;
  /**
   * ACME DNS-01 challenges to serve on top of the zones (`dns/acme-challenges.json`); the file is
   * checked every 250 ms and a change reloads the zones.
   */
  readonly challengesFile?: string;
}

/** What {@link DnsServer.reload} loaded. */
export interface ZoneLoadReport {
  /** The zones now served, sorted. */
  readonly zones: readonly string[];
  /** The files skipped because they are bad, with the reason. */
  readonly skipped: readonly { readonly file: string; readonly error: string }[];
}

/** A running built-in DNS server. */
export interface DnsServer {
  /** The addresses it listens on, with the real ports (useful when a port 0 was asked for). */
  readonly addresses: readonly { readonly host: string; readonly port: number }[];
  /** How many times the zones were loaded, the start included. */
  readonly loads: number;
  /** Re-reads every zone file and swaps the served zones at once. Never throws for a bad file. */
  reload(): Promise<ZoneLoadReport>;
  /** Stops answering and closes every socket. */
  stop(): Promise<void>;
}

const ZONE_FILE = /^([a-z0-9.-]+)\.json$/;

/**
 * Reads and validates every zone file of a folder. A file that cannot be read, is not JSON, fails
 * the schema or names another zone than its file name is skipped and reported, never thrown.
 */
export async function loadZoneFiles(zonesDir: string): Promise<{ files: DnsZoneFile[]; skipped: { file: string; error: string }[] }> {
  return collectZoneFiles(zonesDir, await zoneFileCache(zonesDir).read());
}

/** One zone file as the loader saw it: the zone, or why it was skipped. */
type LoadedZoneFile = { readonly zone: DnsZoneFile } | { readonly error: string };

/**
 * A cache of a zone folder's parsed files: a reload re-reads and re-validates only the files that
 * changed, so one changed zone among thousands costs one read, not thousands.
 */
function zoneFileCache(zonesDir: string): DirectoryCache<LoadedZoneFile> {
  return new DirectoryCache<LoadedZoneFile>(zonesDir, (name) => ZONE_FILE.test(name), (name, text) => {
    const zone = ZONE_FILE.exec(name)?.[1] ?? name;
    try {
      const parsed = DnsZoneFile.safeParse(JSON.parse(text));
      if (!parsed.success) return { error: parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ") };
      if (parsed.data.zone !== zone) return { error: `the file holds zone ${parsed.data.zone}, not ${zone} as its name says` };
      return { zone: parsed.data };
    } catch (cause) {
      return { error: cause instanceof Error ? cause.message : String(cause) };
    }
  });
}

function collectZoneFiles(zonesDir: string, loaded: ReadonlyMap<string, LoadedZoneFile>): { files: DnsZoneFile[]; skipped: { file: string; error: string }[] } {
  const files: DnsZoneFile[] = [];
  const skipped: { file: string; error: string }[] = [];
  for (const [name, entry] of loaded) {
    if ("zone" in entry) files.push(entry.zone);
    else skipped.push({ file: join(zonesDir, name), error: entry.error });
  }
  return { files, skipped };
}

function splitHostPort(value: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([a-zA-Z0-9.-]+)):([0-9]{1,5})$/.exec(value);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (host === undefined || !(port >= 0 && port <= 65535)) {
    throw new ActuatorError("InvalidListen", `starting dns server: not a host:port address: ${JSON.stringify(value)}`, { terminal: true });
  }
  return { host, port };
}

/**
 * Starts the built-in server: loads the zones, then binds UDP and TCP on every address. When a
 * bind fails, whatever was bound is closed again before the error is thrown.
 * @throws ActuatorError `InvalidListen` (terminal) for a bad address, `ListenFailed` when a port
 *   cannot be bound.
 */
export async function startDnsServer(options: DnsServerOptions): Promise<DnsServer> {
  const { logger } = options;
  let zones: ZoneSet = indexZones([]);
  let loads = 0;
  const udpSockets: UdpSocket[] = [];
  const tcpServers: TcpServer[] = [];
  const connections = new Set<TcpSocket>();
  const idleMs = options.tcpIdleTimeoutMs ?? 10_000;

  const answer = (message: Buffer, transport: "udp" | "tcp"): Buffer | undefined => {
    try {
      return answerQuery(zones, message, transport);
    } catch (err) {
      // answerQuery is meant to be total; this is the belt to its braces.
      logger.event("ERROR", { err }, "dns server: answering a query failed");
      return undefined;
    }
  };

  let challenges: readonly AcmeChallenge[] = [];
  const loadChallenges = async (file: string): Promise<readonly AcmeChallenge[]> => {
    try {
      challenges = await readAcmeChallenges(file);
    } catch (err) {
      // A damaged file must not withdraw values a certificate order is waiting on.
      logger.event("ERROR", { err, file }, `loading acme challenges ${file} failed; keeping the challenges served before`);
    }
    return challenges;
  };
  const cache = zoneFileCache(options.zonesDir);
  const reload = async (): Promise<ZoneLoadReport> => {
    let loaded: Awaited<ReturnType<typeof loadZoneFiles>>;
    try {
      loaded = collectZoneFiles(options.zonesDir, await cache.read());
    } catch (err) {
      // The folder itself cannot be read: keep serving what was loaded before.
      logger.event("ERROR", { err, zonesDir: options.zonesDir }, `dns server: reading zone folder ${options.zonesDir} failed; keeping the zones loaded before`);
      return { zones: [...zones.zones.keys()].sort(), skipped: [] };
    }
    for (const bad of loaded.skipped) {
      logger.event("ERROR", { file: bad.file, reason: bad.error }, `loading dns zone file ${bad.file}: ${bad.error}; skipped, the other zones are served`);
    }
    zones = indexZones(options.challengesFile === undefined ? loaded.files : withChallenges(loaded.files, await loadChallenges(options.challengesFile)));
    loads += 1;
    const names = loaded.files.map((f) => f.zone).sort();
    logger.event("CONFIG_RELOADED", { what: "dns zones", zones: names.length, skipped: loaded.skipped.length });
    return { zones: names, skipped: loaded.skipped };
  };

  const handleTcp = (socket: TcpSocket) => {
    connections.add(socket);
    let pending: Buffer = Buffer.alloc(0);
    socket.setTimeout(idleMs, () => socket.destroy());
    socket.on("error", () => socket.destroy());
    socket.on("close", () => connections.delete(socket));
    socket.on("data", (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      // Every message is preceded by its length in two bytes (RFC 1035, 4.2.2); several may come
      // in one chunk and one may span chunks.
      while (pending.length >= 2) {
        const length = pending.readUInt16BE(0);
        if (pending.length < 2 + length) break;
        const message = pending.subarray(2, 2 + length);
        pending = pending.subarray(2 + length);
        const response = answer(Buffer.from(message), "tcp");
        if (response === undefined) continue;
        const framed = Buffer.alloc(2 + response.length);
        framed.writeUInt16BE(response.length, 0);
        response.copy(framed, 2);
        if (!socket.destroyed) socket.write(framed);
      }
    });
  };

  const closeAll = async () => {
    for (const socket of connections) socket.destroy();
    await Promise.all([
      ...udpSockets.map((s) => new Promise<void>((resolve) => {
        try {
          s.close(() => { resolve(); });
        } catch {
          resolve();
        }
      })),
      ...tcpServers.map((s) => new Promise<void>((resolve) => s.close(() => { resolve(); }))),
    ]);
  };

  const endpoints = options.listen.map(splitHostPort);
  await reload();
  const addresses: { host: string; port: number }[] = [];
  try {
    for (const { host, port } of endpoints) {
      const udp = createSocket({ type: isIP(host) === 6 ? "udp6" : "udp4" });
      udpSockets.push(udp);
      await new Promise<void>((resolve, reject) => {
        udp.once("error", reject);
        udp.bind(port, host, () => {
          udp.off("error", reject);
          resolve();
        });
      });
      const boundPort = udp.address().port;
      udp.on("error", (err) => { logger.event("ERROR", { err }, `dns server: udp socket ${host}:${boundPort} failed`); });
      udp.on("message", (message, remote) => {
        const response = answer(message, "udp");
        if (response !== undefined) udp.send(response, remote.port, remote.address, () => undefined);
      });
      const tcp = createServer(handleTcp);
      tcp.maxConnections = options.maxTcpConnections ?? 256;
      tcpServers.push(tcp);
      await new Promise<void>((resolve, reject) => {
        tcp.once("error", reject);
        // The TCP port follows the UDP one, so that port 0 gives one number for both.
        tcp.listen(boundPort, host, () => {
          tcp.off("error", reject);
          resolve();
        });
      });
      tcp.on("error", (err) => { logger.event("ERROR", { err }, `dns server: tcp listener ${host}:${boundPort} failed`); });
      addresses.push({ host, port: boundPort });
    }
  } catch (cause) {
    await closeAll();
    throw new ActuatorError("ListenFailed", `starting dns server on ${options.listen.join(", ")}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  logger.info({ listen: addresses.map((a) => `${a.host}:${a.port}`), zones: zones.zones.size }, "built-in dns server listening");
  let stopped = false;
  let challengeStamp = "";
  const challengesFile = options.challengesFile;
  const watchChallenges = challengesFile === undefined ? undefined : setInterval(() => {
    void stat(challengesFile).then((info) => `${info.mtimeMs}:${info.size}`, () => "").then((stamp) => {
      if (stamp === challengeStamp) return;
      challengeStamp = stamp;
      return reload();
    });
  }, 250);
  watchChallenges?.unref();
  return {
    addresses,
    get loads() {
      return loads;
    },
    reload,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (watchChallenges) clearInterval(watchChallenges);
      await closeAll();
    },
  };
}

/**
 * The zone files with each ACME challenge added as a TXT record to the most specific zone that
 * contains its name; a challenge outside every zone is not served (the CA would not ask us).
 */
function withChallenges(files: readonly DnsZoneFile[], challenges: readonly { name: string; value: string }[]): DnsZoneFile[] {
  if (challenges.length === 0) return [...files];
  return files.map((file) => {
    const mine = challenges.filter((c) => isInZone(c.name, file.zone) && !files.some((other) => other.zone.length > file.zone.length && isInZone(other.zone, file.zone) && isInZone(c.name, other.zone)));
    if (mine.length === 0) return file;
    return { ...file, records: [...file.records, ...mine.map((c) => ({ name: c.name, ttl: 60, type: "TXT" as const, strings: [c.value] }))] };
  });
}
