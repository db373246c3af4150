/**
 * `alarms.jsonl`, bounded. Alarms are appended (one line per raise, restatement or clear) by
 * every daemon, and the panel reads them on every poll: left alone the file grows forever. Past
 * a size (or once its oldest line is older than the retention), the file is rotated: it becomes
 * `alarms.1.jsonl` (older generations shift up, the oldest is dropped, and any older than the
 * retention go too; a file past a sixteenth of its size limit is also rotated once its oldest
 * cleared alarm is past the retention), and the new file starts with the lines of every alarm still raised, so
 * that the current file alone always tells every open alarm and the raise it began with.
 */
import { createReadStream } from "node:fs";
import { link, open, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { appendLineDurable, writeFileAtomic } from "./atomic.ts";
import { acquireFileLock } from "./lock.ts";
import { Alarm } from "./runtime.ts";
import { parseJson, validate } from "./validate.ts";

/** How far the alarm log may grow. */
export interface AlarmLogLimits {
  /** The size past which the current file is rotated. */
  readonly maxBytes: number;
  /** How many rotated files are kept (`alarms.1.jsonl` ...). */
  readonly generations: number;
  /** How long cleared alarms are kept, in milliseconds; alarms still raised are always kept. */
  readonly retentionMs: number;
  /** The most of the current file a read takes (its end), should a writer have let it grow. */
  readonly readCapBytes: number;
}

/** The limits of the appliance's alarm log: 1 MiB, two rotated files, 30 days, reads of 4 MiB. */
export const ALARM_LOG_LIMITS: AlarmLogLimits = { maxBytes: 1024 * 1024, generations: 2, retentionMs: 30 * 86_400_000, readCapBytes: 4 * 1024 * 1024 };

/** How long an append waits for another process's append or rotation. */
const LOCK_TIMEOUT_MS = 10_000;

/** The bounded, rotated `alarms.jsonl` of a state folder. */
export class AlarmLog {
  readonly #path: string;
  readonly #lockPath: string;
  readonly #limits: AlarmLogLimits;
  readonly #now: () => number;

  /**
   * Makes the log.
   * @param path the current file (`<state>/alarms.jsonl`).
   * @param lockPath the lock file shared by every process that appends (`<state>/run/alarms.lock`).
   * @param limits how far it may grow.
   * @param now the clock, for the retention.
   */
  constructor(path: string, lockPath: string, limits: AlarmLogLimits = ALARM_LOG_LIMITS, now: () => number = Date.now) {
    this.#path = path;
    this.#lockPath = lockPath;
    this.#limits = limits;
    this.#now = now;
  }

  /** The file of rotated generation `n` (1 is the newest). */
  generation(n: number): string {
    return join(dirname(this.#path), `alarms.${n}.jsonl`);
  }

  /**
   * Appends a validated alarm durably, and rotates the file when it has grown past its limits.
   * Appends and rotations of every process are serialised by a lock file, so that no line is
   * written into a file being rotated away.
   * @throws ContractError when the alarm is invalid; CoyoteError STORE_ERR_LOCKED or STORE_ERR_IO.
   */
  async append(alarm: Alarm): Promise<void> {
    const line = JSON.stringify(validate(Alarm, alarm, "alarms.jsonl"));
    const lock = await acquireFileLock(this.#lockPath, { timeoutMs: LOCK_TIMEOUT_MS, what: "alarms.jsonl" });
    try {
      await appendLineDurable(this.#path, line);
      if (await this.#due()) await this.#rotate();
    } finally {
      await lock.release();
    }
  }

  /**
   * Reads the current file (at most its last `readCapBytes`). A torn or invalid line becomes a
   * warning naming its line number; it never hides the other alarms nor throws.
   */
  async read(): Promise<{ alarms: Alarm[]; warnings: string[] }> {
    const warnings: string[] = [];
    let text: string;
    try {
      const handle = await open(this.#path, "r");
      try {
        const size = (await handle.stat()).size;
        const cap = this.#limits.readCapBytes;
        if (size <= cap) {
          text = await handle.readFile("utf8");
        } else {
          const buffer = Buffer.alloc(cap);
          const { bytesRead } = await handle.read(buffer, 0, cap, size - cap);
          const tail = buffer.subarray(0, bytesRead).toString("utf8");
          // The first line is cut: start after it.
          text = tail.slice(tail.indexOf("\n") + 1);
          warnings.push(`alarms.jsonl is ${size} bytes: only its last ${cap} bytes were read`);
        }
      } finally {
        await handle.close();
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return { alarms: [], warnings };
      throw error;
    }
    const alarms: Alarm[] = [];
    text.split("\n").forEach((line, index) => {
      if (line.trim() === "") return;
      try {
        alarms.push(parseJson(Alarm, line, `alarms.jsonl line ${index + 1}`));
      } catch (error) {
        warnings.push(error instanceof Error ? error.message : String(error));
      }
    });
    return { alarms, warnings };
  }

  /**
   * Whether the current file is past its size, or its oldest cleared alarm is past the
   * retention. Only cleared lines count for age: the raised ones carried over at a rotation
   * come first and may be old, and they stay whatever their age.
   */
  async #due(): Promise<boolean> {
    const size = (await stat(this.#path)).size;
    if (size > this.#limits.maxBytes) return true;
    // A small file is cheap to read whatever its age: rotating it would only hide recent history.
    if (size < this.#limits.maxBytes / 16) return false;
    const handle = await open(this.#path, "r");
    let head: string;
    try {
      const buffer = Buffer.alloc(16 * 1024);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      head = buffer.subarray(0, bytesRead).toString("utf8");
    } finally {
      await handle.close();
    }
    // Whole lines only: the last one of the window may be cut.
    for (const text of head.split("\n").slice(0, -1)) {
      let alarm: Alarm;
      try {
        alarm = parseJson(Alarm, text, "alarms.jsonl");
      } catch {
        continue;
      }
      if (alarm.state === "cleared") return this.#now() - Date.parse(alarm.at) > this.#limits.retentionMs;
    }
    return false;
  }

  /**
   * Rotates: the current file becomes generation 1 (a hard link first, so that a crash at any
   * point leaves the current file whole), and is replaced atomically by the lines of the alarms
   * still raised.
   */
  async #rotate(): Promise<void> {
    const carried = await this.#openLines();
    const { generations, retentionMs } = this.#limits;
    await rm(this.generation(generations), { force: true });
    for (let n = generations - 1; n >= 1; n--) {
      await rename(this.generation(n), this.generation(n + 1)).catch((error: unknown) => {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      });
    }
    if (generations >= 1) {
      await rm(this.generation(1), { force: true });
      await link(this.#path, this.generation(1));
    }
    await writeFileAtomic(this.#path, carried.length === 0 ? "" : `${carried.join("\n")}\n`);
    // Cleared alarms older than the retention go with the generation that holds them.
    for (let n = 1; n <= generations; n++) {
      const info = await stat(this.generation(n)).catch(() => undefined);
      if (info && this.#now() - info.mtimeMs > retentionMs) await rm(this.generation(n), { force: true });
    }
  }

  /**
   * The lines to carry into the new file, in their order: for each alarm still raised, the line
   * that began its raise (whose id acknowledgements name) and its latest line. Read line by line:
   * a file that grew large before it was bounded is never held whole in memory.
   */
  async #openLines(): Promise<string[]> {
    const byKey = new Map<string, { start: { index: number; text: string }; last: { index: number; text: string }; raised: boolean }>();
    const lines = createInterface({ input: createReadStream(this.#path, { encoding: "utf8" }), crlfDelay: Infinity });
    let index = 0;
    for await (const text of lines) {
      index++;
      let alarm: Alarm;
      try {
        alarm = parseJson(Alarm, text, "alarms.jsonl");
      } catch {
        continue;
      }
      const before = byKey.get(alarm.key);
      const line = { index, text };
      const newRaise = alarm.state === "raised" && before?.raised !== true;
      byKey.set(alarm.key, { start: newRaise || !before ? line : before.start, last: line, raised: alarm.state === "raised" });
    }
    const keep: { index: number; text: string }[] = [];
    for (const entry of byKey.values()) {
      if (!entry.raised) continue;
      keep.push(entry.start);
      if (entry.last.index !== entry.start.index) keep.push(entry.last);
    }
    return keep.sort((a, b) => a.index - b.index).map((l) => l.text);
  }
}
