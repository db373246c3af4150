// "Outside" for the tests of the harness's isolation: a network namespace the test makes beyond
// the host (a veth link routed by the host), serving HTTP. A machine that could reach it could
// reach the world; the test checks that it cannot, without sending a packet off this host.
import { spawn, type ChildProcess } from "node:child_process";
import { randomInt } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireProgram, stopChild, waitFor } from "@coyote/testing";
import { runProgram } from "./engine.ts";

/** A running outside: its address, and how to remove it. */
export interface Outside {
  /** The address of its HTTP server (port 80). */
  readonly address: string;
  stop(): Promise<void>;
}

/** Makes the namespace, its link, and a busybox HTTP server in it answering `outside`. */
export async function startOutside(): Promise<Outside> {
  const busybox = requireProgram("busybox");
  const id = `${String(process.pid % 100000)}${String(randomInt(0, 1000))}`;
  const ns = `coyote-out-${id}`;
  const hostLink = `co${id}h`.slice(0, 15);
  const nsLink = `co${id}n`.slice(0, 15);
  const third = randomInt(0, 256);
  const hostAddress = `10.237.${String(third)}.1`;
  const address = `10.237.${String(third)}.2`;
  const www = await mkdtemp(join(tmpdir(), "outside-"));
  let server: ChildProcess | undefined;
  const stop = async () => {
    if (server !== undefined) await stopChild(server, 5000);
    await runProgram("ip", ["link", "delete", hostLink]).catch(() => undefined);
    await runProgram("ip", ["netns", "delete", ns]).catch(() => undefined);
    await rm(www, { recursive: true, force: true });
  };
  try {
    await writeFile(join(www, "index.html"), "outside\n");
    await runProgram("ip", ["netns", "add", ns]);
    await runProgram("ip", ["link", "add", hostLink, "type", "veth", "peer", "name", nsLink]);
    await runProgram("ip", ["link", "set", nsLink, "netns", ns]);
    await runProgram("ip", ["address", "add", `${hostAddress}/30`, "dev", hostLink]);
    await runProgram("ip", ["link", "set", hostLink, "up"]);
    await runProgram("ip", ["-n", ns, "address", "add", `${address}/30`, "dev", nsLink]);
    await runProgram("ip", ["-n", ns, "link", "set", nsLink, "up"]);
    await runProgram("ip", ["-n", ns, "link", "set", "lo", "up"]);
    // Routed back to the host, so that a reply to a forwarded packet would find its way.
    await runProgram("ip", ["-n", ns, "route", "add", "default", "via", hostAddress]);
    server = spawn("ip", ["netns", "exec", ns, busybox, "httpd", "-f", "-p", "80", "-h", www], { stdio: "ignore" });
    await waitFor("the outside's HTTP server", async () => {
      const answer = await fetch(`http://${address}/`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
      return answer !== undefined && (await answer.text()) === "outside\n";
    }, { timeoutMs: 10_000, intervalMs: 100 });
  } catch (error) {
    await stop();
    throw error;
  }
  return { address, stop };
}
