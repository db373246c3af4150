/**
 * Asking the CA when to renew (ARI, RFC 9773), in the background: the question goes to the CA,
 * which may stall, so it never runs under the minion's apply lock.
 */
import { randomInt } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { CoyoteLogger } from "@coyote/log";
import { parseJson, writeFileAtomic } from "@coyote/spec";
import type { AcmeIssuer } from "./acme.ts";
import { CertificateMeta, metaFile, pemFile } from "./certificate-meta.ts";

/** What one renewal question needs. */
export interface RenewalQuestion {
  readonly issuer: AcmeIssuer;
  readonly certsDir: string;
  readonly host: string;
  readonly now: () => number;
  readonly logger: CoyoteLogger;
  /** Aborts the question (its deadline, or the minion stopping). */
  readonly signal: AbortSignal;
}

/**
 * Asks the CA for a certificate's renewal window and records the answer in its meta file: a
 * random moment inside the window becomes the renewal time. A CA without ARI is not asked again;
 * a failed question is asked again in 6 hours, the renewal time set at issue standing meanwhile.
 */
export async function askRenewal(question: RenewalQuestion): Promise<void> {
  const { issuer, certsDir, host, now, logger, signal } = question;
  const file = metaFile(certsDir, host);
  const meta = await readFile(file, "utf8").then((text) => parseJson(CertificateMeta, text, `proxy/certs/${host}`), () => undefined);
  const current = meta?.certificate;
  if (!meta || !current) return;
  const advice = await issuer.renewalAdvice(await readFile(pemFile(certsDir, host), "utf8"), new Date(now()), signal).then(
    (found) => found ?? null,
    (error: unknown) => {
      logger.warn({ err: error, host }, "asking the CA for renewal info failed; keeping the current renewal time");
      return undefined;
    },
  );
  let updated: CertificateMeta;
  if (advice === null) {
    // The CA offers no ARI: the renewal time set at issue stands, and it is not asked again.
    const { ariNextCheckAt: _asked, ...rest } = current;
    updated = { ...meta, certificate: rest };
  } else if (advice === undefined) {
    updated = { ...meta, certificate: { ...current, ariNextCheckAt: new Date(now() + 6 * 3_600_000).toISOString() } };
  } else {
    // A random moment inside the suggested window (RFC 9773 §4.2), so renewals spread out.
    const span = advice.windowEnd.getTime() - advice.windowStart.getTime();
    const renewAfter = new Date(advice.windowStart.getTime() + randomInt(Math.max(1, span))).toISOString();
    updated = { ...meta, certificate: { ...current, renewAfter, ariNextCheckAt: advice.nextCheckAt.toISOString() } };
  }
  await writeFileAtomic(file, `${JSON.stringify(updated, null, 2)}\n`, { mode: 0o600 });
}
