import { createSocket } from "node:dgram";
import { mkdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { decode, encode, RECURSION_DESIRED } from "dns-packet";
import { z } from "zod";
import { writeFileAtomic } from "@coyote/spec";

/**
 * The ACME DNS-01 challenges the built-in DNS server serves on top of its zones:
 * `<stateDir>/dns/acme-challenges.json`, written by snickers while a wildcard certificate is
 * ordered, watched by the server (docs/ARCHITECTURE.md, "On disk").
 */
export const AcmeChallengesFile = z.strictObject({
  schemaVersion: z.literal(1),
  records: z.array(z.strictObject({
    name: z.string().regex(/^_acme-challenge\.[a-z0-9.-]+$/, { error: "a challenge record is named _acme-challenge.<domain>" }),
    value: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, { error: "a challenge value is base64url" }),
  })).max(1000),
});
/** The ACME DNS-01 challenges the built-in DNS server serves. */
export type AcmeChallengesFile = z.infer<typeof AcmeChallengesFile>;

/** Where the challenges file is in a state folder. */
export function acmeChallengesPath(stateDir: string): string {
  return join(stateDir, "dns", "acme-challenges.json");
}

/** Reads the challenges file; an absent or broken one holds none. */
export async function readAcmeChallenges(file: string): Promise<AcmeChallengesFile["records"]> {
  try {
    return AcmeChallengesFile.parse(JSON.parse(await readFile(file, "utf8"))).records;
  } catch {
    return [];
  }
}

async function change(stateDir: string, edit: (records: AcmeChallengesFile["records"]) => AcmeChallengesFile["records"]): Promise<void> {
  const file = acmeChallengesPath(stateDir);
  await mkdir(dirname(file), { recursive: true });
  const records = edit(await readAcmeChallenges(file));
  await writeFileAtomic(file, `${JSON.stringify(AcmeChallengesFile.parse({ schemaVersion: 1, records }), null, 2)}\n`, { durable: false });
}

/** Adds a TXT value at `_acme-challenge.<domain>` (several may coexist, as for `x` and `*.x`). */
export function publishAcmeChallenge(stateDir: string, domain: string, value: string): Promise<void> {
  const name = `_acme-challenge.${domain}`;
  return change(stateDir, (records) => [...records.filter((r) => !(r.name === name && r.value === value)), { name, value }]);
}

/** Removes a TXT value published by {@link publishAcmeChallenge}. */
export function withdrawAcmeChallenge(stateDir: string, domain: string, value: string): Promise<void> {
  const name = `_acme-challenge.${domain}`;
  return change(stateDir, (records) => records.filter((r) => !(r.name === name && r.value === value)));
}

/**
 * Waits until a DNS server at `host:port` answers `value` among the TXT records of `name`, so that
 * the CA is told to validate only once the record is really served.
 * @throws an Error naming the name and the server when it does not within `timeoutMs`.
 */
export async function waitForTxt(address: string, name: string, value: string, timeoutMs = 10_000): Promise<void> {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:]+)):(\d+)$/.exec(address);
  const host = match?.[1] ?? match?.[2] ?? "127.0.0.1";
  const port = Number(match?.[3]);
  const deadline = Date.now() + timeoutMs;
  let id = 1;
  while (Date.now() < deadline) {
    const answers = await new Promise<string[]>((resolve) => {
      const socket = createSocket(host.includes(":") ? "udp6" : "udp4");
      const timer = setTimeout(() => {
        socket.close();
        resolve([]);
      }, 500);
      socket.on("message", (message) => {
        clearTimeout(timer);
        socket.close();
        try {
          const packet = decode(message);
          resolve((packet.answers ?? []).flatMap((a) => (a.type === "TXT" ? (Array.isArray(a.data) ? a.data : [a.data]).map((d) => d.toString()) : [])));
        } catch {
          resolve([]);
        }
      });
      socket.on("error", () => {
        clearTimeout(timer);
        socket.close();
        resolve([]);
      });
      socket.send(encode({ type: "query", id: id++, flags: RECURSION_DESIRED, questions: [{ type: "TXT", name }] }), port, host);
    });
    if (answers.includes(value)) return;
    await sleep(100);
  }
  throw new Error(`the dns server at ${address} does not serve TXT ${value} at ${name} after ${timeoutMs} ms`);
}
