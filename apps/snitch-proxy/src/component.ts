import { availableParallelism } from "node:os";
import type { ComponentContext, ComponentDefinition, RunningComponent } from "@coyote/component";
import { logFileFor } from "@coyote/log";
import type { ProxyListen } from "@coyote/spec";
import { startProxyInProcess } from "./alone.ts";
import { startProxyCluster, WORKER_NODE_FLAGS } from "./cluster.ts";
import { SnitchProxyError } from "./errors.ts";
import { readListenSettings, watchListenSettings } from "./listen-settings.ts";

const describeListen = (listen: ProxyListen) => `${listen.host} ports ${String(listen.https)} (https) and ${String(listen.http)} (http)`;

/** How the component is run; `coyote up` uses the defaults. */
export interface SnitchProxyComponentOptions {
  /**
   * Processes serving connections: 1 runs the proxy inside the component's own process, with no
   * worker; more runs a cluster of that many workers. {@link defaultWorkers} by default.
   */
  readonly workers?: number;
  /** How often `proxy/routes.json` is checked for new listen settings, ms; 1 s. */
  readonly listenCheckMs?: number;
}

/**
 * Node's flags for the component's process: in-process, it is the proxy's one worker, and takes
 * the workers' young generation (measured for the latency tail; V8's `--optimize-for-size`, which
 * the other components take, halved HTTP/2 throughput here: docs/BENCHMARKS.md).
 */
export const SNITCH_PROXY_NODE_FLAGS: readonly string[] = WORKER_NODE_FLAGS;

/**
 * How many processes serve connections on a machine with `cores` cores: one, in the component's
 * own process, on one or two cores, where a second worker would compete for the only other core
 * with the panel, the minion and the mail daemons, and costs a Node process's memory; one worker
 * per core beyond that, where TLS and HTTP parsing are worth spreading out.
 */
export function defaultWorkers(cores: number = availableParallelism()): number {
  return cores <= 2 ? 1 : cores;
}

/**
 * Starts snitch-proxy as a component of `coyote up`: in the component's own process on a small
 * machine, or as one worker process per core sharing the ports
 * the `listen` block of `proxy/routes.json` names (written by the minion from the server spec; the
 * proxy reads no spec), or the server spec's defaults until the minion has written one. When the
 * block changes, the workers move to the new ports while connections open on the old ones finish
 * there; when the move fails (a port taken), the proxy stops and its `done` rejects, so that the
 * supervisor starts it again on the new ports.
 */
export async function startSnitchProxy(context: ComponentContext, options: SnitchProxyComponentOptions = {}): Promise<RunningComponent> {
  const { logger, stateDir } = context;
  const listen = await readListenSettings(stateDir, logger);
  const workers = Math.max(1, options.workers ?? defaultWorkers());
  const proxy = await (workers === 1 ? startProxyInProcess : startProxyCluster)({
    stateDir,
    logger,
    logFile: logFileFor(stateDir, "snitch-proxy"),
    workers,
    // The supervisor writes stats/snitch-proxy.json, with what `stats` below returns.
    writeStats: false,
    https: { host: listen.host, port: listen.https },
    http: { host: listen.host, port: listen.http },
    publicHttpsPort: listen.https,
  });
  let finish: () => void = () => undefined;
  let fail: (error: Error) => void = () => undefined;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  let stopping: Promise<void> | undefined;
  let listening = listen;
  const watch = watchListenSettings(
    stateDir,
    listen,
    async (next) => {
      try {
        await proxy.move({ host: next.host, port: next.https }, { host: next.host, port: next.http }, next.https);
        logger.event("CONFIG_RELOADED", { what: "listen", from: listening, to: next }, `snitch-proxy moved from ${describeListen(listening)} to ${describeListen(next)}; connections open on the old ports finish there`);
        listening = next;
        return true;
      } catch (error) {
        // Ending with an error is what makes the supervisor start the component again, on the
        // new ports (or, while they cannot be bound, again and again with its backoff).
        const reason = `proxy/routes.json moves the proxy from ${describeListen(listening)} to ${describeListen(next)}, and moving failed (${error instanceof Error ? error.message : String(error)}); stopping so that it starts again there`;
        logger.event("COMPONENT_EXITED", { from: listening, to: next, err: error }, reason);
        stopping ??= proxy.stop().then(() => fail(new SnitchProxyError("SNITCH_ERR_LISTEN_MOVE", `snitch-proxy: ${reason}`, { cause: error })), (stopError: unknown) => fail(stopError instanceof Error ? stopError : new Error(String(stopError))));
        return false;
      }
    },
    { logger, ...(options.listenCheckMs === undefined ? {} : { intervalMs: options.listenCheckMs }) },
  );
  const stop = () => {
    watch.stop();
    stopping ??= proxy.stop().finally(finish);
    return stopping;
  };
  context.signal.addEventListener("abort", () => void stop(), { once: true });
  return { done, stop, stats: proxy.stats };
}

/** The snitch-proxy component as `coyote up` and `coyote run` know it. */
export const component: ComponentDefinition = {
  name: "snitch-proxy",
  summary: "The TLS front door: SNI certificates from ACME, routing, wake-on-request, traffic stats",
  start: (context) => startSnitchProxy(context),
};
