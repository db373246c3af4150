/**
 * `@coyote/testing`: what the tests and benchmarks of every package share: free ports, the system
 * programs a test needs (programs.ts), waiting for a condition (wait.ts), stopping a process by its
 * pid (processes.ts), temporary folders (temp.ts), reading a component's log (logs.ts), and the
 * whole appliance (appliance.ts). A package's own test helpers stay in its `src/test/`. Free ports are found by
 * binding port 0 on 127.0.0.1 and releasing it; another process may take it in between, which on
 * a test machine is rare enough that the daemon's own "address in use" error is the report.
 */
import { createSocket } from "node:dgram";
import { createServer, type Server } from "node:net";

function listenTcp(port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(undefined));
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

function portOf(server: Server): number {
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("finding a free port: the socket has no port");
  return address.port;
}

/** A loopback TCP port that is free right now. */
export async function freePort(): Promise<number> {
  return (await freePorts(1))[0] ?? 0;
}

/** `count` different loopback TCP ports that are free right now (all held at once, so they differ). */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = await listenTcp(0);
      if (server === undefined) throw new Error("finding a free port: cannot listen on 127.0.0.1");
      servers.push(server);
    }
    return servers.map(portOf);
  } finally {
    await Promise.all(servers.map(close));
  }
}

/** A loopback UDP port that is free right now. */
export async function freeUdpPort(): Promise<number> {
  const socket = createSocket("udp4");
  const port = await new Promise<number>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(0, "127.0.0.1", () => resolve(socket.address().port));
  });
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** A loopback port free for both UDP and TCP right now (a DNS server listens on both). */
export async function freeUdpTcpPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const udp = createSocket("udp4");
    const port = await new Promise<number>((resolve, reject) => {
      udp.once("error", reject);
      udp.bind(0, "127.0.0.1", () => resolve(udp.address().port));
    });
    const tcp = await listenTcp(port);
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (tcp !== undefined) {
      await close(tcp);
      return port;
    }
  }
  throw new Error("finding a free port: no loopback port free for both UDP and TCP in 50 tries");
}

export { findProgram, IN_CI, requireProgram, skipWithout } from "./programs.ts";
export { logEvents, logRecords } from "./logs.ts";
export { alive, stopChild, stopPid } from "./processes.ts";
export { daemonTempDir, tempDir, tempDirs, type TempDir } from "./temp.ts";
export { waitFor, type WaitOptions } from "./wait.ts";
export { describeLogs, launchAppliance, stopAppliance, writeLoopbackServer, type ApplianceLoopbackPorts, type LaunchedAppliance } from "./appliance.ts";
