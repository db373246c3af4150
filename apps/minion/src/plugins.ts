import { readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { isActuator, type Actuator, type ActuatorFactory } from "@coyote/actuator";
import type { CoyoteLogger } from "@coyote/log";
import { MinionError } from "./errors.ts";

interface Loaded {
  readonly version: string;
  readonly actuator: Actuator | undefined;
}

/**
 * The plugin folder (rescanned periodically, without a restart): each
 * sub-folder is a package whose entry module exports `createActuator`. A rescan loads new and
 * changed plugins and drops removed ones, without restarting the minion. A broken plugin is
 * logged and skipped; it never stops the bundled actuators.
 */
export class PluginFolder {
  readonly #dir: string;
  readonly #stateDir: string;
  readonly #logger: CoyoteLogger;
  readonly #loaded = new Map<string, Loaded>();

  /**
   * Makes the scanner; nothing is read before {@link PluginFolder.scan}.
   * @param dir the plugin folder (`<stateDir>/actuators` by default).
   * @param stateDir handed to each plugin's factory.
   * @param logger for broken plugins.
   */
  constructor(dir: string, stateDir: string, logger: CoyoteLogger) {
    this.#dir = dir;
    this.#stateDir = stateDir;
    this.#logger = logger;
  }

  /** The actuators of the loaded plugins, by folder name. */
  get actuators(): Actuator[] {
    return [...this.#loaded.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .flatMap(([, loaded]) => (loaded.actuator ? [loaded.actuator] : []));
  }

  /**
   * Rescans the folder.
   * @param reservedIds ids a plugin may not take (the bundled actuators').
   * @returns whether the set of plugin actuators changed.
   */
  async scan(reservedIds: ReadonlySet<string>): Promise<boolean> {
    const names = await readdir(this.#dir, { withFileTypes: true }).then(
      (entries) => entries.filter((e) => e.isDirectory() && !e.name.startsWith(".")).map((e) => e.name),
      () => [] as string[],
    );
    let changed = false;
    for (const name of [...this.#loaded.keys()]) {
      if (!names.includes(name)) {
        this.#loaded.delete(name);
        this.#logger.info({ plugin: name }, `plugin ${name} removed`);
        changed = true;
      }
    }
    for (const name of names) {
      const entry = await this.#entryOf(name);
      if (!entry) continue;
      const version = `${entry.file}:${entry.mtimeMs}`;
      if (this.#loaded.get(name)?.version === version) continue;
      const actuator = await this.#load(name, entry.file, entry.mtimeMs, reservedIds);
      this.#loaded.set(name, { version, actuator });
      changed = true;
    }
    return changed;
  }

  async #entryOf(name: string): Promise<{ file: string; mtimeMs: number } | undefined> {
    const folder = join(this.#dir, name);
    let main = "index.js";
    try {
      const manifest = JSON.parse(await readFile(join(folder, "package.json"), "utf8")) as { main?: unknown; exports?: unknown };
      if (typeof manifest.exports === "string") main = manifest.exports;
      else if (typeof manifest.main === "string") main = manifest.main;
    } catch {
      // No package.json: the entry is index.js or index.ts.
    }
    for (const candidate of [main, "index.ts"]) {
      try {
        const info = await stat(join(folder, candidate));
        // A package.json change (a new entry) counts as a new version too.
        const manifestTime = await stat(join(folder, "package.json")).then((s) => s.mtimeMs, () => 0);
        return { file: join(folder, candidate), mtimeMs: Math.max(info.mtimeMs, manifestTime) };
      } catch {
        // try the next candidate
      }
    }
    this.#logger.warn({ plugin: name }, `plugin ${name} has no entry module (${main} or index.ts): skipped`);
    return undefined;
  }

  async #load(name: string, file: string, mtimeMs: number, reservedIds: ReadonlySet<string>): Promise<Actuator | undefined> {
    try {
      // The query makes a changed file a new module: ESM caches modules by URL for the process's life.
      const module = (await import(`${pathToFileURL(file).href}?v=${mtimeMs}`)) as { createActuator?: unknown };
      if (typeof module.createActuator !== "function") throw new MinionError("MINION_ERR_PLUGIN_INVALID", "it exports no createActuator function");
      const actuator: unknown = (module.createActuator as ActuatorFactory)({ stateDir: this.#stateDir });
      if (!isActuator(actuator)) throw new MinionError("MINION_ERR_PLUGIN_INVALID", "createActuator returned no actuator (id actuator.<name>, condition, observe, plan, apply)");
      const taken = reservedIds.has(actuator.id) || this.actuators.some((a) => a.id === actuator.id && this.#loaded.get(name)?.actuator !== a);
      if (taken) throw new MinionError("MINION_ERR_ACTUATOR_ID_TAKEN", `its id ${actuator.id} is already taken`);
      this.#logger.info({ plugin: name, actuator: actuator.id }, `plugin ${name} loaded: ${actuator.id}`);
      return actuator;
    } catch (error) {
      this.#logger.event("ERROR", { plugin: name, err: error }, `plugin ${name} could not be loaded: ${error instanceof Error ? error.message : String(error)}`);
      return undefined;
    }
  }
}
