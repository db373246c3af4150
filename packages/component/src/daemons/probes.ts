// The small tools the daemon catalogue's readiness checks and reload commands are made of: a
// bounded command runner and an SMTP-style banner probe. Each has a deadline and a size cap, since
// a daemon that hangs must not hang its supervisor.
import { spawn } from "node:child_process";
import { connect, type NetConnectOpts } from "node:net";

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

/** How a {@link conversationProbe} talks to a server. */
export interface Conversation {
  /** Said once connected, for a protocol where the client speaks first (a milter). */
  readonly opening?: Buffer;
  /** The most bytes read before judging anyway. */
  readonly cap: number;
  /**
   * Judges what was received so far (at most `cap` bytes): a result once it can tell, with what
   * to say before closing, or undefined to read on.
   */
  readonly judge: (received: Buffer, full: boolean) => { readonly result: ProbeResult; readonly farewell?: Buffer | string } | undefined;
  /** What the server is expected to do, in a failure's words: `greeting`, `milter negotiation`. */
  readonly expected: string;
}

/**
 * Connects to a server, has one short exchange with it, and passes or fails on what it answered,
 * within the deadline and reading at most the conversation's cap.
 * @param where the server's address in messages (`127.0.0.1:25`, a socket's path).
 */
export function conversationProbe(address: NetConnectOpts, where: string, timeoutMs: number, conversation: Conversation): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let received = Buffer.alloc(0);
    let settled = false;
    const socket = connect(address);
    const finish = (result: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ ok: false, why: `no ${conversation.expected} from ${where} within ${timeoutMs} ms` }), timeoutMs);
    socket.once("connect", () => {
      if (conversation.opening) socket.write(conversation.opening);
    });
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]).subarray(0, conversation.cap);
      const verdict = conversation.judge(received, received.length >= conversation.cap);
      if (verdict === undefined) return;
      if (verdict.farewell !== undefined) socket.write(verdict.farewell);
      finish(verdict.result);
    });
    socket.once("error", (error: NodeJS.ErrnoException) => finish({ ok: false, why: `connecting to ${where}: ${error.code ?? error.message}` }));
    socket.once("close", () => finish({ ok: false, why: `${where} closed the connection before its ${conversation.expected}` }));
  });
}

/**
 * Connects to `host:port`, reads the greeting line (at most 512 bytes, within the deadline), says
 * QUIT and tells whether the greeting matches `expect` (`/^220[ -]/` for SMTP).
 */
export function bannerProbe(host: string, port: number, expect: RegExp, timeoutMs: number): Promise<ProbeResult> {
  const where = `${host}:${port}`;
  return conversationProbe({ host, port }, where, timeoutMs, {
    cap: 512,
    expected: "greeting",
    judge: (received, full) => {
      const text = received.toString("latin1");
      const end = text.indexOf("\n");
      if (end === -1 && !full) return undefined;
      const line = (end === -1 ? text : text.slice(0, end)).replace(/\r$/, "");
      return expect.test(line) ? { result: { ok: true }, farewell: "QUIT\r\n" } : { result: { ok: false, why: `${where} greeted with ${JSON.stringify(line.slice(0, 120))}` } };
    },
  });
}
