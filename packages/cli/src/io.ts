/** Where a command writes: `out` for its results (stdout), `err` for diagnostics (stderr). */
export interface Io {
  /** Writes a result line (a newline is added). */
  out(line: string): void;
  /** Writes a diagnostic line (a newline is added). */
  err(line: string): void;
  /**
   * Aborted once the reader of the results is gone (`coyote up | head -3`): a command that would
   * run on for a long time stops cleanly rather than work for no one. Absent in tests' own Io.
   */
  readonly closed?: AbortSignal;
}

/**
 * An {@link Io} over two writable streams that behaves as a Unix tool does when its reader goes
 * away (`coyote --help | head -1`): a write to a closed pipe (EPIPE) is not an error to report
 * with a stack trace, it only means nobody reads any more. From then on writes to that stream are
 * dropped; the command finishes (nothing it was storing is cut short) and exits with its own code.
 * Only a closed stdout aborts {@link Io.closed}: diagnostics nobody reads are no reason to stop.
 */
export function streamIo(stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream): Io {
  const controller = new AbortController();
  const guard = (stream: NodeJS.WritableStream, onGone: () => void) => {
    let gone = false;
    // Any error of a standard stream (EPIPE, or EIO from a vanished terminal) leaves nothing to write to.
    stream.on("error", () => {
      if (gone) return;
      gone = true;
      onGone();
    });
    return (line: string) => {
      if (gone) return;
      stream.write(`${line}\n`);
    };
  };
  const out = guard(stdout, () => controller.abort());
  const err = guard(stderr, () => undefined);
  return { out, err, closed: controller.signal };
}

/** The process's own stdout and stderr, made on first use so that importing this module adds no listeners. */
export function processIo(): Io {
  return streamIo(process.stdout, process.stderr);
}

/** Lays out rows as columns separated by two spaces; the last column is not padded. */
export function table(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join("  ").trimEnd());
}

/** Formats a duration in seconds as people read it: `42s`, `3m 5s`, `2h 1m`, `4d 3h`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}
