// The panel trusts the client address snitch-proxy forwards only when the request carries the
// panel's forwarding secret (`secrets/panel-forwarding-token`, which the panel makes at its start).
// The secret is kept in memory and checked again every few seconds in the background: a request
// never waits on the disk, and a secret the panel made or replaced after the proxy started is
// picked up within one check.
import { constants } from "node:fs";
import { open, stat } from "node:fs/promises";
import { join } from "node:path";
import type { CoyoteLogger } from "@coyote/log";
import { BOX_OWNER, FORWARDED_BY_HEADER, PANEL_FORWARDING_SECRET } from "@coyote/spec";

export { FORWARDED_BY_HEADER, PANEL_FORWARDING_SECRET };

/** The `serviceId` of the box's own routes (its hostname, to the panel): only those carry the secret. */
export const PANEL_SERVICE_ID = BOX_OWNER;

/** Bytes of the secret file; a larger file is refused unread. */
export const MAX_SECRET_BYTES = 1024;

/** How often the file is checked for a change (a stat; read only when it changed), ms. */
export const SECRET_CHECK_INTERVAL_MS = 2000;

/** A usable secret: one line of URL-safe characters, long enough to be unguessable. */
const SAFE_SECRET = /^[A-Za-z0-9._~+/=-]{16,1024}$/;

/** Where a state folder keeps the panel's forwarding secret. */
export function forwardingSecretFile(stateDir: string): string {
  return join(stateDir, "secrets", PANEL_FORWARDING_SECRET);
}

/**
 * The panel's forwarding secret as last read. {@link ForwardingSecret.forPanel} is all a request
 * costs: a field read, and one error log the first time a request goes to the panel without it.
 */
export class ForwardingSecret {
  readonly #file: string;
  readonly #logger: CoyoteLogger;
  readonly #intervalMs: number;
  #value: string | undefined;
  /** Why there is no value (a sentence naming the file), while there is none. */
  #problem: string | undefined = "not read yet";
  /** The file's identity when last read (`ino:size:mtime`), or the kind of failure. */
  #stamp = "";
  /** Whether the current problem has been logged. */
  #told = false;
  #timer: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;

  /**
   * @param file the secret's path ({@link forwardingSecretFile}).
   * @param intervalMs how often the file is checked for a change.
   */
  constructor(file: string, logger: CoyoteLogger, intervalMs = SECRET_CHECK_INTERVAL_MS) {
    this.#file = file;
    this.#logger = logger;
    this.#intervalMs = intervalMs;
  }

  /** Reads the secret now, then checks it every interval until {@link stop}. */
  async start(): Promise<void> {
    await this.check();
    this.#timer = setInterval(() => void this.check(), this.#intervalMs);
    this.#timer.unref();
  }

  /** Stops the checks. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * The secret to send to the panel, or undefined when there is no usable one (logged as an error
   * once per problem, so a missing file does not write a line per request).
   */
  forPanel(): string | undefined {
    if (this.#value === undefined && !this.#told) {
      this.#told = true;
      this.#logger.event("ERROR", { file: this.#file, reason: this.#problem }, "forwarding to the panel without its forwarding secret: the panel sees every client as this proxy's address");
    }
    return this.#value;
  }

  /** Checks the file once (a stat), reading it again when it changed. Never throws. */
  check(): Promise<void> {
    // One check at a time: a slow disk does not pile them up.
    this.#checking ??= this.#check().finally(() => (this.#checking = undefined));
    return this.#checking;
  }

  async #check(): Promise<void> {
    let stamp: string;
    try {
      const s = await stat(this.#file);
      stamp = `${String(s.ino)}:${String(s.size)}:${String(s.mtimeMs)}`;
      if (!s.isFile()) {
        this.#settle(stamp, undefined, `${this.#file} is not a regular file`);
        return;
      }
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? "EIO";
      this.#settle(`failed:${code}`, undefined, code === "ENOENT" ? `${this.#file} does not exist` : `${this.#file} cannot be read (${code})`);
      return;
    }
    if (stamp === this.#stamp) return;
    const read = await readCapped(this.#file);
    if (typeof read !== "string") {
      this.#settle(stamp, undefined, `${this.#file}: ${read.problem}`);
      return;
    }
    // The panel writes the secret alone; a trailing line break (an editor's) is forgiven.
    const secret = read.replace(/\r?\n$/, "");
    if (!SAFE_SECRET.test(secret)) {
      this.#settle(stamp, undefined, `${this.#file} is not one line of 16 to ${String(MAX_SECRET_BYTES)} letters, digits or ._~+/=-`);
      return;
    }
    this.#settle(stamp, secret, undefined);
  }

  #settle(stamp: string, value: string | undefined, problem: string | undefined): void {
    if (stamp === this.#stamp) return;
    const had = this.#value;
    this.#stamp = stamp;
    this.#value = value;
    if (problem !== this.#problem) this.#told = false;
    this.#problem = problem;
    if (value !== undefined && value !== had) this.#logger.event("CONFIG_RELOADED", { what: "panel forwarding secret", file: this.#file });
  }
}

/** A file's text, or why it was not read: not a regular file, or over {@link MAX_SECRET_BYTES}. */
async function readCapped(file: string): Promise<string | { problem: string }> {
  let handle;
  try {
    // Non-blocking: a FIFO put in its place must not hold the check open forever.
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    return { problem: `cannot be opened (${(error as NodeJS.ErrnoException).code ?? "EIO"})` };
  }
  try {
    const s = await handle.stat();
    if (!s.isFile()) return { problem: "is not a regular file" };
    if (s.size > MAX_SECRET_BYTES) return { problem: `is larger than ${String(MAX_SECRET_BYTES)} bytes (${String(s.size)})` };
    // Read one byte past the cap: a file that grew since its stat is refused too.
    const buffer = Buffer.alloc(MAX_SECRET_BYTES + 1);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    if (bytesRead > MAX_SECRET_BYTES) return { problem: `is larger than ${String(MAX_SECRET_BYTES)} bytes` };
    return buffer.subarray(0, bytesRead).toString("latin1");
  } catch (error) {
    return { problem: `cannot be read (${(error as NodeJS.ErrnoException).code ?? "EIO"})` };
  } finally {
    await handle.close().catch(() => undefined);
  }
}
