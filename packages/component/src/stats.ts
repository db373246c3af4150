import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { ComponentStats, writeFileAtomic, validate } from "@coyote/spec";

/**
 * Writes `stats/<name>.json` for a running component every `intervalMs` (docs/ARCHITECTURE.md, "On disk": each daemon
 * rewrites its stats atomically every few seconds): pid, start time and memory, plus whatever the
 * component adds through `extra`. `coyote status` reads it to tell a running component from a
 * stopped one. Returns a function that stops the heartbeat.
 */
export function startStatsHeartbeat(stateDir: string, name: string, options: { intervalMs?: number; extra?: () => Partial<Pick<ComponentStats, "hosts" | "units" | "counters">> } = {}): () => Promise<void> {
  const startedAt = new Date().toISOString();
  const file = join(stateDir, "stats", `${name}.json`);
  mkdirSync(join(stateDir, "stats"), { recursive: true });
  let writing: Promise<void> = Promise.resolve();
  const write = () => {
    const memory = process.memoryUsage();
    const stats = validate(ComponentStats, {
      schemaVersion: 1,
      component: name,
      pid: process.pid,
      startedAt,
      writtenAt: new Date().toISOString(),
      process: { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed, uptimeSeconds: process.uptime() },
      ...(options.extra?.() ?? {}),
    }, file);
    // Writes are chained so that two never race on the temp file; a failed write is retried next beat.
    writing = writing.then(() => writeFileAtomic(file, `${JSON.stringify(stats)}\n`)).catch(() => undefined);
  };
  write();
  const timer = setInterval(write, options.intervalMs ?? 5000);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await writing;
  };
}
