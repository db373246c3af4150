import { createPrivateKey, createPublicKey, generateKeyPair } from "node:crypto";
import { promisify } from "node:util";
import { z } from "zod";
import { MailconfError } from "./errors.ts";

const generateKeyPairAsync = promisify(generateKeyPair);

/**
 * The public half of a domain's DKIM key, as the DNS actuator reads it:
 * `<stateDir>/mail/dkim/<domain>.json` = `{ "selector": "coyote", "txt": "v=DKIM1; k=rsa; p=..." }`.
 * dnsconf publishes `txt` at `<selector>._domainkey.<domain>` (split into 255-byte strings: a
 * 2048-bit key does not fit in one). It is the same shape as dnsconf's `DkimRecordFile`; this copy
 * keeps the two packages independent until the schema moves to `@coyote/spec`.
 */
export const DkimRecordFile = z.strictObject({
  selector: z.string().regex(/^(?!-)[a-z0-9-]{1,63}(?<!-)$/, { error: "not a DKIM selector (one DNS label)" }),
  txt: z.string().regex(/^v=DKIM1; k=rsa; p=[A-Za-z0-9+/]+={0,2}$/, { error: "not a DKIM TXT record (v=DKIM1; k=rsa; p=<base64 SPKI DER>)" }),
});
/** The public half of a domain's DKIM key. */
export type DkimRecordFile = z.infer<typeof DkimRecordFile>;

/**
 * Makes a new DKIM key: RSA 2048 (what every verifier accepts; Ed25519 DKIM is still not verified
 * by all large receivers).
 * @returns the private key as PKCS#8 PEM.
 */
export async function generateDkimKey(): Promise<string> {
  const { privateKey } = await generateKeyPairAsync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  return privateKey;
}

/**
 * Derives the DNS record of a private key. Pure (no I/O).
 * @param privateKeyPem the private key, PEM.
 * @param selector the DKIM selector.
 * @throws MailconfError `MAILCONF_ERR_DKIM_KEY_NOT_RSA` when the PEM is another kind of key; the
 *   crypto error when it is not a private key at all.
 */
export function dkimRecordOf(privateKeyPem: string, selector: string): DkimRecordFile {
  const key = createPrivateKey(privateKeyPem);
  if (key.asymmetricKeyType !== "rsa") throw new MailconfError("MAILCONF_ERR_DKIM_KEY_NOT_RSA", `the key is ${key.asymmetricKeyType ?? "not asymmetric"}, not rsa`);
  const spki = createPublicKey(key).export({ type: "spki", format: "der" });
  return { selector, txt: `v=DKIM1; k=rsa; p=${spki.toString("base64")}` };
}

/** The text the record file is stored as (stable, so that a rewrite can be told from a change). */
export function dkimRecordText(record: DkimRecordFile): string {
  return `${JSON.stringify(DkimRecordFile.parse(record), null, 2)}\n`;
}
