/**
 * The dnsconf actuator: authoritative zones from service specs, served by Knot DNS (production)
 * or by the built-in server (embedded default). One zone file per zone, owned by the service that
 * asked for it; `apply` writes and removes zone files, `commit` makes them live once per batch.
 */
import { access, mkdir, readFile, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { ActuatorError, DirectoryCache, memoizeByIdentity, requeueAfter } from "@coyote/actuator";
import type { Actuator, ActuatorContext, Plan, Requeue, Target } from "@coyote/actuator";
import type { CoyoteLogger } from "@coyote/log";
import { DomainName, fsyncDir, writeFileAtomic } from "@coyote/spec";
import type { ServerSpec } from "@coyote/spec";
import { parseZoneFileHeader, parseZoneJsonHeader, renderKnotConf, renderZoneFile, renderZoneJson } from "./render.ts";
import { startDnsServer } from "./server.ts";
import { acmeChallengesPath } from "./challenges.ts";
import type { DnsServer } from "./server.ts";
import { KnotLiveCheck, run } from "./knot-live.ts";
import type { KnotLive } from "./knot-live.ts";
import { DkimRecordFile, dkimFilePath, nextSerial, zonesFor } from "./zone.ts";
import type { DkimRecord, Zone } from "./zone.ts";

/** The Knot backend's paths, addresses and binary. */
export interface KnotBackendOptions {
  /** The folder of `knot.conf` (`/etc/knot` in production). */
  readonly configDir: string;
  /** The folder of the zone files, `<zone>.zone` (e.g. `/var/lib/knot/coyote`). */
  readonly zonesDir: string;
  /** `ip:port` addresses Knot answers on, e.g. `["0.0.0.0:53", "[::]:53"]`. */
  readonly listen: readonly string[];
  /** Knot's control socket, through which `knotc` reloads it. */
  readonly controlSocket: string;
  /** The `knotc` binary. */
  readonly knotc: string;
  /** Knot's run folder; Knot's default (`/run/knot`) when not given. */
  readonly rundir?: string;
  /** Knot's database folder (timers); Knot's default (`/var/lib/knot`) when not given. */
  readonly databaseDir?: string;
  /** `user:group` Knot drops to after binding (`knot:knot` when started as root); none when not given. */
  readonly user?: string;
  /** How long one `knotc reload` may take, in ms (default 30 s). */
  readonly reloadTimeoutMs?: number;
  /**
   * Whether `DnsReady` checks the running Knot (it runs and serves each zone at its file's
   * serial); when false it means "zone files written and reloaded". Default false.
   */
  readonly verify?: boolean;
}

/** Options of {@link createDnsActuator}. */
export interface DnsActuatorOptions {
  /** The state folder (`COYOTE_STATE`): built-in zone files, DKIM files, the pending-reload mark. */
  readonly stateDir: string;
  /** Which server serves the zones. */
  readonly backend: "knot" | "builtin";
  /** The Knot backend's settings; required with `backend: "knot"`. */
  readonly knot?: KnotBackendOptions;
}

/** One zone file as observed on disk. */
export interface ObservedZoneFile {
  /** The service id in the file's header, or undefined when the file is not one Coyote wrote. */
  readonly owner: string | undefined;
  /** The SOA serial in the file (0 when unreadable). */
  readonly serial: number;
  /** The whole text, for the zones this reconcile is about; undefined for the others. */
  readonly text: string | undefined;
}

/** What {@link createDnsActuator}'s `observe` sees. */
export interface DnsObserved {
  /** The zone files of the service's wanted zones and of the zones it owns, by zone name. */
  readonly zones: Readonly<Record<string, ObservedZoneFile>>;
  /** Every zone a Coyote service owns (a file with an owner header), sorted: Knot's zone list. */
  readonly servedZones: readonly string[];
  /** The current `knot.conf` (Knot backend), or undefined when missing or not applicable. */
  readonly knotConf: string | undefined;
  /** The DKIM records the mail actuator published for the service's domains. */
  readonly dkim: Readonly<Record<string, DkimRecord>>;
  /** What the running Knot serves, when it is verified and the service has zones. */
  readonly live?: KnotLive;
}

/** One change the dnsconf actuator makes. */
export type DnsStep =
  | { readonly kind: "write-zone"; readonly zone: string; readonly serial: number; readonly path: string; readonly content: string }
  | { readonly kind: "write-knot-conf"; readonly path: string; readonly content: string; readonly zones: number }
  | { readonly kind: "remove-zone"; readonly zone: string; readonly path: string }
  | { readonly kind: "await-knot"; readonly reason: "KnotDown" | "DnsPending"; readonly message: string; readonly afterMs: number };

/** The actuator {@link createDnsActuator} makes. */
export type DnsActuator = Actuator<DnsObserved, DnsStep>;

const ZONE_NAME = /^([a-z0-9.-]+)\.(zone|json)$/;

function isNotFound(cause: unknown): boolean {
  return (cause as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
}

/**
 * The step that waits for the running Knot, when it is verified and does not serve the service's
 * zones yet: Knot down, a zone not loaded or at another serial than its file's, or a zone file
 * about to change (it reaches Knot at the commit). Undefined when Knot is not verified or serves
 * every zone as written.
 */
function awaitKnot(id: string, serials: ReadonlyMap<string, number>, written: ReadonlySet<string>, live: KnotLive | undefined, changing: boolean): Extract<DnsStep, { kind: "await-knot" }> | undefined {
  if (live === undefined || serials.size === 0) return undefined;
  const why: string[] = [];
  if (live.down !== undefined) why.push(live.down);
  else {
    for (const [zone, serial] of serials) {
      if (written.has(zone)) why.push(`zone ${zone} at serial ${serial} reaches knot at the commit`);
      else if (!live.serials.has(zone)) why.push(`knot does not serve zone ${zone} yet`);
      else if (live.serials.get(zone) === undefined) why.push(`knot has not loaded zone ${zone}`);
      else if (live.serials.get(zone) !== serial) why.push(`knot serves zone ${zone} at serial ${String(live.serials.get(zone))}, its file has ${serial}`);
    }
  }
  if (why.length === 0 && !changing) return undefined;
  const reason = live.down !== undefined ? "KnotDown" : "DnsPending";
  const message = `dns zones of service ${id} are not served yet: ${why.length > 0 ? why.join("; ") : "the change reaches knot at the commit"}`;
  return { kind: "await-knot", reason, message, afterMs: reason === "DnsPending" ? 1000 : 5000 };
}

/**
 * Makes the dnsconf actuator (id `actuator.dnsconf.knot` or `actuator.dnsconf.builtin`, condition
 * `DnsReady`). Side-effect-free: nothing is read, written or started until the minion calls it.
 *
 * Each zone is one file named after the zone, whose header records the service that owns it: a
 * second service asking for the same zone gets a terminal `DomainTaken`, a deleted service's
 * zones (and only those) are removed. Knot's zone list in `knot.conf` is rendered from the zone
 * files present, so adding or deleting a service changes it deterministically. `apply` leaves a
 * pending-reload mark that `commit` clears after reloading (`knotc reload`, or the built-in server
 * re-reading its zones), so a commit lost to a crash is redone and an idle commit reloads nothing.
 * @throws ActuatorError `InvalidOptions` (terminal) when the Knot backend has no `knot` options.
 */
export function createDnsActuator(options: DnsActuatorOptions): DnsActuator {
  const { backend, stateDir } = options;
  const knot = options.knot;
  if (backend === "knot" && knot === undefined) {
    throw new ActuatorError("InvalidOptions", "creating dns actuator: the knot backend needs options.knot", { terminal: true });
  }
  const zonesDir = knot !== undefined && backend === "knot" ? knot.zonesDir : join(stateDir, "dns", "zones");
  const extension = backend === "knot" ? "zone" : "json";
  const zonePath = (zone: string) => join(zonesDir, `${zone}.${extension}`);
  const knotConfPath = knot === undefined ? undefined : join(knot.configDir, "knot.conf");
  const reloadMark = join(stateDir, "dns", `${backend}.reload-pending`);
  const render = (zone: Zone, owner: string, serial: number) => (backend === "knot" ? renderZoneFile(zone, owner, serial) : renderZoneJson(zone, owner, serial));
  const parseHeader = backend === "knot" ? parseZoneFileHeader : parseZoneJsonHeader;
  const servers = new Set<DnsServer>();
  const live = backend === "knot" && knot?.verify === true ? new KnotLiveCheck(knot) : undefined;
  const zoneIndex = memoizeByIdentity((files: ReadonlyMap<string, { zone: string; text: string; header: { owner: string; serial: number } | undefined }>) => {
    const byZone = new Map<string, { text: string; header: { owner: string; serial: number } | undefined }>();
    const byOwner = new Map<string, string[]>();
    for (const file of files.values()) {
      byZone.set(file.zone, file);
      const owner = file.header?.owner;
      if (owner !== undefined) byOwner.set(owner, [...(byOwner.get(owner) ?? []), file.zone]);
    }
    const served = [...byZone.entries()].filter(([, file]) => file.header !== undefined).map(([zone]) => zone).sort();
    return { byZone, byOwner, served };
  });
  // Every service's observe needs every zone's owner; the cache re-reads only what changed.
  const zoneFiles = new DirectoryCache(
    zonesDir,
    (name) => {
      const match = ZONE_NAME.exec(name);
      return match?.[1] !== undefined && match[2] === extension && DomainName.safeParse(match[1]).success;
    },
    (name, text) => ({ zone: ZONE_NAME.exec(name)?.[1] ?? name, text, header: parseHeader(text) }),
  );

  const readDkim = async (domain: string, logger: CoyoteLogger): Promise<DkimRecord | undefined> => {
    const path = dkimFilePath(stateDir, domain);
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (cause) {
      if (isNotFound(cause)) return undefined;
      throw new ActuatorError("ReadFailed", `reading dkim record of ${domain}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    }
    try {
      const parsed = DkimRecordFile.safeParse(JSON.parse(text));
      if (parsed.success) return { selector: parsed.data.selector, txt: parsed.data.txt };
      logger.warn({ file: path }, `reading dkim record of ${domain}: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}; published without DKIM`);
    } catch (cause) {
      logger.warn({ file: path }, `reading dkim record of ${domain}: not valid JSON (${cause instanceof Error ? cause.message : String(cause)}); published without DKIM`);
    }
    return undefined;
  };

  const observe = async (target: Target, context: ActuatorContext): Promise<DnsObserved> => {
    const wanted = new Set((target.spec?.domains ?? []).filter((d) => d.authoritative).map((d) => d.name));
    const zones: Record<string, ObservedZoneFile> = {};
    let files: ReadonlyMap<string, { zone: string; text: string; header: { owner: string; serial: number } | undefined }>;
    try {
      files = await zoneFiles.read();
    } catch (cause) {
      throw new ActuatorError("ReadFailed", `reading zone folder ${zonesDir}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    }
    // Only the zones that matter to this service (its wanted and its owned ones) are looked at;
    // the index is built once per state of the folder, so a resync does not read n files n times.
    const index = zoneIndex(files);
    for (const name of new Set([...wanted, ...(index.byOwner.get(target.id) ?? [])])) {
      const file = index.byZone.get(name);
      if (file) zones[name] = { owner: file.header?.owner, serial: file.header?.serial ?? 0, text: file.text };
    }
    const servedZones = index.served;
    let knotConf: string | undefined;
    if (backend === "knot" && knotConfPath !== undefined) {
      try {
        knotConf = await readFile(knotConfPath, "utf8");
      } catch (cause) {
        if (!isNotFound(cause)) throw new ActuatorError("ReadFailed", `reading ${knotConfPath}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
      }
    }
    const dkim: Record<string, DkimRecord> = {};
    if (target.spec?.mail !== undefined) {
      for (const domain of [...wanted].sort()) {
        const record = await readDkim(domain, context.logger);
        if (record !== undefined) dkim[domain] = record;
      }
    }
    const knotLive = wanted.size > 0 ? await live?.check(context.signal) : undefined;
    return { zones, servedZones, knotConf, dkim, ...(knotLive === undefined ? {} : { live: knotLive }) };
  };

  const plan = (target: Target, observed: DnsObserved, server: ServerSpec): Plan<DnsStep> => {
    const zones = target.spec === undefined ? [] : zonesFor(target.spec, server, { dkim: observed.dkim });
    const writes: DnsStep[] = [];
    const serials = new Map<string, number>();
    for (const zone of zones) {
      const existing = observed.zones[zone.name];
      let serial = nextSerial(undefined);
      if (existing !== undefined) {
        if (existing.owner === undefined) {
          throw new ActuatorError("ZoneFileForeign", `zone ${zone.name}: ${zonePath(zone.name)} is not a zone file coyote wrote (no owner header); move it away to let coyote serve the zone`, { terminal: true });
        }
        if (existing.owner !== target.id) {
          throw new ActuatorError("DomainTaken", `zone ${zone.name}: already served for service ${existing.owner}; a zone belongs to one service`, { terminal: true });
        }
        serials.set(zone.name, existing.serial);
        if (render(zone, target.id, existing.serial) === existing.text) continue;
        serial = nextSerial(existing.serial);
      }
      serials.set(zone.name, serial);
      writes.push({ kind: "write-zone", zone: zone.name, serial, path: zonePath(zone.name), content: render(zone, target.id, serial) });
    }
    const desired = new Set(zones.map((z) => z.name));
    const removed = new Set(
      Object.entries(observed.zones)
        .filter(([name, file]) => file.owner === target.id && !desired.has(name))
        .map(([name]) => name),
    );
    const removals: DnsStep[] = [...removed].sort().map((zone) => ({ kind: "remove-zone", zone, path: zonePath(zone) }));
    const steps: DnsStep[] = [...writes];
    if (backend === "knot" && knot !== undefined && knotConfPath !== undefined) {
      const served = observed.servedZones.filter((name) => !removed.has(name));
      const names = [...new Set([...served, ...desired])].sort();
      const conf = renderKnotConf(names, knot);
      // Written after the new zone files (Knot must find them) and before old ones go (Knot must
      // not look for them).
      if (conf !== observed.knotConf) steps.push({ kind: "write-knot-conf", path: knotConfPath, content: conf, zones: names.length });
    }
    steps.push(...removals);
    const written = new Set(writes.flatMap((step) => (step.kind === "write-zone" ? [step.zone] : [])));
    const waiting = awaitKnot(target.id, serials, written, observed.live, steps.length > 0);
    if (waiting !== undefined) steps.push(waiting);
    const describe = steps.map((step) => {
      switch (step.kind) {
        case "write-zone":
          return `write zone ${step.zone} (serial ${step.serial})`;
        case "write-knot-conf":
          return `write ${step.path} (${step.zones} zones)`;
        case "remove-zone":
          return `remove zone ${step.zone}`;
        case "await-knot":
          return `wait for knot: ${step.message}`;
      }
    });
    return { steps, describe };
  };

  const apply = async (planned: Plan<DnsStep>, target: Target, context: ActuatorContext): Promise<Requeue | undefined> => {
    // Not a change: the zones are not served yet, so the condition says why and they are looked at again.
    const waiting = planned.steps.find((step) => step.kind === "await-knot");
    const requeue = waiting === undefined ? undefined : requeueAfter(waiting.afterMs, waiting.reason, waiting.message);
    if (planned.steps.every((step) => step.kind === "await-knot")) return requeue;
    try {
      await mkdir(dirname(reloadMark), { recursive: true });
      await mkdir(zonesDir, { recursive: true });
      if (knot !== undefined && backend === "knot") {
        await mkdir(knot.configDir, { recursive: true });
        // Knot refuses to start when the database folder its configuration names is missing.
        if (knot.databaseDir !== undefined) await mkdir(knot.databaseDir, { recursive: true, mode: 0o700 });
      }
      // The mark goes first: a crash after any file changed must still lead to a reload.
      const marked = await access(reloadMark).then(() => true, () => false);
      if (!marked) await writeFileAtomic(reloadMark, `${target.id}\n`);
      for (const step of planned.steps) {
        switch (step.kind) {
          case "write-zone":
          case "write-knot-conf":
            await writeFileAtomic(step.path, step.content);
            break;
          case "await-knot":
            break;
          case "remove-zone":
            try {
              await unlink(step.path);
              await fsyncDir(dirname(step.path));
            } catch (cause) {
              // Already gone: an earlier apply got this far before it was interrupted.
              if (!isNotFound(cause)) throw cause;
            }
            break;
        }
      }
    } catch (cause) {
      if (cause instanceof ActuatorError) throw cause;
      throw new ActuatorError("WriteFailed", `applying dns zones of service ${target.id}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    }
    context.logger.debug({ steps: planned.describe }, `dns zones of service ${target.id} written`);
    return requeue;
  };

  const commit = async (context: ActuatorContext): Promise<void> => {
    const pending = await access(reloadMark).then(() => true, () => false);
    if (!pending) return;
    if (backend === "knot" && knot !== undefined) {
      const result = await run(knot.knotc, ["-s", knot.controlSocket, "-t", String(Math.ceil((knot.reloadTimeoutMs ?? 30_000) / 1000)), "reload"], (knot.reloadTimeoutMs ?? 30_000) + 5_000);
      if (result.code !== 0) {
        throw new ActuatorError("ReloadFailed", `reloading knot through ${knot.controlSocket}: knotc exited with ${result.code}: ${result.output}`);
      }
    } else {
      // The zones are read at start, so a server that is not running yet needs no reload.
      for (const server of servers) await server.reload();
    }
    live?.forget();
    await unlink(reloadMark).catch((cause: unknown) => {
      if (!isNotFound(cause)) throw cause;
    });
    context.logger.event("CONFIG_RELOADED", { what: "dns zones", backend });
  };

  const actuator: DnsActuator = {
    id: `actuator.dnsconf.${backend}`,
    condition: "DnsReady",
    appliesTo: (spec) => spec.domains.some((domain) => domain.authoritative),
    observe,
    plan,
    apply,
    commit,
  };
  if (backend === "builtin") {
    return {
      ...actuator,
      async start(context: ActuatorContext) {
        const server = await startDnsServer({ listen: context.server.dns.listen, zonesDir, logger: context.logger, challengesFile: acmeChallengesPath(stateDir) });
        servers.add(server);
        return {
          async stop() {
            servers.delete(server);
            await server.stop();
          },
        };
      },
    };
  }
  return actuator;
}
