// The peers bench/proxy measures snitch-proxy against, started from a work folder: an nginx
// backend answering a small fixed body, nginx and Caddy as TLS reverse proxies to it (HTTP/1.1 and
// HTTP/2 on one listener, chosen by ALPN), and snitch-proxy itself in a process of its own
// (bench/src/proxy-server.ts, from this tree or from an earlier commit's).
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LocalCa } from "@coyote/actuator-snickers";
import { startDaemon, type Daemon } from "./proc.ts";

export const NGINX = "/usr/sbin/nginx";
export const CADDY = "/usr/bin/caddy";

/** What every peer shares: the work folder, the site name and its certificate files. */
export interface PeerSetup {
  readonly workDir: string;
  readonly host: string;
  readonly keyFile: string;
  readonly chainFile: string;
  /** Every daemon started is added here, so that the benchmark's cleanup stops it. */
  readonly daemons: Daemon[];
}

/**
 * Makes the one certificate every peer serves (ECDSA P-256 from a local CA, for `host`) in
 * `<workDir>/tls`, and the setup that names it; `caFile` is the CA to trust.
 */
export async function benchSetup(workDir: string, host: string, daemons: Daemon[]): Promise<{ setup: PeerSetup; caPem: string; caFile: string }> {
  const tlsDir = join(workDir, "tls");
  mkdirSync(tlsDir, { mode: 0o700 });
  const ca = await LocalCa.open(join(workDir, "ca"), "bench");
  const issued = ca.issue([host]);
  const setup: PeerSetup = { workDir, host, keyFile: join(tlsDir, "key.pem"), chainFile: join(tlsDir, "chain.pem"), daemons };
  writeFileSync(setup.keyFile, issued.keyPem, { mode: 0o600 });
  writeFileSync(setup.chainFile, issued.chainPem, { mode: 0o644 });
  const caFile = join(tlsDir, "ca.pem");
  writeFileSync(caFile, ca.certificatePem);
  return { setup, caPem: ca.certificatePem, caFile };
}

/**
 * nginx in its own prefix: -e moves even the error log nginx opens before reading its
 * configuration, and every temp path is set so that nothing under /var/lib/nginx is touched.
 * Listeners use reuseport: without it one worker tends to take all of wrk's connections at once
 * and serve them on one core (measured: 0.55 of a core and 7.8k req/s instead of both workers).
 */
function startNginx(setup: PeerSetup, name: string, dir: string, http: string): { daemon: Daemon; errorLog: string } {
  mkdirSync(join(dir, "tmp"), { recursive: true });
  // nginx's workers (nobody) must reach their temp folders; the key is read by the master.
  chmodSync(setup.workDir, 0o711);
  chmodSync(dir, 0o755);
  const temps = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `  ${t}_temp_path ${join(dir, "tmp", t)};`).join("\n");
  const conf = `worker_processes auto;
error_log ${join(dir, "error.log")} warn;
pid ${join(dir, "nginx.pid")};
events { worker_connections 4096; }
http {
  access_log off;
${temps}
  # Connections stay open for the whole run (nginx's default closes one every 1000 requests, over
  # HTTP/1.1 and HTTP/2 alike; Node and Caddy set no such limit).
  keepalive_requests 1000000;
  keepalive_timeout 65s;
${http}
}
`;
  writeFileSync(join(dir, "nginx.conf"), conf);
  const daemon = startDaemon(name, NGINX, ["-p", `${dir}/`, "-e", join(dir, "error.log"), "-c", join(dir, "nginx.conf"), "-g", "daemon off;"], join(dir, "output.log"));
  setup.daemons.push(daemon);
  return { daemon, errorLog: join(dir, "error.log") };
}

/** The backend every proxy forwards to: nginx answering `body` on plain HTTP. */
export function startBackend(setup: PeerSetup, port: number, body: string): { daemon: Daemon; errorLog: string } {
  return startNginx(
    setup,
    "backend nginx",
    join(setup.workDir, "backend"),
    `  server {
    listen 127.0.0.1:${port} reuseport;
    location / {
      default_type text/plain;
      return 200 ${JSON.stringify(body)};
    }
  }`,
  );
}

/** nginx as the TLS reverse proxy, with a keep-alive pool of 64 to the backend. */
export function startNginxProxy(setup: PeerSetup, port: number, backendPort: number): { daemon: Daemon; errorLog: string } {
  return startNginx(
    setup,
    "nginx",
    join(setup.workDir, "nginx"),
    `  upstream backend {
    server 127.0.0.1:${backendPort};
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port} ssl http2 reuseport;
    server_name ${setup.host};
    ssl_certificate ${setup.chainFile};
    ssl_certificate_key ${setup.keyFile};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:1m;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
    }
  }`,
  );
}

/**
 * Caddy from JSON (its canonical format). No admin endpoint, no automatic HTTPS (so no ACME), no
 * OCSP stapling fetches, storage and HOME in the work folder, runtime log to a file, no access
 * log (a server logs requests only when it has a "logs" section).
 */
export function startCaddy(setup: PeerSetup, port: number, backendPort: number): { daemon: Daemon; errorLog: string } {
  const dir = join(setup.workDir, "caddy");
  mkdirSync(dir, { recursive: true });
  const config = {
    admin: { disabled: true, config: { persist: false } },
    logging: { logs: { default: { level: "WARN", writer: { output: "file", filename: join(dir, "caddy.log") } } } },
    storage: { module: "file_system", root: join(dir, "data") },
    apps: {
      http: {
        servers: {
          bench: {
            listen: [`127.0.0.1:${port}`],
            protocols: ["h1", "h2"],
            automatic_https: { disable: true },
            tls_connection_policies: [{ match: { sni: [setup.host] }, certificate_selection: { any_tag: ["bench"] } }],
            routes: [
              {
                match: [{ host: [setup.host] }],
                handle: [
                  {
                    handler: "reverse_proxy",
                    // The same idle keep-alive pool as nginx's "keepalive 64".
                    transport: { protocol: "http", keep_alive: { max_idle_conns_per_host: 64 } },
                    upstreams: [{ dial: `127.0.0.1:${backendPort}` }],
                  },
                ],
                terminal: true,
              },
            ],
          },
        },
      },
      tls: {
        certificates: { load_files: [{ certificate: setup.chainFile, key: setup.keyFile, tags: ["bench"] }] },
        automation: { policies: [{ disable_ocsp_stapling: true }] },
        disable_ocsp_stapling: true,
      },
    },
  };
  writeFileSync(join(dir, "caddy.json"), JSON.stringify(config, null, 2));
  const env = { PATH: process.env.PATH, HOME: dir, XDG_DATA_HOME: join(dir, "data"), XDG_CONFIG_HOME: join(dir, "config") };
  const daemon = startDaemon("caddy", CADDY, ["run", "--config", join(dir, "caddy.json")], join(dir, "output.log"), { env, cwd: dir });
  setup.daemons.push(daemon);
  return { daemon, errorLog: join(dir, "output.log") };
}

/** This tree's probe (probe.ts), loadable into any snitch-proxy, this tree's or a baseline's. */
const PROBE = new URL("./probe.ts", import.meta.url).href;

/**
 * snitch-proxy in its own Node process, like the peers, from the bench folder `benchDir` (this
 * tree's, or an earlier commit's). `profileDir` asks for a CPU profile (node --cpu-prof);
 * `nodeFlags` are added to Node's flags (a cluster's workers inherit them); `probeDir` loads the
 * probe into every process (probe.ts), which writes there on SIGUSR2.
 */
export function startSnitch(setup: PeerSetup, options: { name: string; benchDir: string; port: number; backendPort: number; workers: string; cluster?: boolean; profileDir?: string; hsts?: boolean; nodeFlags?: readonly string[]; probeDir?: string }): { daemon: Daemon; errorLog: string; stateDir: string } {
  const stateDir = join(setup.workDir, options.name);
  mkdirSync(stateDir, { recursive: true });
  if (options.probeDir !== undefined) mkdirSync(options.probeDir, { recursive: true });
  const args = [
    ...(options.profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${options.profileDir}`]),
    ...(options.nodeFlags ?? []),
    "--import", "tsx",
    ...(options.probeDir === undefined ? [] : ["--import", PROBE]),
    join(options.benchDir, "src", "proxy-server.ts"),
    "--state", stateDir,
    "--port", String(options.port),
    "--backend", `127.0.0.1:${options.backendPort}`,
    "--host", setup.host,
    "--key", setup.keyFile,
    "--chain", setup.chainFile,
    "--workers", options.workers,
    // Only where it changes something: an earlier tree's proxy-server may not know the flag.
    ...(options.cluster === true && options.workers === "1" ? ["--cluster"] : []),
    ...(options.hsts === true ? ["--hsts"] : []),
  ];
  const env = options.probeDir === undefined ? process.env : { ...process.env, BENCH_PROBE_DIR: options.probeDir };
  const daemon = startDaemon(options.name, process.execPath, args, join(stateDir, "output.log"), { cwd: options.benchDir, stdin: "pipe", stdout: "pipe", env });
  setup.daemons.push(daemon);
  return { daemon, errorLog: join(stateDir, "output.log"), stateDir };
}
