/**
 * Housekeeping of the specs history: every commit adds a few loose objects (a blob, the trees,
 * the commit), so `git gc --auto` packs them once there are enough, off the write path. It runs
 * when the store has been quiet for a while, or at once when the loose objects pile up under a
 * writer that is never quiet; one run at a time per repository, niced, killed past a deadline.
 * `git gc` is safe beside writers (it takes the ref lock to expire the reflog, which a writer waits
 * for, and never prunes young objects); refs are left loose, as every reader expects them.
 */
import { spawn } from "node:child_process";
import { readdir } from "node:fs/promises";
import { setPriority } from "node:os";
import { join } from "node:path";
import type { GitRepo } from "./git.ts";

/** When and how the history is packed. */
export interface MaintenanceOptions {
  /** Loose objects that make `git gc --auto` pack (its `gc.auto`); 0 turns housekeeping off. */
  readonly looseObjects: number;
  /** How long the store must have been quiet before a run. */
  readonly idleMs: number;
  /** Loose objects past which a run starts without waiting for quiet (a multiple of `looseObjects`). */
  readonly busyFactor: number;
  /** A run still going after this long is killed (a killed `git gc` leaves nothing broken). */
  readonly timeoutMs: number;
}

/** What one housekeeping run did, for the log. */
export interface MaintenanceReport {
  /** How long it took. */
  readonly ms: number;
  /** The loose objects estimated before it. */
  readonly looseBefore: number;
  /** Why it failed (git's own words), when it did. */
  readonly error?: string;
}

/** The defaults: about 250 commits' objects, packed after 30 s of quiet, or at once at 8 times as many. */
export const DEFAULT_MAINTENANCE: MaintenanceOptions = { looseObjects: 1024, idleMs: 30_000, busyFactor: 8, timeoutMs: 10 * 60_000 };

// How often a busy writer counts its loose objects (a folder listing), in commits.
const COUNT_EVERY = 64;

interface RepoState {
  timer: NodeJS.Timeout | undefined;
  running: Promise<void> | undefined;
  commits: number;
}

// One state per repository in this process, whatever number of stores are open on it.
const states = new Map<string, RepoState>();

/**
 * The loose objects of a repository, estimated as git does: those of one fan-out folder
 * (`objects/17`) times 256.
 */
export async function estimateLooseObjects(gitDir: string): Promise<number> {
  const names = await readdir(join(gitDir, "objects", "17")).catch(() => [] as string[]);
  return names.filter((n) => /^[0-9a-f]{38}$/.test(n)).length * 256;
}

/** Schedules and runs `git gc --auto` for one repository. */
export class Maintenance {
  readonly #git: GitRepo;
  readonly #options: MaintenanceOptions;
  readonly #onReport: ((report: MaintenanceReport) => void) | undefined;
  readonly #state: RepoState;

  /**
   * @param git the specs repository.
   * @param options the thresholds; see {@link DEFAULT_MAINTENANCE}.
   * @param onReport told of every run, for the log.
   */
  constructor(git: GitRepo, options: MaintenanceOptions, onReport: ((report: MaintenanceReport) => void) | undefined) {
    this.#git = git;
    this.#options = options;
    this.#onReport = onReport;
    let state = states.get(git.gitDir);
    if (state === undefined) {
      state = { timer: undefined, running: undefined, commits: 0 };
      states.set(git.gitDir, state);
    }
    this.#state = state;
  }

  /** Called after each commit: rearms the quiet timer, and now and then counts the loose objects. */
  afterCommit(): void {
    if (this.#options.looseObjects <= 0) return;
    const state = this.#state;
    clearTimeout(state.timer);
    // Unreferenced: a pending run never keeps a short-lived process (the CLI) alive.
    state.timer = setTimeout(() => void this.run(false), this.#options.idleMs).unref();
    state.commits++;
    if (state.commits % COUNT_EVERY === 0) {
      void estimateLooseObjects(this.#git.gitDir).then((loose) => {
        if (loose > this.#options.looseObjects * this.#options.busyFactor) void this.run(false);
      });
    }
  }

  /**
   * Called when a store opens: a history that only short-lived writers (each `coyote spec apply`
   * a process of its own) ever wrote is never quiet in a live process, so one this far behind is
   * packed now, in the background.
   */
  atOpen(): void {
    if (this.#options.looseObjects <= 0) return;
    void estimateLooseObjects(this.#git.gitDir).then((loose) => {
      if (loose > this.#options.looseObjects * this.#options.busyFactor) void this.run(false);
    });
  }

  /**
   * Runs `git gc --auto` unless one runs already (then waits for it).
   * @param always run even below the threshold (a full `git gc`).
   */
  async run(always: boolean): Promise<void> {
    const state = this.#state;
    if (state.running !== undefined) return state.running;
    clearTimeout(state.timer);
    state.timer = undefined;
    const run = this.#gc(always).finally(() => {
      state.running = undefined;
    });
    state.running = run;
    return run;
  }

  async #gc(always: boolean): Promise<void> {
    const started = performance.now();
    const looseBefore = await estimateLooseObjects(this.#git.gitDir);
    if (!always && looseBefore <= this.#options.looseObjects) return;
    const args = [
      "-c", `gc.auto=${Math.max(1, this.#options.looseObjects)}`,
      // Refs stay loose files: readers of the branch (and the crash checks) read the file.
      "-c", "gc.packRefs=false",
      // The run is this process's child, so that its deadline holds and a test can wait for it.
      "-c", "gc.autoDetach=false",
      "-c", `safe.directory=${this.#git.workTree}`,
      "gc", ...(always ? [] : ["--auto"]), "--quiet",
    ];
    const error = await new Promise<string | undefined>((resolve) => {
      const child = spawn(this.#git.binary, args, { cwd: this.#git.workTree, env: this.#git.env, stdio: ["ignore", "ignore", "pipe"], timeout: this.#options.timeoutMs, killSignal: "SIGKILL" });
      if (child.pid !== undefined) {
        // Housekeeping yields the processor to the daemons; a failure to renice changes nothing.
        try {
          setPriority(child.pid, 10);
        } catch {
          // Not permitted here: it runs at normal priority.
        }
      }
      let stderr = "";
      child.stderr.setEncoding("utf8");
      child.stderr.on("data", (chunk: string) => {
        if (stderr.length < 4096) stderr += chunk;
      });
      child.on("error", (cause) => resolve(`cannot run ${this.#git.binary}: ${cause.message}`));
      child.on("close", (code, signal) => resolve(code === 0 ? undefined : stderr.trim().split("\n").join("; ") || `git gc: ${signal === null ? `exit code ${code ?? "?"}` : `killed by ${signal}`}`));
    });
    this.#onReport?.({ ms: performance.now() - started, looseBefore, ...(error === undefined ? {} : { error }) });
  }
}
