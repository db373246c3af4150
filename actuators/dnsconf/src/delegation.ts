// Asks one authoritative server, without recursion, which name servers a name is delegated to:
// the NS records the parent zone holds for it (a referral's authority section, or the answer when
// the server holds the child zone itself). The minion uses it to see whether a customer's domain
// is delegated to this box, which proves that its owner chose the box.
import { randomInt } from "node:crypto";
import { createSocket } from "node:dgram";
import { isIP } from "node:net";
import { decode, encode } from "dns-packet";

/** How long the one query may take. */
const DEFAULT_TIMEOUT_MS = 2000;

/**
 * The name servers `name` is delegated to, as `server` answers without recursion.
 * @param server the address and port of an authoritative server of the parent zone.
 * @param name the delegated name (lowercase, no trailing dot).
 * @param timeoutMs how long to wait for the answer.
 * @returns the name servers (lowercase, no trailing dot; none when the server knows no delegation),
 *   or why there is no answer.
 */
export async function queryDelegation(server: { readonly host: string; readonly port: number }, name: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<{ names: string[] } | { error: string }> {
  const family = isIP(server.host);
  if (family === 0) return { error: `not an IP address: ${server.host}` };
  const id = randomInt(1, 65536);
  const socket = createSocket(family === 6 ? "udp6" : "udp4");
  try {
    return await new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ error: `no answer from ${server.host}:${server.port} within ${timeoutMs} ms` }), timeoutMs);
      const done = (result: { names: string[] } | { error: string }) => {
        clearTimeout(timer);
        resolve(result);
      };
      socket.on("error", (error) => done({ error: error.message }));
      socket.on("message", (message, remote) => {
        // Only the server asked may answer, and only this question: anything else is ignored.
        if (remote.address !== server.host || remote.port !== server.port) return;
        let packet;
        try {
          packet = decode(message);
        } catch {
          return;
        }
        if (packet.id !== id || packet.type !== "response" || packet.questions?.[0]?.name.toLowerCase() !== name) return;
        // The low four bits of the flags: 0 no error, 3 no such name; anything else is a refusal or a failure.
        const rcode = (packet.flags ?? 0) & 0xf;
        if (rcode !== 0 && rcode !== 3) {
          done({ error: `${server.host}:${server.port} answered with response code ${rcode}` });
          return;
        }
        const records = [...(packet.answers ?? []), ...(packet.authorities ?? [])];
        const names = records.flatMap((r) => (r.type === "NS" && r.name.toLowerCase() === name ? [r.data.toLowerCase().replace(/\.$/, "")] : []));
        done({ names: [...new Set(names)].slice(0, 20) });
      });
      // No recursion: the parent's own view of the delegation, not a resolver's.
      socket.send(encode({ type: "query", id, flags: 0, questions: [{ type: "NS", name }] }), server.port, server.host);
    });
  } finally {
    socket.close();
  }
}
