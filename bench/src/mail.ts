// bench/mail: messages per second that Coyote's mail accepts over authenticated submission (587,
// STARTTLS, a login through Dovecot, own-address senders, DKIM-signed by OpenDKIM) and delivers
// to a mailbox on the box, beside a hand-written minimal Postfix accepting the same messages over
// plain SMTP and delivering them the same way, in one interleaved run. The ratio is what Coyote's configuration
// costs. Needs root (Postfix and Dovecot switch to their own users) and the Debian packages
// postfix, dovecot-core, dovecot-imapd and opendkim.
//
//   node --import tsx bench/src/mail.ts [--rounds 3] [--messages 1000] [--connections 4] [--size 2048]
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import nodemailer from "nodemailer";
import { freePorts } from "@coyote/testing";
import { delivered, MAIL_HOST, MAILBOX, SENDER, SENDER_PASSWORD, startCoyoteMail, startMinimalPostfix, type MailInstance } from "./lib/mail-instances.ts";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    messages: { type: "string", default: "1000" },
    connections: { type: "string", default: "4" },
    size: { type: "string", default: "2048" },
  },
});
const ROUNDS = Number(values.rounds);
const MESSAGES = Number(values.messages);
const CONNECTIONS = Number(values.connections);
const SIZE = Number(values.size);
for (const [name, value, max] of [["rounds", ROUNDS, 20], ["messages", MESSAGES, 100_000], ["connections", CONNECTIONS, 64], ["size", SIZE, 10_000_000]] as const) {
  if (!Number.isInteger(value) || value < 1 || value > max) throw new Error(`--${name} must be a whole number from 1 to ${String(max)}`);
}
/** No round may run longer than this, whatever the machine does. */
const ROUND_LIMIT_MS = 300_000;

const out = (line: string) => process.stdout.write(`${line}\n`);
const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
};

interface RoundResult {
  /** Messages accepted per second (the last 250 answer, from the first send). */
  readonly acceptedPerSecond: number;
  /** Messages delivered per second (the last one in the Maildir, from the first send). */
  readonly deliveredPerSecond: number;
  readonly failed: number;
}

/** Sends MESSAGES messages through `instance` over a pool of CONNECTIONS, and waits until all are delivered. */
async function round(instance: MailInstance, ca: string): Promise<RoundResult> {
  const coyote = instance.name === "coyote";
  const transport = nodemailer.createTransport({
    pool: true,
    maxConnections: CONNECTIONS,
    maxMessages: Number.POSITIVE_INFINITY,
    host: "127.0.0.1",
    port: instance.port,
    secure: false,
    ...(coyote ? { requireTLS: true, tls: { ca, servername: MAIL_HOST, minVersion: "TLSv1.2" as const }, auth: { user: SENDER, pass: SENDER_PASSWORD } } : { ignoreTLS: true }),
    connectionTimeout: 15_000,
    greetingTimeout: 15_000,
    socketTimeout: 30_000,
  });
  const body = "x".repeat(76).concat("\r\n").repeat(Math.ceil(SIZE / 78)).slice(0, SIZE);
  const before = delivered(instance.inbox);
  const started = performance.now();
  let failed = 0;
  let next = 0;
  const deadline = started + ROUND_LIMIT_MS;
  const worker = async () => {
    while (next < MESSAGES && performance.now() < deadline) {
      const n = next++;
      await transport.sendMail({ from: SENDER, to: MAILBOX, subject: `bench ${String(n)}`, text: body }).catch(() => failed++);
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  const acceptedAt = performance.now();
  transport.close();
  const want = before + MESSAGES - failed;
  while (delivered(instance.inbox) < want && performance.now() < deadline) await sleep(20);
  const deliveredAt = performance.now();
  const count = delivered(instance.inbox) - before;
  if (count < MESSAGES - failed) throw new Error(`${instance.name}: only ${String(count)} of ${String(MESSAGES - failed)} messages delivered within ${String(ROUND_LIMIT_MS / 1000)} s`);
  return { acceptedPerSecond: (MESSAGES - failed) / ((acceptedAt - started) / 1000), deliveredPerSecond: count / ((deliveredAt - started) / 1000), failed };
}

if (process.getuid?.() !== 0) throw new Error("bench/mail needs root: Postfix and Dovecot switch to their own users");
// Not under /tmp: OpenDKIM refuses keys below a folder everyone may write to.
const root = mkdtempSync(join("/run", "coyote-bench-mail-"));
// mkdtemp makes 0700; the daemons' own users (postfix, dovecot, the mailboxes' uid) must pass through.
chmodSync(root, 0o755);
const instances: MailInstance[] = [];
try {
  const [smtp = 0, submission = 0, submissions = 0, imap = 0, imaps = 0, minimalPort = 0] = await freePorts(6);
  const { instance: coyote, ca } = await startCoyoteMail(root, { smtp, submission, submissions, imap, imaps });
  instances.push(coyote);
  const minimal = await startMinimalPostfix(root, minimalPort);
  instances.push(minimal);
  out(`machine: ${String(availableParallelism())} cores, load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  out(`run: ${String(ROUNDS)} rounds × (coyote, minimal), ${String(MESSAGES)} messages of ${String(SIZE)} bytes each, ${String(CONNECTIONS)} connections`);
  const results: Record<string, RoundResult[]> = { coyote: [], minimal: [] };
  // A warm-up round each, not counted: the first connections and the first delivery make folders.
  for (const instance of instances) await round(instance, ca);
  // What is measured is what a box does: Coyote's messages arrive signed.
  const sample = readdirSync(coyote.inbox)[0];
  if (sample === undefined || !readFileSync(join(coyote.inbox, sample), "utf8").includes("DKIM-Signature: ")) throw new Error(`coyote's messages arrive without a DKIM signature (${sample ?? "none delivered"})`);
  for (let r = 1; r <= ROUNDS; r++) {
    for (const instance of r % 2 === 1 ? instances : [...instances].reverse()) {
      const result = await round(instance, ca);
      results[instance.name]?.push(result);
      out(`round ${String(r)} ${instance.name.padEnd(8)} accepted ${result.acceptedPerSecond.toFixed(0).padStart(6)}/s  delivered ${result.deliveredPerSecond.toFixed(0).padStart(6)}/s  failed ${String(result.failed)}`);
    }
  }
  const med = (name: string, key: "acceptedPerSecond" | "deliveredPerSecond") => median((results[name] ?? []).map((x) => x[key]));
  out("");
  out(`| mail (median of ${String(ROUNDS)} × ${String(MESSAGES)} messages) | accepted per second | delivered per second |`);
  out("|---|---|---|");
  out(`| Coyote: submission 587, STARTTLS, login, DKIM-signed | ${med("coyote", "acceptedPerSecond").toFixed(0)} | ${med("coyote", "deliveredPerSecond").toFixed(0)} |`);
  out(`| minimal Postfix: plain SMTP | ${med("minimal", "acceptedPerSecond").toFixed(0)} | ${med("minimal", "deliveredPerSecond").toFixed(0)} |`);
  out("");
  out(`ratios coyote/minimal: accepted ${(med("coyote", "acceptedPerSecond") / med("minimal", "acceptedPerSecond")).toFixed(2)}×, delivered ${(med("coyote", "deliveredPerSecond") / med("minimal", "deliveredPerSecond")).toFixed(2)}×; load average at the end ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
} finally {
  for (const instance of instances) await instance.stop().catch((error: unknown) => out(`stopping ${instance.name}: ${String(error)}`));
  if (process.env.BENCH_MAIL_KEEP === undefined) rmSync(root, { recursive: true, force: true });
  else out(`kept ${root}`);
}
