// The small tools the daemon catalogue's readiness checks and reload commands are made of: a
// bounded command runner and an SMTP-style banner probe. Each has a deadline and a size cap, since
// a daemon that hangs must not hang its supervisor.
import { spawn } from "node:child_process";
import { connect } from "node:net";

/** What a readiness check found: ready, or not yet with the reason (shown by `coyote status`). */
export type ProbeResult = { readonly ok: true } | { readonly ok: false; readonly why: string };

/** The outcome of a command run by {@link runBounded}. */
export interface CommandOutcome {
  /** The exit code, or undefined when it was killed (deadline or signal). */
  readonly code: number | undefined;
  /** Standard output and error together, cut at the cap. */
  readonly output: string;
}

const OUTPUT_CAP = 64 * 1024;

/**
 * Runs a program with a deadline and keeps at most 64 KiB of its output. Never throws: a program
 * that cannot start gives code undefined and the reason as output.
 */
export function runBounded(program: string, args: readonly string[], timeoutMs: number, signal?: AbortSignal): Promise<CommandOutcome> {
  return new Promise((resolve) => {
    let output = "";
    const child = spawn(program, [...args], { stdio: ["ignore", "pipe", "pipe"] });
    const take = (chunk: Buffer) => {
      if (output.length < OUTPUT_CAP) output += chunk.toString("utf8").slice(0, OUTPUT_CAP - output.length);
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    const kill = () => child.kill("SIGKILL");
    const timer = setTimeout(kill, timeoutMs);
    signal?.addEventListener("abort", kill, { once: true });
    child.once("error", (error) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", kill);
      resolve({ code: undefined, output: error.message });
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", kill);
      resolve({ code: code ?? undefined, output });
    });
  });
}

/** A probe that passes when a command exits with 0. */
export async function commandProbe(program: string, args: readonly string[], timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> {
  const result = await runBounded(program, args, timeoutMs, signal);
  if (result.code === 0) return { ok: true };
  const text = result.output.trim().split("\n").slice(-2).join(" ").slice(0, 300);
  return { ok: false, why: `${program} ${args.join(" ")} ${result.code === undefined ? "did not finish" : `exited with ${result.code}`}${text ? `: ${text}` : ""}` };
}

/**
 * Connects to `host:port`, reads the greeting line (at most 512 bytes, within the deadline), says
 * QUIT and tells whether the greeting matches `expect` (`/^220[ -]/` for SMTP).
 */
export function bannerProbe(host: string, port: number, expect: RegExp, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let buffered = "";
    let settled = false;
    const socket = connect({ host, port });
    const finish = (result: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ ok: false, why: `no greeting from ${host}:${port} within ${timeoutMs} ms` }), timeoutMs);
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      buffered += chunk;
      const end = buffered.indexOf("\n");
      if (end === -1 && buffered.length < 512) return;
      const line = (end === -1 ? buffered : buffered.slice(0, end)).replace(/\r$/, "").slice(0, 512);
      if (expect.test(line)) {
        socket.write("QUIT\r\n");
        finish({ ok: true });
      } else finish({ ok: false, why: `${host}:${port} greeted with ${JSON.stringify(line.slice(0, 120))}` });
    });
    socket.once("error", (error: NodeJS.ErrnoException) => finish({ ok: false, why: `connecting to ${host}:${port}: ${error.code ?? error.message}` }));
    socket.once("close", () => finish({ ok: false, why: `${host}:${port} closed the connection before greeting` }));
  });
}
