import { readdir } from "node:fs/promises";
import { basename, join } from "node:path";
import { watch, type FSWatcher } from "chokidar";
import { CommitJournal, READY, Reconciler, SPEC_VALID, conditionOf, type Actuator } from "@coyote/actuator";
import type { CoyoteLogger } from "@coyote/log";
import { LastGood, ServerSpec, ServiceStatus, StateStore, serverOrDefaults, specPath } from "@coyote/spec";
import { AlarmBook } from "./alarms.ts";
import { watchDaemons } from "./daemon-watch.ts";
import { createDomainProofActuator, DomainProofBook, waitsOnlyForProof, withDomainProof } from "./domain-proof.ts";
import { MinionError } from "./errors.ts";
import { PluginFolder } from "./plugins.ts";
import { WorkQueue } from "./queue.ts";

/** How a minion runs. Every duration in milliseconds. */
export interface MinionOptions {
  /** The state folder. */
  readonly stateDir: string;
  /** The minion's logger. */
  readonly logger: CoyoteLogger;
  /** Makes the bundled actuators for a server spec, in reconcile order (DNS last: it publishes what the others made). */
  readonly actuators: (server: ServerSpec) => Actuator[];
  /** The plugin folder; `<stateDir>/actuators` by default. */
  readonly pluginDir?: string;
  /** How often the plugin folder is rescanned; 5 s by default. */
  readonly pluginScanMs?: number;
  /** How often every service is reconciled even if nothing changed; 10 minutes by default. */
  readonly resyncMs?: number;
  /** How often the daemons' states (`run/daemons.json`) are read; a change resyncs. 2 s by default. */
  readonly daemonPollMs?: number;
  /** How long a service may stay not Ready before an alarm is raised; 5 minutes by default. */
  readonly convergeDeadlineMs?: number;
  /** How long a changed spec waits for more changes; 50 ms by default. */
  readonly debounceMs?: number;
  /** The first and the longest retry delay; 1 s and 5 minutes by default. */
  readonly backoffInitialMs?: number;
  /** See backoffInitialMs. */
  readonly backoffMaxMs?: number;
  /** The most services reconciled in one batch (one commit per actuator per batch); 256 by default. */
  readonly batchSize?: number;
  /** The clock; tests move it. */
  readonly now?: () => Date;
  /** The port authoritative DNS servers are asked on when a domain's delegation is checked; 53 by default. */
  readonly authoritativeDnsPort?: number;
}

/**
 * The minion: makes the server match its specs, or raises an alarm. Level-based: a
 * change only names a service; the minion re-reads the spec and observes the world afresh, so
 * running it again after a crash converges without doing anything twice.
 */
export class Minion {
  readonly #options: MinionOptions;
  readonly #controller = new AbortController();
  readonly #queue: WorkQueue;
  #store: StateStore | undefined;
  #reconciler: Reconciler | undefined;
  #journal: CommitJournal;
  #plugins: PluginFolder;
  #server: ServerSpec = serverOrDefaults(undefined);
  #bundled: Actuator[] = [];
  #running = new Map<Actuator, { stop(): Promise<void> }>();
  #watcher: FSWatcher | undefined;
  #timers: NodeJS.Timeout[] = [];
  #stopDaemonWatch: () => void = () => undefined;
  #loop: Promise<void> | undefined;
  #alarms: AlarmBook | undefined;
  readonly #serverGood: LastGood<typeof ServerSpec>;
  #busy = false;
  #idleWaiters: (() => void)[] = [];
  readonly #proofs = new DomainProofBook();
  readonly #proof: Actuator;

  /** Makes a minion; nothing happens before {@link Minion.start}. */
  constructor(options: MinionOptions) {
    this.#options = options;
    this.#proof = createDomainProofActuator(this.#proofs, { authoritativePort: options.authoritativeDnsPort ?? 53 });
    this.#queue = new WorkQueue({
      debounceMs: options.debounceMs ?? 50,
      backoffInitialMs: options.backoffInitialMs ?? 1000,
      backoffMaxMs: options.backoffMaxMs ?? 300_000,
    });
    this.#journal = new CommitJournal(options.stateDir);
    this.#plugins = new PluginFolder(options.pluginDir ?? join(options.stateDir, "actuators"), options.stateDir, options.logger);
    // Kept on disk: a minion restarted while the server spec is invalid must not run on defaults.
    this.#serverGood = new LastGood({ schema: ServerSpec, label: specPath("server"), keepFile: join(options.stateDir, "minion", "last-good", "server.json") });
  }

  /**
   * Every actuator in reconcile order: the domain proof first, then the bundled ones, then the
   * plugins, each behind the gate that shows it only the domains that may be served.
   */
  get actuators(): Actuator[] {
    return withDomainProof([...this.#bundled, ...this.#plugins.actuators], this.#proofs, this.#proof);
  }

  /** The statuses the minion last wrote. */
  get statuses(): ReadonlyMap<string, ServiceStatus> {
    return this.#reconciler?.statuses ?? new Map();
  }

  /**
   * Starts: recovers owed commits, starts the actuators' daemons, watches specs/, and reconciles
   * every service once.
   */
  async start(): Promise<void> {
    const { logger, stateDir } = this.#options;
    const store = await StateStore.open(stateDir);
    this.#store = store;
    this.#reconciler = new Reconciler({ store, logger, journal: this.#journal, signal: this.#controller.signal, now: this.#options.now ?? (() => new Date()) });
    await this.#loadStatuses();
    this.#alarms = new AlarmBook(store, logger);
    await this.#alarms.load();
    this.#server = await this.#readServer();
    this.#setBundled(this.#options.actuators(this.#server));
    await this.#plugins.scan(new Set([this.#proof.id, ...this.#bundled.map((a) => a.id)]));
    await this.#startActuators();

    // A minion killed between an apply and its commit owes that commit: pay it before anything else.
    const owed = await this.#journal.load();
    if (owed.length > 0) {
      logger.info({ actuators: owed }, "committing what an earlier run applied but did not commit");
      await this.#reconciler.commit(this.actuators, this.#server);
    }

    this.#watcher = watch(store.path("specs"), {
      ignored: (path) => path.includes("/.git"),
      ignoreInitial: true,
      depth: 1,
    });
    this.#watcher.on("all", (_event, path) => this.#onSpecFile(path));
    await new Promise<void>((resolve) => this.#watcher?.once("ready", () => resolve()));

    this.#timers.push(setInterval(() => void this.resync(), this.#options.resyncMs ?? 600_000));
    // A daemon that dies or comes back changes what the conditions of mail, XMPP and DNS say.
    this.#stopDaemonWatch = watchDaemons(stateDir, logger, () => void this.resync(), this.#options.daemonPollMs);
    this.#timers.push(setInterval(() => void this.#rescanPlugins(), this.#options.pluginScanMs ?? 5000));
    const deadline = this.#options.convergeDeadlineMs ?? 300_000;
    this.#timers.push(setInterval(() => void this.#sweepAlarms(), Math.max(100, Math.min(30_000, deadline / 4))));
    for (const timer of this.#timers) timer.unref();

    this.#loop = this.#work();
    await this.resync();
    logger.event("COMPONENT_STARTED", { component: "minion", actuators: this.actuators.map((a) => a.id) }, "minion started");
  }

  /** Stops watching, lets the current batch finish, and stops the actuators' daemons. */
  async stop(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
    this.#stopDaemonWatch();
    await this.#watcher?.close();
    this.#queue.close();
    this.#controller.abort();
    await this.#loop;
    await this.#stopActuators();
    this.#options.logger.event("SERVICE_DOWN", { component: "minion", reason: "stopped" }, "minion stopped");
  }

  /**
   * Queues every service (those with spec files and those with a status left: deleted while
   * down) and the server spec.
   */
  async resync(): Promise<void> {
    const store = this.#store;
    if (!store) return;
    // File names are enough: the reconcile reads (and validates) each spec itself, so reading them
    // here too would double a resync's I/O. A bad spec file is still queued, to report it.
    const idsIn = async (folder: string) =>
      (await readdir(store.path(folder)).catch(() => [] as string[])).filter((f) => /^[a-z0-9-]+\.json$/.test(f) && f !== "server.json").map((f) => basename(f, ".json"));
    for (const id of new Set([...(await idsIn("specs/services")), ...(await idsIn("status"))])) this.#queue.add(id);
    // The server spec is read again too: a file watcher can miss an edit (one made in place right
    // after the file was replaced, say), and a resync is where a level-based loop catches up.
    this.#queue.add(SERVER_KEY);
  }

  /** Resolves once no service is queued, waiting, or being reconciled (tests and benchmarks). */
  async idle(): Promise<void> {
    while (!this.#queue.idle || this.#busy) {
      await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    }
  }

  async #work(): Promise<void> {
    const batchSize = this.#options.batchSize ?? 256;
    for (;;) {
      const first = await this.#queue.next();
      if (first === undefined) return;
      this.#busy = true;
      const batch = [first, ...this.#queue.drainReady(batchSize - 1)];
      const services = batch.filter((key) => key !== SERVER_KEY);
      try {
        // The server spec is reloaded between batches, never during one: a batch runs on one
        // set of actuators. It has a queue key of its own so that a change to it is picked up
        // even when no service is queued (a box with no services yet).
        if (services.length < batch.length) {
          if (await this.#reloadServer()) await this.resync();
          this.#queue.finish(SERVER_KEY, { kind: "done" });
        }
        const reconciler = this.#reconciler;
        if (!reconciler) return;
        if (services.length > 0) {
          const outcomes = await reconciler.reconcileBatch(services, this.actuators, this.#server);
          for (const id of services) this.#queue.finish(id, outcomes.get(id) ?? { kind: "retry" });
        }
        await this.#sweepAlarms();
      } catch (error) {
        this.#options.logger.event("ERROR", { err: error, services: batch }, "a reconcile batch failed");
        for (const id of batch) this.#queue.finish(id, { kind: "retry" });
      } finally {
        this.#busy = false;
        if (this.#queue.idle) {
          const waiters = this.#idleWaiters;
          this.#idleWaiters = [];
          for (const resolve of waiters) resolve();
        }
      }
    }
  }

  #onSpecFile(path: string): void {
    const name = basename(path);
    if (path.endsWith(`/specs/${name}`) && name === "server.json") {
      // The server spec shapes the actuators (DNS backend, addresses): rebuild them, then resync.
      this.#queue.add(SERVER_KEY);
      return;
    }
    const match = /^([a-z0-9-]+)\.json$/.exec(name);
    if (match?.[1] && path.includes("/specs/services/")) this.#queue.add(match[1]);
  }

  /** Reads the server spec again; when it changed, rebuilds the actuators and resolves to true. */
  async #reloadServer(): Promise<boolean> {
    const next = await this.#readServer();
    if (JSON.stringify(next) === JSON.stringify(this.#server)) return false;
    this.#server = next;
    await this.#stopActuators();
    this.#setBundled(this.#options.actuators(next));
    await this.#startActuators();
    this.#options.logger.event("CONFIG_RELOADED", { what: "server spec", actuators: this.actuators.map((a) => a.id) });
    return true;
  }

  /**
   * The server spec to run on: the file when it is valid, else the last good one applied (kept
   * across restarts), with an alarm naming the file and the field until the file is valid again.
   * Defaults only when no valid server spec was ever applied (a first run).
   */
  async #readServer(): Promise<ServerSpec> {
    const store = this.#store;
    if (!store) return this.#server;
    const state = await this.#serverGood.refresh(() => store.readJson(specPath("server"), ServerSpec));
    const now = this.#now();
    const fields = { code: "SPEC_INVALID", severity: "critical" } as const;
    if (state.problem === undefined) {
      await this.#alarms?.clear(SERVER_ALARM, fields, `${specPath("server")} is valid again`, now);
    } else {
      const onWhat = state.value === undefined ? "the box runs on the defaults" : "the box runs on the last good server spec; nothing is changed until the file is valid again";
      this.#options.logger.event("ERROR", { file: specPath("server") }, `${state.problem}: ${onWhat}`);
      await this.#alarms?.raise(SERVER_ALARM, { ...fields, message: `${state.problem}: ${onWhat}` }, now);
    }
    return serverOrDefaults(state.value);
  }

  #now(): Date {
    return (this.#options.now ?? (() => new Date()))();
  }

  #setBundled(actuators: Actuator[]): void {
    const ids = new Set<string>();
    for (const actuator of actuators) {
      if (ids.has(actuator.id)) throw new MinionError("MINION_ERR_ACTUATOR_ID_TAKEN", `minion: two bundled actuators have the id ${actuator.id}`);
      ids.add(actuator.id);
    }
    this.#bundled = actuators;
  }

  async #startActuators(): Promise<void> {
    const store = this.#store;
    if (!store) return;
    for (const actuator of this.actuators) {
      if (!actuator.start || this.#running.has(actuator)) continue;
      try {
        const handle = await actuator.start({ stateDir: store.root, store, logger: this.#options.logger.child({ actuator: actuator.id }), signal: this.#controller.signal, server: this.#server });
        this.#running.set(actuator, handle);
      } catch (error) {
        this.#options.logger.event("ERROR", { actuator: actuator.id, err: error }, `starting ${actuator.id} failed`);
      }
    }
  }

  async #stopActuators(): Promise<void> {
    for (const [actuator, handle] of this.#running) {
      await handle.stop().catch((error: unknown) => this.#options.logger.event("ERROR", { actuator: actuator.id, err: error }, `stopping ${actuator.id} failed`));
    }
    this.#running.clear();
  }

  async #rescanPlugins(): Promise<void> {
    if (await this.#plugins.scan(new Set([this.#proof.id, ...this.#bundled.map((a) => a.id)]))) {
      await this.#startActuators();
      this.#options.logger.event("CONFIG_RELOADED", { what: "plugins", actuators: this.actuators.map((a) => a.id) });
      await this.resync();
    }
  }

  async #loadStatuses(): Promise<void> {
    const store = this.#store;
    const reconciler = this.#reconciler;
    if (!store || !reconciler) return;
    for (const file of await readdir(store.path("status")).catch(() => [] as string[])) {
      if (!/^[a-z0-9-]+\.json$/.test(file)) continue;
      const status = await store.readJson(`status/${file}`, ServiceStatus).catch(() => undefined);
      if (status) reconciler.statuses.set(status.id, status);
    }
  }

  /**
   * Raises an alarm for each service not Ready past the deadline and for each invalid service
   * spec (whose service stays as last applied), and clears those that recovered.
   */
  async #sweepAlarms(): Promise<void> {
    const alarms = this.#alarms;
    if (!alarms) return;
    const deadline = this.#options.convergeDeadlineMs ?? 300_000;
    const now = this.#now();
    const converge = { code: "CONVERGE_DEADLINE", severity: "critical" } as const;
    const live = new Set<string>();
    for (const [id, status] of this.statuses) {
      live.add(id);
      const key = `${CONVERGE_ALARM}${id}`;
      const ready = conditionOf(status.conditions, READY);
      // A customer who has not yet published their domain's proof is no fault of the box: no alarm.
      const late = ready?.status !== "True" && ready !== undefined && !waitsOnlyForProof(status.conditions) && now.getTime() - Date.parse(ready.lastTransitionTime) >= deadline;
      if (late && !alarms.isOpen(key)) {
        await alarms.raise(key, { ...converge, serviceId: id, message: `${id} has not converged for ${Math.round(deadline / 1000)} s: ${ready.reason}: ${ready.message}` }, now);
      } else if (ready?.status === "True") {
        await alarms.clear(key, { ...converge, serviceId: id }, `${id} converged`, now);
      }
      const valid = conditionOf(status.conditions, SPEC_VALID);
      const spec = { code: "SPEC_INVALID", severity: "critical", serviceId: id } as const;
      if (valid?.status === "False") await alarms.raise(`${SPEC_ALARM}${id}`, { ...spec, message: valid.message }, now);
      else if (valid?.status === "True") await alarms.clear(`${SPEC_ALARM}${id}`, spec, `specs/services/${id}.json is valid again`, now);
    }
    // A deleted service's alarms have nothing left to wait for.
    for (const prefix of [CONVERGE_ALARM, SPEC_ALARM]) {
      for (const key of alarms.openKeys(prefix)) {
        const id = key.slice(prefix.length);
        if (live.has(id)) continue;
        await alarms.clear(key, { code: prefix === SPEC_ALARM ? "SPEC_INVALID" : "CONVERGE_DEADLINE", severity: "critical", serviceId: id }, "the service was removed", now);
      }
    }
  }
}

/** The work queue's key for the server spec: service ids have no dot, so none can clash with it. */
const SERVER_KEY = "server.json";

/** The alarm keys the minion raises: per service, and one for the server spec. */
const CONVERGE_ALARM = "minion/converge/";
const SPEC_ALARM = "minion/spec/";
const SERVER_ALARM = "minion/server-spec";
