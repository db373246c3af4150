// Load generators for the proxy benchmarks: wrk (HTTP/1.1 keep-alive) and h2load (HTTP/2, the
// protocol browsers use), each run as a daemon of its own with its output in a file, each giving
// the same figures: requests, seconds, p50/p99 latency, errors, and the CPU of the processes
// watched during the steady part of the run.
import { readFileSync, writeFileSync } from "node:fs";
import { cpuSeconds, startDaemon, stopDaemon, type Daemon } from "./proc.ts";

/** One load run's figures. */
export interface LoadResult {
  readonly requests: number;
  readonly seconds: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
}

/** A process whose CPU is sampled during a run: a whole process, or one thread of it. */
export interface Watched {
  readonly label: string;
  readonly pid: number;
  readonly tid?: number;
}

/** What a run is pointed at and how hard. */
export interface LoadSpec {
  /** The site name: SNI, Host and :authority. The tools still connect to 127.0.0.1. */
  readonly host: string;
  readonly port: number;
  readonly seconds: number;
  readonly connections: number;
  readonly threads: number;
  /** HTTP/2 streams in flight per connection (h2load only). */
  readonly streams: number;
  /**
   * Seconds of warm-up inside the same run, not counted (h2load only: a separate short h2load run
   * can hang when its duration ends while its connections are still being set up).
   */
  readonly warmupSeconds?: number;
  /** Where the tool's own output is appended. */
  readonly logFile: string;
  /** A scratch file the run may write (wrk's Lua script, h2load's per-request log). */
  readonly scratch: string;
  /**
   * wrk only: each connection waits this long after an answer before its next request, so that
   * the offered load is about connections / (think + latency), the same for every proxy, instead
   * of as much as the proxy can take (0: no wait, the default).
   */
  readonly thinkMs?: number;
  /** Told when the steady part of the run (the one whose CPU is sampled) begins and ends. */
  readonly window?: { begin(): void; end(): void };
}

/** The tools, so that a caller can check they are installed. */
export const WRK = "/usr/bin/wrk";
export const H2LOAD = "/usr/bin/h2load";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// wrk connects to 127.0.0.1 whatever the URL's host (which it still sends as SNI and Host), and
// prints its figures as one JSON line when done.
const WRK_LUA = `
wrk.resolve = function(host, service)
  wrk.addrs = wrk.lookup("127.0.0.1", service)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH_JSON {"requests":%.0f,"durationUs":%.0f,"p50Us":%.1f,"p99Us":%.1f,"errors":%.0f}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
`;

function sampleCpu(watched: readonly Watched[]): Map<string, number> {
  const sample = new Map<string, number>();
  for (const w of watched) {
    const seconds = cpuSeconds(w.pid, w.tid);
    if (seconds !== undefined) sample.set(w.label, seconds);
  }
  return sample;
}

/**
 * Runs a load tool to its end, sampling the CPU of `watch()` (and of the tool) from 1 s after the
 * start to 1 s before the end, so the figures cover the steady state. `track` is told of the
 * tool's daemon so that an interrupt of the benchmark stops it too.
 */
async function runTool(name: string, command: string, args: readonly string[], spec: LoadSpec, track: (d: Daemon) => void, watch?: () => Watched[]): Promise<{ stdout: string; cpu: Map<string, number> }> {
  const daemon = startDaemon(name, command, args, spec.logFile, { stdout: "pipe" });
  track(daemon);
  let stdout = "";
  daemon.child.stdout?.setEncoding("utf8");
  daemon.child.stdout?.on("data", (chunk: string) => (stdout += chunk));
  const cpu = new Map<string, number>();
  const sampler = (async () => {
    if (!watch) return;
    const margin = spec.seconds >= 3 ? 1000 : 300;
    await sleep(margin + (spec.warmupSeconds ?? 0) * 1000);
    const watched = [...watch(), { label: name, pid: daemon.pid }];
    const t0 = performance.now();
    const first = sampleCpu(watched);
    spec.window?.begin();
    await sleep(spec.seconds * 1000 - 2 * margin);
    spec.window?.end();
    const second = sampleCpu(watched);
    const elapsed = (performance.now() - t0) / 1000;
    for (const [label, s] of second) {
      const before = first.get(label);
      if (before !== undefined) cpu.set(label, (s - before) / elapsed);
    }
  })();
  let timer: NodeJS.Timeout | undefined;
  const limit = (spec.seconds + (spec.warmupSeconds ?? 0) + 20) * 1000;
  const finished = await Promise.race([daemon.exited.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), limit)))]);
  clearTimeout(timer);
  if (!finished) {
    await stopDaemon(daemon, 1000);
    throw new Error(`${name} did not finish within ${limit / 1000} s`);
  }
  await sampler;
  writeFileSync(spec.logFile, stdout, { flag: "a" });
  return { stdout, cpu };
}

/** HTTP/1.1 keep-alive load with wrk. */
export async function runWrk(spec: LoadSpec, track: (d: Daemon) => void, watch?: () => Watched[]): Promise<{ result: LoadResult; cpu: Map<string, number> }> {
  // wrk calls delay() before each request and waits that many milliseconds.
  const think = spec.thinkMs ?? 0;
  writeFileSync(spec.scratch, think > 0 ? `${WRK_LUA}delay = function() return ${String(think)} end\n` : WRK_LUA);
  const args = ["-t", String(spec.threads), "-c", String(spec.connections), "-d", `${spec.seconds}s`, "--timeout", "5s", "--latency", "-s", spec.scratch, `https://${spec.host}:${spec.port}/`];
  const { stdout, cpu } = await runTool("wrk", WRK, args, spec, track, watch);
  const line = stdout.split("\n").find((l) => l.startsWith("BENCH_JSON "));
  if (line === undefined) throw new Error(`wrk printed no result; see ${spec.logFile}`);
  const r = JSON.parse(line.slice("BENCH_JSON ".length)) as { requests: number; durationUs: number; p50Us: number; p99Us: number; errors: number };
  return { result: { requests: r.requests, seconds: r.durationUs / 1e6, p50Ms: r.p50Us / 1000, p99Ms: r.p99Us / 1000, errors: r.errors }, cpu };
}

/** The value at fraction `q` of sorted numbers. */
function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

/**
 * HTTP/2 load with h2load: `connections` clients each keeping `streams` requests in flight. h2load
 * prints no percentiles, so they come from its per-request log (`--log-file`: start, status,
 * microseconds to the end of the answer).
 */
export async function runH2load(spec: LoadSpec, track: (d: Daemon) => void, watch?: () => Watched[]): Promise<{ result: LoadResult; cpu: Map<string, number> }> {
  writeFileSync(spec.scratch, "");
  const args = [
    "-D", String(spec.seconds),
    ...(spec.warmupSeconds ? [`--warm-up-time=${spec.warmupSeconds}`] : []),
    // A connection that stalls ends the run's wait for it instead of hanging the benchmark.
    "-N", "10",
    "-c", String(spec.connections),
    "-t", String(spec.threads),
    "-m", String(spec.streams),
    "--npn-list=h2",
    `--connect-to=127.0.0.1:${spec.port}`,
    `--log-file=${spec.scratch}`,
    `https://${spec.host}:${spec.port}/`,
  ];
  const { stdout, cpu } = await runTool("h2load", H2LOAD, args, spec, track, watch);
  // "finished in 10.00s, 12345.60 req/s, ..." and "requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout"
  const finished = /finished in ([\d.]+)(m?s)/.exec(stdout);
  const counts = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(stdout);
  if (!finished || !counts) throw new Error(`h2load printed no result; see ${spec.logFile}`);
  const seconds = Number(finished[1]) / (finished[2] === "ms" ? 1000 : 1);
  const latencies: number[] = [];
  let failedStatus = 0;
  for (const line of readFileSync(spec.scratch, "utf8").split("\n")) {
    const [, status, micros] = line.split("\t");
    if (status === undefined || micros === undefined) continue;
    // 0 or -1: a stream still in flight when the run ended (h2load counts real failures itself).
    if (Number(status) < 100) continue;
    if (status !== "200") failedStatus++;
    latencies.push(Number(micros) / 1000);
  }
  latencies.sort((a, b) => a - b);
  const errors = Number(counts[5]) + Number(counts[6]) + Number(counts[7]) + failedStatus;
  return { result: { requests: Number(counts[4]), seconds, p50Ms: quantile(latencies, 0.5), p99Ms: quantile(latencies, 0.99), errors }, cpu };
}
