// Fetches a customer's site the way a client on the internet would: TLS with SNI to snitch-proxy,
// verifying the certificate against the box's own CA (verification stays on).
import { readFile } from "node:fs/promises";
import { get } from "node:https";
import type { ApplianceInfo } from "./appliance.ts";

/** What the site answered. */
export interface SiteAnswer {
  readonly status: number;
  readonly body: string;
}

/**
 * GETs `https://<host><path>` through snitch-proxy on 127.0.0.1:<https port>, with `host` as the
 * SNI server name and Host header, trusting only the box's CA.
 * @throws when TLS fails (an unknown CA, a name mismatch) or nothing answers within `timeoutMs`.
 */
export async function fetchSite(box: ApplianceInfo, host: string, path = "/", timeoutMs = 10_000): Promise<SiteAnswer> {
  const ca = await readFile(box.caFile);
  return new Promise((resolve, reject) => {
    const request = get(
      { host: "127.0.0.1", port: box.ports.https, path, servername: host, headers: { host }, ca, rejectUnauthorized: true, timeout: timeoutMs, agent: false },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.once("end", () => {
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") });
        });
        response.once("error", reject);
      },
    );
    request.once("timeout", () => request.destroy(new Error(`https://${host}${path}: no answer within ${timeoutMs} ms`)));
    request.once("error", reject);
  });
}
