/**
 * The "last good" rule (docs/ARCHITECTURE.md, "On disk"): a daemon keeps the last valid version of every
 * file it reads and keeps running on it when a newer one is invalid or missing, and says why. Only
 * when there never was a valid version does the caller fall back to its defaults (a first run).
 */
import { mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { z } from "zod";
import { writeFileAtomic } from "./atomic.ts";
import { parseJson } from "./validate.ts";

/** How a {@link LastGood} is kept. */
export interface LastGoodOptions<S extends z.ZodType> {
  /** The schema the file and its kept copy are validated with. */
  readonly schema: S;
  /** The file as people know it (`specs/server.json`), for messages. */
  readonly label: string;
  /**
   * Where the last good version is kept (absolute path), so that a restarted daemon runs on it
   * rather than on defaults. Without it the version is kept in memory only.
   */
  readonly keepFile?: string;
}

/** What a refresh decided. */
export interface LastGoodState<T> {
  /**
   * What to run on: the newest version when it is valid, else the last good one; undefined only
   * when there never was a valid version (the caller's defaults apply).
   */
  readonly value: T | undefined;
  /**
   * Why the newest version was not taken, naming the file and the field; undefined when it was
   * taken, or when there is no file and never was a valid one.
   */
  readonly problem: string | undefined;
  /** Whether `value` differs from what the previous refresh returned. */
  readonly changed: boolean;
}

/**
 * The last valid version of one file a daemon reads. Each {@link LastGood.refresh} reads the file
 * afresh through the caller's reader: a valid document becomes the last good one (and is written
 * to the keep file atomically); an invalid or missing one leaves the last good one in place.
 */
export class LastGood<S extends z.ZodType> {
  readonly #options: LastGoodOptions<S>;
  #value: z.output<S> | undefined;
  #text: string | undefined;
  #loaded = false;

  /** Makes the holder; nothing is read before the first refresh. */
  constructor(options: LastGoodOptions<S>) {
    this.#options = options;
  }

  /** The last good version, or undefined when there has been none. */
  get value(): z.output<S> | undefined {
    return this.#value;
  }

  /**
   * Reads the file again and decides what to run on.
   * @param read reads and validates the file: resolves undefined when it does not exist, throws
   *   (a ContractError naming file and field) when it is invalid.
   */
  async refresh(read: () => Promise<z.output<S> | undefined>): Promise<LastGoodState<z.output<S>>> {
    const loadProblem = await this.#load();
    const before = this.#text;
    let fresh: z.output<S> | undefined;
    try {
      fresh = await read();
    } catch (error) {
      return this.#keep(before, error instanceof Error ? error.message : String(error), loadProblem);
    }
    if (fresh === undefined) {
      // A file that vanished is no reason to forget what the box runs on.
      return this.#value === undefined
        ? { value: undefined, problem: loadProblem, changed: false }
        : this.#keep(before, `${this.#options.label}: the file is missing`, loadProblem);
    }
    const text = JSON.stringify(fresh);
    if (text !== before) {
      const keepFile = this.#options.keepFile;
      if (keepFile !== undefined) {
        await mkdir(dirname(keepFile), { recursive: true });
        await writeFileAtomic(keepFile, `${JSON.stringify(fresh, null, 2)}\n`, { mode: 0o600 });
      }
      this.#value = fresh;
      this.#text = text;
    }
    return { value: this.#value, problem: undefined, changed: text !== before };
  }

  #keep(before: string | undefined, problem: string, loadProblem: string | undefined): LastGoodState<z.output<S>> {
    const kept = this.#value === undefined ? "no valid version was ever applied" : "keeping the last good version";
    const extra = loadProblem === undefined ? "" : ` (${loadProblem})`;
    return { value: this.#value, problem: `${problem}; ${kept}${extra}`, changed: this.#text !== before };
  }

  /** Reads the keep file once; a bad keep file is reported, never trusted. */
  async #load(): Promise<string | undefined> {
    if (this.#loaded) return undefined;
    this.#loaded = true;
    const keepFile = this.#options.keepFile;
    if (keepFile === undefined) return undefined;
    let text: string;
    try {
      text = await readFile(keepFile, "utf8");
    } catch {
      return undefined;
    }
    try {
      const value = parseJson(this.#options.schema, text, keepFile);
      this.#value = value;
      this.#text = JSON.stringify(value);
      return undefined;
    } catch (error) {
      return `the kept copy is unusable: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
}
