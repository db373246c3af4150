// bench/proxy's snitch-proxy process: runs snitch-proxy on its own, as nginx and Caddy run on
// their own, so that the three are measured alike. It makes a state folder with one route
// (the site name → the backend) and the bench certificate, starts the proxy without access logs, and
// prints `READY {"port":N}` on standard output for bench/src/proxy.ts. It stops on SIGTERM or
// SIGINT, and when its standard input closes (the benchmark died), so it is never left behind.
//
//   node --import tsx src/proxy-server.ts --state DIR --port N --backend 127.0.0.1:PORT --host NAME --key FILE --chain FILE [--workers N] [--cluster]
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createLogger } from "@coyote/log";
import type { ProxyRoutes } from "@coyote/spec";
import { certificateFile, startProxy, startProxyCluster } from "@coyote/snitch-proxy";

const { values } = parseArgs({
  options: {
    state: { type: "string" },
    port: { type: "string", default: "0" },
    backend: { type: "string" },
    host: { type: "string" },
    key: { type: "string" },
    chain: { type: "string" },
    // Processes to run: 1 runs the proxy in this process, more run its cluster of workers.
    workers: { type: "string", default: "1" },
    // Runs the cluster even with one worker (what `coyote up` runs: a parent and its workers).
    cluster: { type: "boolean", default: false },
    // The route opts in to Strict-Transport-Security (bench/tls-audit rates the headers too).
    hsts: { type: "boolean", default: false },
  },
});

const { state, backend, host, key, chain } = values;
if (state === undefined || backend === undefined || host === undefined || key === undefined || chain === undefined) {
  process.stderr.write("usage: proxy-server.ts --state DIR --port N --backend HOST:PORT --host NAME --key FILE --chain FILE [--workers 1] [--cluster]\n");
  process.exit(2);
}
const workers = Number(values.workers);
if (!Number.isInteger(workers) || workers < 1) {
  process.stderr.write(`proxy-server: --workers ${values.workers}: not a positive whole number\n`);
  process.exit(2);
}

const proxyDir = join(state, "proxy");
const certsDir = join(proxyDir, "certs");
await mkdir(certsDir, { recursive: true, mode: 0o700 });
const routes: ProxyRoutes = {
  schemaVersion: 1,
  generatedAt: new Date().toISOString(),
  routes: [{ host, pathPrefix: "/", serviceId: "bench", upstream: { kind: "address", address: backend }, ...(values.hsts ? { hsts: true } : {}) }],
};
await writeFile(join(proxyDir, "routes.json"), `${JSON.stringify(routes, null, 2)}\n`);
// One file with the key and the chain, as snickers stores certificates (0600: it holds the key).
const certFile = certificateFile(certsDir, host);
const [keyPem, chainPem] = await Promise.all([readFile(key, "utf8"), readFile(chain, "utf8")]);
await writeFile(certFile, keyPem + chainPem, { mode: 0o600 });
await chmod(certFile, 0o600);

const logger = createLogger({ component: "snitch-proxy", file: join(state, "proxy.log") });
const https = { host: "127.0.0.1", port: Number(values.port) };
// One process is snitch-proxy's library form; several are its cluster (SO_REUSEPORT workers).
const proxy = workers === 1 && !values.cluster
  ? await startProxy({ stateDir: state, logger, https, accessLog: false, writeStats: true })
  : await startProxyCluster({ stateDir: state, logger, logFile: join(state, "proxy.log"), https, accessLog: false, workers });

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  // Bounded: a connection that will not close must not keep the process alive.
  const hard = setTimeout(() => process.exit(1), 5000);
  hard.unref();
  proxy
    .stop(1000)
    .then(() => logger.close())
    .then(
      () => process.exit(0),
      () => process.exit(1),
    );
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.on("close", stop);
process.stdin.resume();

process.stdout.write(`READY ${JSON.stringify({ port: proxy.httpsAddress.port, pid: process.pid })}\n`);
