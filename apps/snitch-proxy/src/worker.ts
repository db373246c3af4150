// One worker process of a snitch-proxy cluster (cluster.ts): it runs the proxy on the shared
// ports (node:cluster makes its listeners take connections from the parent's listening sockets)
// and hands its traffic to the parent, which reports it once for all workers.
import { createLogger } from "@coyote/log";
import type { FromWorker, ToWorker } from "./cluster.ts";
import { startProxy, type RunningProxy } from "./proxy.ts";

let proxy: RunningProxy | undefined;
/** Settles once the proxy has started (or failed to): a move waits for it. */
let started: Promise<void> = Promise.resolve();
const tell = (message: FromWorker) => {
  if (process.connected) process.send?.(message);
};

process.on("message", (message: ToWorker) => {
  if (message.type === "start") {
    const { logFile, logLevel, ...options } = message.options;
    const logger = createLogger({ component: "snitch-proxy", file: logFile, level: logLevel ?? "info" });
    started = startProxy({ ...options, logger, connectionShare: message.share, writeStats: false, onTraffic: (traffic) => tell({ type: "traffic", traffic }) }).then(
      (running) => {
        proxy = running;
        tell({ type: "ready", https: running.httpsAddress, http: running.httpAddress });
      },
      (error: unknown) => {
        tell({ type: "failed", message: error instanceof Error ? error.message : String(error) });
        process.exitCode = 1;
        process.disconnect();
      },
    );
  } else if (message.type === "limit") {
    proxy?.setMaxConnections(message.maxConnections);
  } else if (message.type === "move") {
    void started
      .then(async () => {
        if (!proxy) throw new Error("the proxy did not start");
        await proxy.move(message.https, message.http, message.publicHttpsPort);
        tell({ type: "moved", https: proxy.httpsAddress, http: proxy.httpAddress });
      })
      .catch((error: unknown) => tell({ type: "move-failed", message: error instanceof Error ? error.message : String(error) }));
  } else {
    const stopping = proxy?.stop(message.graceMs) ?? Promise.resolve();
    void stopping.finally(() => process.exit());
  }
});
// A worker whose parent is gone has no one to report to and nothing to stop it: it leaves.
process.on("disconnect", () => {
  const stopping = proxy?.stop(1000) ?? Promise.resolve();
  void stopping.finally(() => process.exit());
});
