import { ActivatorClient, type UnitActivity } from "@coyote/spec";
import type { ClusterOptions, RunningCluster } from "./cluster.ts";
import { SnitchProxyError } from "./errors.ts";
import { startProxy, type TrafficReport } from "./proxy.ts";

/**
 * Runs snitch-proxy inside this process, with no worker process and no parent holding its
 * sockets: what one worker would do, without the second Node process (and its 40 MB or so) that
 * a cluster of one costs. It offers what a cluster offers, so the component runs either alike.
 */
export async function startProxyInProcess(options: ClusterOptions): Promise<RunningCluster> {
  const { logger } = options;
  const activator = options.activator ?? new ActivatorClient(options.stateDir);
  let latest: TrafficReport | undefined;
  const onTraffic = (traffic: TrafficReport) => {
    latest = traffic;
    if (Object.keys(traffic.activity).length === 0) return;
    const units: Record<string, UnitActivity> = { ...traffic.activity };
    activator.reportActivity({ units }).catch((error: unknown) => logger.debug({ err: error }, "reporting activity to docker-activator"));
  };
  // The proxy logs through the component's own logger: a worker's log file is the same file.
  const { logFile: _logFile, logLevel: _logLevel, workers: _workers, activator: _activator, workerNodeFlags: _flags, ...proxyOptions } = options;
  const running = await startProxy({ ...proxyOptions, activator, onTraffic, writeStats: options.writeStats ?? true }).catch((error: unknown) => {
    if (!options.activator) activator.close();
    throw error;
  });
  logger.event("COMPONENT_STARTED", { workers: 1, inProcess: true, https: `${running.httpsAddress.address}:${String(running.httpsAddress.port)}` }, "snitch-proxy runs in this process");
  let moves: Promise<void> = Promise.resolve();
  return {
    get httpsAddress() {
      return running.httpsAddress;
    },
    get httpAddress() {
      return running.httpAddress;
    },
    pids: () => [process.pid],
    connectionsByWorker: () => [latest?.counters.openConnections ?? 0],
    stats: () => ({ hosts: running.stats.hosts(), counters: { ...(latest?.counters ?? {}), workers: 1 } }),
    setMaxConnections(limit: number) {
      if (!Number.isInteger(limit) || limit < 1) throw new SnitchProxyError("SNITCH_ERR_LIMIT_INVALID", `setting max connections: ${String(limit)} is not a positive whole number`);
      running.setMaxConnections(limit);
    },
    move(https, http, publicHttpsPort) {
      const next = moves.then(async () => {
        await running.move(https, http, publicHttpsPort);
        logger.event("CONFIG_RELOADED", { what: "listen", workers: 1, https: `${running.httpsAddress.address}:${String(running.httpsAddress.port)}`, http: running.httpAddress ? `${running.httpAddress.address}:${String(running.httpAddress.port)}` : undefined });
      });
      moves = next.catch(() => undefined);
      return next;
    },
    async stop(graceMs = 5000) {
      await running.stop(graceMs);
      if (!options.activator) activator.close();
    },
  };
}
