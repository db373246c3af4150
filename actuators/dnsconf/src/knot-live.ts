/**
 * Whether the running Knot serves a service's zones: the truth behind `DnsReady` with the Knot
 * backend. Knot must be running (a live pid in `<rundir>/knot.pid`) and `knotc zone-status` must
 * list each zone with the serial of its file. Only reads; every command has a deadline.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { LiveMemo, runProgram } from "@coyote/actuator";
import { isPidAlive } from "@coyote/spec";

/** What the running Knot serves: `down` says why it does not run, `serials` each loaded zone's serial. */
export interface KnotLive {
  /** Why Knot is not serving, or undefined when it answers. */
  readonly down: string | undefined;
  /** The zones Knot has configured, by name (no trailing dot), with the serial it serves (undefined: not loaded). */
  readonly serials: ReadonlyMap<string, number | undefined>;
}

/** Where {@link KnotLiveCheck} finds Knot. */
export interface KnotLiveOptions {
  /** Knot's run folder (its pid file); Knot's default `/run/knot` when not given. */
  readonly rundir?: string;
  /** Knot's control socket. */
  readonly controlSocket: string;
  /** The `knotc` binary. */
  readonly knotc: string;
}

/** How a finished command ended: its exit code (-1 when it could not run or was killed) and its output. */
export interface RunResult {
  readonly code: number;
  readonly output: string;
}

const TIMEOUT_MS = 10_000;
// `zone-status` prints one short line per zone; this is room for a hundred thousand zones.
const MAX_OUTPUT = 16 << 20;

/** Runs a program without a shell, to the end or its deadline; never rejects. */
export async function run(file: string, args: readonly string[], timeoutMs: number, signal?: AbortSignal): Promise<RunResult> {
  try {
    const result = await runProgram(file, args, { timeoutMs, maxOutput: MAX_OUTPUT, ...(signal === undefined ? {} : { signal }) });
    const output = `${result.stdout}${result.stderr}`.trim();
    if (result.code === 0) return { code: 0, output };
    const ended = result.timedOut ? `did not finish within ${String(timeoutMs)} ms` : `was ended by ${result.signal ?? "a signal"}`;
    return { code: result.code ?? -1, output: output === "" ? `${file} ${result.code === undefined ? ended : `exited with ${String(result.code)}`}` : output };
  } catch (error) {
    return { code: -1, output: error instanceof Error ? error.message : String(error) };
  }
}

const STATUS_LINE = /^\[([^\]\s]+?)\.?\]\s+role:\s*\S+\s*\|\s*serial:\s*(\d+|-)/;

/**
 * Reads `knotc zone-status` output: one `[zone.] role: master | serial: N | ...` line per zone,
 * `serial: -` for a zone Knot could not load. Other lines are ignored.
 */
export function parseZoneStatus(output: string): Map<string, number | undefined> {
  const serials = new Map<string, number | undefined>();
  for (const line of output.split("\n")) {
    const match = STATUS_LINE.exec(line.trim());
    if (match?.[1] === undefined || match[2] === undefined) continue;
    serials.set(match[1].toLowerCase(), match[2] === "-" ? undefined : Number(match[2]));
  }
  return serials;
}

/** Asks the running Knot, through `knotc zone-status`, which zones it serves at which serial. */
export class KnotLiveCheck {
  readonly #options: KnotLiveOptions;
  readonly #pidFile: string;
  // What knotc lists is the same for every service: asked at most once a second.
  readonly #memo = new LiveMemo<KnotLive>();

  /** Makes a check of one actuator's Knot. */
  constructor(options: KnotLiveOptions) {
    this.#options = options;
    this.#pidFile = join(options.rundir ?? "/run/knot", "knot.pid");
  }

  /** Forgets the last answer: after a commit the next check asks again. */
  forget(): void {
    this.#memo.forget();
  }

  /**
   * What Knot serves now. Whether it runs is looked at every time (its pid file and pid); what
   * `knotc` lists is remembered for a second across services, for the same pid only, so that a
   * Knot that died or was restarted meanwhile is never reported from the memory.
   */
  async check(signal: AbortSignal): Promise<KnotLive> {
    const text = await readFile(this.#pidFile, "utf8").catch(() => undefined);
    const pid = Number(text?.trim());
    if (!Number.isInteger(pid) || pid <= 0 || !isPidAlive(pid)) {
      this.#memo.forget();
      return { down: `knot is not running (no live pid in ${this.#pidFile})`, serials: new Map() };
    }
    return this.#memo.get(pid, () => this.#ask(signal));
  }

  async #ask(signal: AbortSignal): Promise<KnotLive> {
    const { knotc, controlSocket } = this.#options;
    const result = await run(knotc, ["-s", controlSocket, "-t", "5", "zone-status"], TIMEOUT_MS, signal);
    if (result.code !== 0) return { down: `knot does not answer on its control socket (${knotc} -s ${controlSocket} zone-status: ${result.output.slice(0, 300)})`, serials: new Map() };
    return { down: undefined, serials: parseZoneStatus(result.output) };
  }
}
