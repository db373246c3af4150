import { createSocket } from "node:dgram";
import { setTimeout as sleep } from "node:timers/promises";
import { decode, encode, RECURSION_DESIRED } from "dns-packet";
import { DnsconfError } from "./errors.ts";

/**
 * `dns/acme-challenges.json`, the ACME DNS-01 challenges the built-in DNS server serves on top of
 * its zones: its schema and its one writer (under a lock) are in `@coyote/spec`, re-exported here
 * for the actuators that order certificates through dnsconf.
 */
export { AcmeChallengesFile, acmeChallengesPath, publishAcmeChallenge, readAcmeChallenges, withdrawAcmeChallenge } from "@coyote/spec";

/**
 * Waits until a DNS server at `host:port` answers `value` among the TXT records of `name`, so that
 * the CA is told to validate only once the record is really served.
 * @throws DnsconfError `DNSCONF_ERR_TXT_NOT_SERVED`, naming the name and the server, when it does
 *   not within `timeoutMs`.
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
  throw new DnsconfError("DNSCONF_ERR_TXT_NOT_SERVED", `the dns server at ${address} does not serve TXT ${value} at ${name} after ${timeoutMs} ms`);
}
