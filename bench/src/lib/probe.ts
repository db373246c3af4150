// A probe that bench/proxy loads into every snitch-proxy process (`node --import`, which the
// cluster's workers inherit with the rest of the parent's Node flags) to see what a request's
// latency is made of inside the proxy: garbage-collection pauses by kind, event-loop delay (how
// late a 1 ms timer fires: the length of the callbacks running meanwhile), event-loop utilisation,
// CPU, and the client connections this process accepted (SO_REUSEPORT spreads them by hash).
//
// On SIGUSR2 the process appends what it saw since the last SIGUSR2 to
// `$BENCH_PROBE_DIR/probe-<pid>.jsonl` and starts counting afresh, so that the benchmark can take
// exactly the steady part of one run. Nothing is written when BENCH_PROBE_DIR is not set.
import { channel } from "node:diagnostics_channel";
import { appendFileSync } from "node:fs";
import type { Socket } from "node:net";
import { join } from "node:path";
import { GCProfiler, getHeapSpaceStatistics } from "node:v8";
import { PerformanceObserver, constants, monitorEventLoopDelay, performance, type EventLoopUtilization } from "node:perf_hooks";

/** One interval's figures from one process. */
export interface ProbeReport {
  readonly pid: number;
  readonly seconds: number;
  /** Client connections accepted in the interval, and open at its end. */
  readonly accepted: number;
  readonly open: number;
  /** CPU of the whole process (all its threads), in cores. */
  readonly cpu: number;
  /** Event-loop utilisation of the main thread (1 = never idle). */
  readonly elu: number;
  /** Event-loop delay percentiles, ms. */
  readonly delayMs: { readonly p50: number; readonly p99: number; readonly max: number };
  /**
   * Bytes allocated in the young generation (and its large-object space): what the garbage
   * collector must scavenge, counted from each GC's before and after figures (v8.GCProfiler).
   */
  readonly allocatedBytes: number;
  /** Pauses by kind: count, total and longest, ms. */
  readonly gc: Record<"minor" | "major" | "incremental" | "weak", { count: number; totalMs: number; maxMs: number }>;
}

const dir = process.env.BENCH_PROBE_DIR;
if (dir !== undefined) {
  const KINDS = new Map<number, keyof ProbeReport["gc"]>([
    [constants.NODE_PERFORMANCE_GC_MINOR, "minor"],
    [constants.NODE_PERFORMANCE_GC_MAJOR, "major"],
    [constants.NODE_PERFORMANCE_GC_INCREMENTAL, "incremental"],
    [constants.NODE_PERFORMANCE_GC_WEAKCB, "weak"],
  ]);
  const fresh = (): ProbeReport["gc"] => ({
    minor: { count: 0, totalMs: 0, maxMs: 0 },
    major: { count: 0, totalMs: 0, maxMs: 0 },
    incremental: { count: 0, totalMs: 0, maxMs: 0 },
    weak: { count: 0, totalMs: 0, maxMs: 0 },
  });
  let gc = fresh();
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = KINDS.get(((entry as { detail?: { kind?: number } }).detail)?.kind ?? -1);
      if (kind === undefined) continue;
      const slot = gc[kind];
      slot.count++;
      slot.totalMs += entry.duration;
      slot.maxMs = Math.max(slot.maxMs, entry.duration);
    }
  }).observe({ entryTypes: ["gc"] });
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const sockets = new Set<Socket>();
  let accepted = 0;
  channel("net.server.socket").subscribe((message) => {
    const socket = (message as { socket: Socket }).socket;
    accepted++;
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  let since = performance.now();
  let cpuSince = process.cpuUsage();
  let eluSince: EventLoopUtilization = performance.eventLoopUtilization();
  // The young generation's used bytes now, from the process's heap or from one GC's figures.
  const YOUNG = new Set(["new_space", "new_large_object_space"]);
  const youngNow = () => getHeapSpaceStatistics().reduce((sum, space) => sum + (YOUNG.has(space.space_name) ? space.space_used_size : 0), 0);
  const youngOf = (spaces: readonly { spaceName: string; spaceUsedSize: number }[]) => spaces.reduce((sum, space) => sum + (YOUNG.has(space.spaceName) ? space.spaceUsedSize : 0), 0);
  let profiler = new GCProfiler();
  profiler.start();
  let youngSince = youngNow();
  /** What was allocated since the last report: each GC's young bytes before it, less what the one before left. */
  const allocatedSince = (): number => {
    const { statistics } = profiler.stop() as { statistics: { beforeGC: { heapSpaceStatistics: { spaceName: string; spaceUsedSize: number }[] }; afterGC: { heapSpaceStatistics: { spaceName: string; spaceUsedSize: number }[] } }[] };
    let allocated = 0;
    let left = youngSince;
    for (const entry of statistics) {
      allocated += Math.max(0, youngOf(entry.beforeGC.heapSpaceStatistics) - left);
      left = youngOf(entry.afterGC.heapSpaceStatistics);
    }
    const now = youngNow();
    allocated += Math.max(0, now - left);
    youngSince = now;
    profiler = new GCProfiler();
    profiler.start();
    return allocated;
  };
  process.on("SIGUSR2", () => {
    const now = performance.now();
    const cpu = process.cpuUsage(cpuSince);
    const seconds = (now - since) / 1000;
    const report: ProbeReport = {
      pid: process.pid,
      seconds,
      accepted,
      open: sockets.size,
      cpu: (cpu.user + cpu.system) / 1e6 / seconds,
      elu: performance.eventLoopUtilization(eluSince).utilization,
      delayMs: { p50: delay.percentile(50) / 1e6, p99: delay.percentile(99) / 1e6, max: delay.max / 1e6 },
      allocatedBytes: allocatedSince(),
      gc,
    };
    appendFileSync(join(dir, `probe-${String(process.pid)}.jsonl`), `${JSON.stringify(report)}\n`);
    since = now;
    cpuSince = process.cpuUsage();
    eluSince = performance.eventLoopUtilization();
    delay.reset();
    accepted = 0;
    gc = fresh();
  });
}
