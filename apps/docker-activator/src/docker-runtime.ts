import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import Docker from "dockerode";
import type { CoyoteLogger } from "@coyote/log";
import { ActivatorUnits, readJsonText, validate } from "@coyote/spec";
import { BRIDGE_LISTEN_HOST, checkConfinement, CONFINEMENT_LABEL, confinedContainer, confinementStamp, DEFAULT_CONFINEMENT, ensureUnitsNetwork, holderContainer } from "./confinement.ts";
import type { ContainerConfinement } from "./confinement.ts";
import { bounded, engineMessage, pingEngine, runDumpExec, statusCode } from "./engine.ts";
export { pingEngine } from "./engine.ts";
import { DEFAULT_HOLDER_BINARY, ensureHolderImage, HOLDER_COMMAND, HOLDER_IMAGE, HOLDER_LABEL } from "./holder.ts";
import { errorText, unitEnvironment } from "./runtime.ts";
import type { DumpHook, ObservedUnit, Runtime, Unit } from "./runtime.ts";
import { withoutSecretValues } from "./unit-secrets.ts";

/** The labels every container of the activator carries. */
export const LABELS = {
  /** The service the unit belongs to. */
  service: "coyote.service",
  /** The unit id. */
  unit: "coyote.unit",
  /** The unit's {@link unitHash}: a changed unit gets a new container. */
  hash: "coyote.hash",
  /** Which state folder's activator owns it, so that two Coyote instances on one engine keep apart. */
  scope: "coyote.scope",
  /** The unit as JSON, so that a unit removed while the activator was down can still be dumped. */
  config: "coyote.unit-config",
} as const;

/** Options of {@link DockerRuntime.connect}. */
export interface DockerRuntimeOptions {
  /** The engine's unix socket, e.g. `/var/run/docker.sock`. */
  readonly socketPath: string;
  /** The state folder, whose path scopes the containers (label `coyote.scope`). */
  readonly stateDir: string;
  /** The activator's logger. */
  readonly logger: CoyoteLogger;
  /** How long one engine call may take (default 30 s). */
  readonly callTimeoutMs?: number;
  /** How containers are confined; each field defaults to {@link DEFAULT_CONFINEMENT}'s. */
  readonly confinement?: Partial<ContainerConfinement>;
  /** The static busybox the network holders' image is imported from (default `/usr/bin/busybox`). */
  readonly holderBinary?: string;
}

/**
 * The `docker` runtime: one container per unit, made stopped when the unit appears, confined
 * ({@link ContainerConfinement}: its own network with only its port published, no capabilities,
 * a non-root user, limits), and `--init` so that the app gets signals and its children are
 * reaped. On the units' bridge, each unit also has a network holder ({@link holderContainer}):
 * made with the unit, kept running while the unit sleeps and removed with it; the unit's
 * container joins the holder's network namespace, so that a wake costs no namespace, veth or port
 * proxy. Containers are found again by their labels after an activator restart.
 */
export class DockerRuntime implements Runtime {
  /** This is the docker runtime. */
  readonly kind = "docker" as const;
  readonly #docker: Docker;
  readonly #scope: string;
  readonly #logger: CoyoteLogger;
  readonly #timeoutMs: number;
  readonly #socketPath: string;
  readonly #confinement: ContainerConfinement;
  /** The units' bridge network. */
  readonly networkName: string;
  readonly #stamp: string;
  readonly #holderBinary: string;
  #network: Promise<void> | undefined;
  #holderImage: Promise<void> | undefined;

  private constructor(options: DockerRuntimeOptions, confinement: ContainerConfinement) {
    this.#socketPath = options.socketPath;
    this.#docker = new Docker({ socketPath: options.socketPath });
    this.#scope = createHash("sha256").update(options.stateDir).digest("hex").slice(0, 12);
    this.#logger = options.logger;
    this.#timeoutMs = options.callTimeoutMs ?? 30_000;
    this.#confinement = confinement;
    this.networkName = confinement.networkName ?? `coyote-units-${this.#scope}`;
    this.#stamp = confinementStamp(confinement, this.networkName);
    this.#holderBinary = options.holderBinary ?? DEFAULT_HOLDER_BINARY;
  }

  /**
   * Connects to an engine and checks that it answers.
   * @throws DockerActivatorError ENGINE_UNAVAILABLE naming the socket; Error for an invalid confinement.
   */
  static async connect(options: DockerRuntimeOptions): Promise<DockerRuntime> {
    const confinement = checkConfinement({ ...DEFAULT_CONFINEMENT, ...options.confinement });
    await pingEngine(options.socketPath);
    if (confinement.network === "host") {
      options.logger.warn({ socket: options.socketPath }, "containers share the host's network (confinement network \"host\"): a unit can reach every loopback service and take other units' ports");
    }
    return new DockerRuntime(options, confinement);
  }

  /** Makes the units' network once; a failure is tried again at the next ensure. */
  #ensureNetwork(): Promise<void> {
    if (this.#confinement.network !== "bridge") return Promise.resolve();
    this.#network ??= this.#call(ensureUnitsNetwork(this.#docker, this.networkName, { [LABELS.scope]: this.#scope }), `making docker network ${this.networkName}`).catch((error: unknown) => {
      this.#network = undefined;
      throw error;
    });
    return this.#network;
  }

  /** Imports the holders' image once when the engine lacks it; a failure is tried again at the next ensure. */
  #ensureHolderImage(): Promise<void> {
    this.#holderImage ??= this.#call(ensureHolderImage(this.#docker, this.#holderBinary), `importing ${HOLDER_IMAGE}`).catch((error: unknown) => {
      this.#holderImage = undefined;
      throw error;
    });
    return this.#holderImage;
  }

  /** The name of a unit's network holder; `-net` ends no {@link containerName}, whose scope is hex. */
  holderName(unitId: string): string {
    return `${this.containerName(unitId)}-net`;
  }

  /**
   * Makes the unit's network holder when it is missing or was made from another configuration,
   * and starts it when it does not run.
   * @returns the holder's container id.
   */
  async #holder(unit: Unit, hash: string): Promise<string> {
    const name = this.holderName(unit.id);
    const holder = this.#docker.getContainer(name);
    // Twice at most: a concurrent ensure of the same unit may make it between our look and our create.
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const info = await this.#call(holder.inspect(), `inspecting the network holder of unit ${unit.id}`);
        if (info.Config.Labels[LABELS.hash] === hash && info.Config.Labels[CONFINEMENT_LABEL] === this.#stamp) {
          if (!info.State.Running) await this.#startHolder(unit.id, info.Id);
          return info.Id;
        }
        await this.#call(holder.remove({ force: true }), `removing the old network holder of unit ${unit.id}`);
      } catch (error) {
        if (statusCode(error) !== 404) throw error;
      }
      let id: string;
      try {
        const made = await this.#call(
          this.#docker.createContainer({
            name,
            Image: HOLDER_IMAGE,
            Cmd: [...HOLDER_COMMAND],
            // Not the unit's label: whoever lists a unit's containers by it finds the app alone.
            Labels: { [LABELS.service]: unit.serviceId, [HOLDER_LABEL]: unit.id, [LABELS.hash]: hash, [LABELS.scope]: this.#scope, [CONFINEMENT_LABEL]: this.#stamp },
            ...holderContainer(unit, this.#confinement, this.networkName),
          }),
          `creating the network holder of unit ${unit.id}`,
        );
        id = made.id;
      } catch (error) {
        if (statusCode(error) === 409) continue;
        throw new Error(`creating the network holder: ${engineMessage(error)}`, { cause: error });
      }
      await this.#startHolder(unit.id, id);
      this.#logger.info({ unit: unit.id, container: name }, `made the network holder of unit ${unit.id}`);
      return id;
    }
    throw new Error(`the network holder ${name} of unit ${unit.id} keeps being made anew by someone else`);
  }

  async #startHolder(unitId: string, id: string): Promise<void> {
    try {
      await this.#call(this.#docker.getContainer(id).start(), `starting the network holder of unit ${unitId}`);
    } catch (error) {
      if (statusCode(error) !== 304) throw new Error(`starting the network holder (which publishes the unit's port): ${engineMessage(error)}`, { cause: error });
    }
  }

  /**
   * Where the activator probes a unit: in a bridged container, its own address on the units'
   * network. The published loopback port is answered by the engine's proxy as soon as the
   * container runs, ready or not, so probing it would call every unit ready at once.
   */
  async probeHost(unit: Unit): Promise<string | undefined> {
    if (this.#confinement.network !== "bridge") return undefined;
    // The unit shares its holder's namespace: the holder's address is the unit's.
    const info = await this.#call(this.#docker.getContainer(this.holderName(unit.id)).inspect(), `inspecting the network holder of unit ${unit.id}`);
    const address = info.NetworkSettings.Networks[this.networkName]?.IPAddress;
    return address === undefined || address === "" ? undefined : address;
  }

  /** The container name of a unit: unique per state folder on a shared engine. */
  containerName(unitId: string): string {
    return `coyote-${unitId}-${this.#scope.slice(0, 8)}`;
  }

  #call<T>(promise: Promise<T>, what: string): Promise<T> {
    return bounded(promise, this.#timeoutMs, what).catch((error: unknown) => {
      throw this.#engineDown(error) ?? error;
    });
  }

  /** An error that says the engine is gone, naming its socket, for a failed connection; else undefined. */
  #engineDown(error: unknown): Error | undefined {
    const code = (error as NodeJS.ErrnoException | null)?.code;
    if (code === "ENOENT" || code === "ECONNREFUSED" || code === "ECONNRESET" || code === "EPIPE") {
      return new Error(`the Docker engine on ${this.#socketPath} does not answer (${code})`, { cause: error });
    }
    return undefined;
  }

  async observe(): Promise<Map<string, ObservedUnit>> {
    const list = await this.#call(this.#docker.listContainers({ all: true, filters: { label: [`${LABELS.scope}=${this.#scope}`] } }), "listing containers");
    const out = new Map<string, ObservedUnit>();
    const stoppedHolders = new Map<string, string>();
    for (const info of list) {
      const holderOf = info.Labels[HOLDER_LABEL];
      if (holderOf !== undefined && info.State !== "running") stoppedHolders.set(holderOf, info.Id);
      const id = info.Labels[LABELS.unit];
      if (id === undefined) continue;
      let unit: Unit | undefined;
      try {
        const config = info.Labels[LABELS.config];
        if (config !== undefined) unit = validate(ActivatorUnits, { schemaVersion: 1, generatedAt: new Date(0).toISOString(), units: [readJsonText(config, "label")] }, `container ${info.Id.slice(0, 12)} label ${LABELS.config}`).units[0];
      } catch (error) {
        this.#logger.warn({ unit: id, err: error }, `container of unit ${id} has an unreadable unit label`);
      }
      // A container confined otherwise (an older activator's, or a changed setting) is made anew.
      const hash = info.Labels[CONFINEMENT_LABEL] === this.#stamp ? info.Labels[LABELS.hash] : undefined;
      out.set(id, { running: info.State === "running", hash, ...(unit === undefined ? {} : { unit }) });
    }
    // A holder keeps the unit's port published while the unit sleeps: one found stopped (by hand,
    // or by an engine restart) runs again. Removing a unit removes its holder.
    for (const [unitId, holderId] of stoppedHolders) {
      if (!out.has(unitId)) continue;
      await this.#startHolder(unitId, holderId).then(
        () => this.#logger.warn({ unit: unitId, container: this.holderName(unitId) }, `the network holder of unit ${unitId} was stopped; started it again`),
        (error: unknown) => this.#logger.warn({ unit: unitId, err: error }, `the network holder of unit ${unitId} is stopped and did not start: ${errorText(error)}`),
      );
    }
    return out;
  }

  async ensure(unit: Unit, hash: string): Promise<void> {
    let holderId: string | undefined;
    if (this.#confinement.network === "bridge") {
      await this.#ensureNetwork();
      await this.#ensureHolderImage();
      holderId = await this.#holder(unit, hash);
    }
    const container = this.#docker.getContainer(this.containerName(unit.id));
    try {
      const info = await this.#call(container.inspect(), `inspecting the container of unit ${unit.id}`);
      const joined = holderId === undefined || info.HostConfig.NetworkMode === `container:${holderId}`;
      if (info.Config.Labels[LABELS.hash] === hash && info.Config.Labels[CONFINEMENT_LABEL] === this.#stamp && joined) return;
      // The activator dumped and stopped it before asking for the new one; this is the removal.
      await this.#call(container.remove({ force: true }), `removing the old container of unit ${unit.id}`);
    } catch (error) {
      if (statusCode(error) !== 404) throw error;
    }
    // In its own network the app listens on its namespace's addresses; the engine publishes them.
    const listen = this.#confinement.network === "bridge" ? { HOST: BRIDGE_LISTEN_HOST } : {};
    const env = Object.entries({ ...unitEnvironment(unit), ...listen }).map(([k, v]) => `${k}=${v}`);
    try {
      await this.#call(
        this.#docker.createContainer({
          name: this.containerName(unit.id),
          Image: unit.image,
          ...(unit.command === undefined ? {} : { Cmd: unit.command }),
          ...(unit.cwd === undefined ? {} : { WorkingDir: unit.cwd }),
          Env: env,
          Labels: {
            [LABELS.service]: unit.serviceId,
            [LABELS.unit]: unit.id,
            [LABELS.hash]: hash,
            [LABELS.scope]: this.#scope,
            // Labels are readable by anyone who may list containers: no environment values.
            [LABELS.config]: JSON.stringify(withoutSecretValues(unit)),
            [CONFINEMENT_LABEL]: this.#stamp,
          },
          ...confinedContainer(unit, this.#confinement, holderId),
        }),
        `creating the container of unit ${unit.id}`,
      );
    } catch (error) {
      if (statusCode(error) === 404) throw new Error(`image ${unit.image ?? ""} is not on the Docker engine (${engineMessage(error)}); load or pull it first`, { cause: error });
      if (statusCode(error) === 409) return; // made meanwhile by a concurrent ensure of the same unit
      throw new Error(`creating the container: ${engineMessage(error)}`, { cause: error });
    }
    this.#logger.info({ unit: unit.id, container: this.containerName(unit.id), image: unit.image }, `created the container of unit ${unit.id} (stopped)`);
  }

  async start(unit: Unit, hash: string): Promise<void> {
    await this.ensure(unit, hash);
    try {
      await this.#call(this.#docker.getContainer(this.containerName(unit.id)).start(), `starting unit ${unit.id}`);
    } catch (error) {
      // 304: already running, which is what we want.
      if (statusCode(error) !== 304) throw new Error(`starting the container: ${engineMessage(error)}`, { cause: error });
    }
  }

  async status(unitId: string): Promise<{ running: boolean; exit?: string }> {
    try {
      const info = await this.#call(this.#docker.getContainer(this.containerName(unitId)).inspect(), `inspecting unit ${unitId}`);
      if (info.State.Running) return { running: true };
      return { running: false, exit: `exited with code ${info.State.ExitCode}${info.State.OOMKilled ? " (killed for going over its memory limit)" : ""}${info.State.Error ? `: ${info.State.Error}` : ""}` };
    } catch (error) {
      if (statusCode(error) === 404) return { running: false, exit: "its container is gone" };
      throw error;
    }
  }

  async stop(unitId: string, graceMs: number): Promise<void> {
    try {
      await bounded(this.#docker.getContainer(this.containerName(unitId)).stop({ t: Math.max(1, Math.ceil(graceMs / 1000)) }), graceMs + this.#timeoutMs, `stopping unit ${unitId}`);
    } catch (error) {
      const down = this.#engineDown(error);
      if (down !== undefined) throw down;
      const code = statusCode(error);
      if (code !== 304 && code !== 404) throw new Error(`stopping the container: ${engineMessage(error)}`, { cause: error });
    }
  }

  async remove(unitId: string): Promise<void> {
    // The app first: a holder is not removed from under a container that uses its namespace.
    for (const [name, what] of [[this.containerName(unitId), "container"], [this.holderName(unitId), "network holder"]] as const) {
      try {
        await this.#call(this.#docker.getContainer(name).remove({ force: true }), `removing the ${what} of unit ${unitId}`);
      } catch (error) {
        if (statusCode(error) !== 404) throw new Error(`removing the ${what}: ${engineMessage(error)}`, { cause: error });
      }
    }
  }

  async dump(unit: Unit, hook: DumpHook, timeoutMs: number): Promise<void> {
    const container = this.#docker.getContainer(this.containerName(unit.id));
    const until = performance.now() + timeoutMs;
    if (hook.kind === "signal") {
      await this.#call(container.kill({ signal: hook.signal }), `signalling unit ${unit.id}`);
      if (hook.signal === "SIGTERM") {
        // SIGTERM asks the app to save and exit: the dump is done when the container has stopped.
        while ((await this.status(unit.id)).running) {
          if (performance.now() >= until) throw new Error(`it did not exit within ${timeoutMs} ms of SIGTERM`);
          await sleep(50);
        }
        return;
      }
      // Another signal has no completion to wait for; an app that does not handle it dies of it.
      await sleep(Math.min(1000, timeoutMs));
      const status = await this.status(unit.id);
      if (!status.running) throw new Error(`it died of ${hook.signal} instead of dumping its state (${status.exit ?? "exited"})`);
      return;
    }
    await runDumpExec(this.#docker, container, hook.command, { until, timeoutMs, unitId: unit.id, call: (promise, what) => this.#call(promise, what) });
  }

  async memory(unitIds: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    await Promise.all(
      unitIds.map(async (id) => {
        try {
          const container = this.#docker.getContainer(this.containerName(id));
          // one-shot: no waiting for a second sample (that is for CPU, which we do not read).
          const stats = (await this.#call(container.stats({ stream: false, "one-shot": true } as { stream: false }), `reading the stats of unit ${id}`)) as {
            memory_stats?: { usage?: number; stats?: Record<string, number> };
          };
          const usage = stats.memory_stats?.usage;
          if (usage === undefined) return;
          const s = stats.memory_stats?.stats ?? {};
          // As `docker stats` shows it: the page cache the kernel can drop is not the app's.
          const cache = s.total_inactive_file ?? s.inactive_file ?? s.cache ?? 0;
          out.set(id, Math.max(0, usage - cache));
        } catch (error) {
          this.#logger.debug({ unit: id, err: error }, `could not read the memory of unit ${id}`);
        }
      }),
    );
    return out;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
