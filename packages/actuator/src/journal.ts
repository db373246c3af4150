import { mkdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { writeFileAtomic } from "@coyote/spec";

/** Where the loop records, before an apply, that an actuator will owe a commit. */
export interface Journal {
  /** Records, durably, that an actuator will owe a commit. */
  owe(actuatorId: string): Promise<void>;
  /** Records that an actuator's commit went through. */
  paid(actuatorId: string): Promise<void>;
  /** The actuators that owe a commit. */
  readonly pending: readonly string[];
}

/**
 * The actuators that applied changes not yet committed (daemon not reloaded), kept on disk so that
 * a minion killed between an apply and its commit commits at its next start: on restart every
 * file already matches the spec, so `observe` alone would never notice the reload that is owed.
 */
export class CommitJournal implements Journal {
  readonly #path: string;
  #pending = new Set<string>();

  /** Makes a journal kept in `<stateDir>/minion/pending-commits.json`. */
  constructor(stateDir: string) {
    this.#path = join(stateDir, "minion", "pending-commits.json");
  }

  /** Reads the journal left by an earlier run; a missing or unreadable one is empty. */
  async load(): Promise<readonly string[]> {
    try {
      const parsed: unknown = JSON.parse(await readFile(this.#path, "utf8"));
      this.#pending = new Set(Array.isArray(parsed) ? parsed.filter((v): v is string => typeof v === "string") : []);
    } catch {
      this.#pending = new Set();
    }
    return [...this.#pending];
  }

  /** Records, before an apply, that an actuator will owe a commit. */
  async owe(actuatorId: string): Promise<void> {
    if (this.#pending.has(actuatorId)) return;
    this.#pending.add(actuatorId);
    await this.#save();
  }

  /** Records that an actuator's commit went through. */
  async paid(actuatorId: string): Promise<void> {
    if (!this.#pending.delete(actuatorId)) return;
    await this.#save();
  }

  /** The actuators that owe a commit. */
  get pending(): readonly string[] {
    return [...this.#pending];
  }

  async #save(): Promise<void> {
    await mkdir(dirname(this.#path), { recursive: true });
    await writeFileAtomic(this.#path, `${JSON.stringify([...this.#pending].sort())}\n`);
  }
}
