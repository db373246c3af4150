import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { ComponentContext, ComponentDefinition, RunningComponent } from "@coyote/component";
import { ServerSpec, parseJson, serverOrDefaults, specPath } from "@coyote/spec";
import { availableParallelism } from "node:os";
import { logFileFor } from "@coyote/log";
import { startProxyCluster } from "./cluster.ts";

/** Reads the server spec, or its defaults on a box where none has been written yet. */
async function readServer(stateDir: string): Promise<ServerSpec> {
  const file = join(stateDir, specPath("server"));
  try {
    return parseJson(ServerSpec, await readFile(file, "utf8"), file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return serverOrDefaults(undefined);
    throw error;
  }
}

/**
 * Starts snitch-proxy as a component of `coyote up`: one worker process per core sharing the
 * server spec's HTTPS and HTTP ports, on every interface when the box has a public address and on
 * loopback otherwise (a box under development is not exposed by accident).
 */
export async function startSnitchProxy(context: ComponentContext): Promise<RunningComponent> {
  const server = await readServer(context.stateDir);
  const host = server.publicIPv4 === undefined && server.publicIPv6 === undefined ? "127.0.0.1" : "::";
  const proxy = await startProxyCluster({
    stateDir: context.stateDir,
    logger: context.logger,
    logFile: logFileFor(context.stateDir, "snitch-proxy"),
    workers: availableParallelism(),
    // The supervisor writes stats/snitch-proxy.json, with what `stats` below returns.
    writeStats: false,
    https: { host, port: server.ports.https },
    http: { host, port: server.ports.http },
    publicHttpsPort: server.ports.https,
    maxConnections: server.limits.maxConnections,
  });
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (finish = resolve));
  let stopping: Promise<void> | undefined;
  const stop = () => {
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
  start: startSnitchProxy,
};
