import { argon2, createHash, createHmac, pbkdf2, randomBytes } from "node:crypto";
import { promisify } from "node:util";

const pbkdf2Async = promisify(pbkdf2);
const argon2Async = promisify(argon2);

/**
 * The password schemes Dovecot 2.3 verifies on Debian 12 (`doveadm pw -l`), without the clear-text
 * ones (`PLAIN`, `CLEAR`, `CLEARTEXT`, `PLAIN-TRUNC`): a spec lives in a git history and must never
 * hold a password that is not hashed.
 */
export const DEFAULT_PASSWORD_SCHEMES: readonly string[] = [
  "ARGON2I",
  "ARGON2ID",
  "BLF-CRYPT",
  "CRAM-MD5",
  "CRYPT",
  "DES-CRYPT",
  "DIGEST-MD5",
  "HMAC-MD5",
  "LDAP-MD5",
  "MD5",
  "MD5-CRYPT",
  "OTP",
  "PBKDF2",
  "PLAIN-MD4",
  "PLAIN-MD5",
  "SCRAM-SHA-1",
  "SCRAM-SHA-256",
  "SHA",
  "SHA1",
  "SHA256",
  "SHA256-CRYPT",
  "SHA512",
  "SHA512-CRYPT",
  "SMD5",
  "SSHA",
  "SSHA256",
  "SSHA512",
];

const CLEAR_TEXT = new Set(["PLAIN", "CLEAR", "CLEARTEXT", "PLAIN-TRUNC"]);

// PHC and crypt(3) prefixes, and the Dovecot scheme that verifies each. `$y$` (yescrypt) and the
// other libxcrypt methods go through Dovecot's generic CRYPT scheme, which calls crypt(3).
const PHC_SCHEMES: ReadonlyArray<readonly [RegExp, string]> = [
  [/^\$argon2id\$/, "ARGON2ID"],
  [/^\$argon2i\$/, "ARGON2I"],
  [/^\$6\$/, "SHA512-CRYPT"],
  [/^\$5\$/, "SHA256-CRYPT"],
  [/^\$2[aby]\$/, "BLF-CRYPT"],
  [/^\$1\$/, "MD5-CRYPT"],
  [/^\$(y|gy|7)\$/, "CRYPT"],
];

/** A hash Dovecot can use, or why it cannot. */
export type NormalizedHash = { readonly ok: true; readonly hash: string; readonly scheme: string } | { readonly ok: false; readonly why: string };

/**
 * Gives a password hash from a spec the `{SCHEME}` prefix Dovecot's passwd-file needs and checks
 * that Dovecot can verify it. A PHC or crypt(3) string without a prefix gets the matching one
 * (`$argon2id$...` becomes `{ARGON2ID}$argon2id$...`, `$6$...` becomes `{SHA512-CRYPT}$6$...`).
 * Pure.
 * @param hash the hash as the spec holds it.
 * @param schemes the schemes Dovecot verifies (upper case), e.g. {@link DEFAULT_PASSWORD_SCHEMES}.
 * @returns the hash to write, or why it cannot be used (never echoing the hash, which is a secret).
 */
export function normalizePasswordHash(hash: string, schemes: ReadonlySet<string>): NormalizedHash {
  let scheme: string;
  let full: string;
  const prefixed = /^\{([A-Za-z0-9.-]+)\}(.*)$/s.exec(hash);
  if (prefixed) {
    scheme = (prefixed[1] ?? "").toUpperCase();
    full = `{${scheme}}${prefixed[2] ?? ""}`;
  } else {
    const phc = PHC_SCHEMES.find(([pattern]) => pattern.test(hash));
    if (phc === undefined) {
      const id = /^\$([a-z0-9-]+)\$/.exec(hash)?.[1] ?? "unknown";
      return { ok: false, why: `the $${id}$ hash format has no dovecot scheme` };
    }
    scheme = phc[1];
    full = `{${scheme}}${hash}`;
  }
  if (CLEAR_TEXT.has(scheme)) return { ok: false, why: `{${scheme}} is a clear-text password, which a spec must never hold` };
  if (!schemes.has(scheme)) return { ok: false, why: `dovecot cannot verify the {${scheme}} scheme` };
  if (full.length === scheme.length + 2) return { ok: false, why: `the {${scheme}} hash is empty` };
  // The passwd-file separates fields with colons and records with newlines (and a NUL would end
  // the line for Dovecot's C parser); no scheme's output has anything but printable ASCII without
  // colons, so a hash that does is broken rather than something to escape.
  if (!/^[\x21-\x39\x3b-\x7e]+$/.test(full)) return { ok: false, why: `the {${scheme}} hash holds a colon or whitespace, or a character outside printable ASCII` };
  return { ok: true, hash: full, scheme };
}

/** The schemes {@link hashPassword} can make. */
export type HashScheme = "SCRAM-SHA-1" | "SCRAM-SHA-256" | "ARGON2ID";

/** Options of {@link hashPassword}. */
export interface HashPasswordOptions {
  /**
   * The scheme (default `SCRAM-SHA-1`: Prosody stores SCRAM-SHA-1 credentials, so one hash serves
   * both IMAP and XMPP logins).
   */
  readonly scheme?: HashScheme;
  /** PBKDF2 iterations of the SCRAM schemes (default 10000, Prosody's default; RFC 5802 asks for at least 4096). */
  readonly iterations?: number;
}

/**
 * Hashes a password with node:crypto into a form Dovecot verifies (checked with `doveadm` in the
 * tests). SCRAM hashes are `{SCRAM-SHA-1}<iterations>,<base64 salt>,<base64 StoredKey>,<base64
 * ServerKey>` (RFC 5802), Dovecot's own format; ARGON2ID is a PHC string with Dovecot's defaults
 * (m=65536, t=3, p=1).
 * @param password the clear-text password; never logged, never stored.
 * @returns the hash with its `{SCHEME}` prefix, ready for a spec's `passwordHash`.
 */
export async function hashPassword(password: string, options: HashPasswordOptions = {}): Promise<string> {
  const scheme = options.scheme ?? "SCRAM-SHA-1";
  const salt = randomBytes(16);
  if (scheme === "ARGON2ID") {
    const memory = 65536;
    const passes = 3;
    const tag = await argon2Async("argon2id", { message: password, nonce: salt, parallelism: 1, tagLength: 32, memory, passes });
    const b64 = (bytes: Buffer) => bytes.toString("base64").replace(/=+$/, "");
    return `{ARGON2ID}$argon2id$v=19$m=${memory},t=${passes},p=1$${b64(salt)}$${b64(tag)}`;
  }
  const iterations = options.iterations ?? 10000;
  if (!Number.isInteger(iterations) || iterations < 4096) throw new RangeError(`hashing a password: ${scheme} needs at least 4096 iterations`);
  const digest = scheme === "SCRAM-SHA-1" ? "sha1" : "sha256";
  const size = digest === "sha1" ? 20 : 32;
  // Dovecot derives the salted password from the raw bytes (no SASLprep), so we do too: a password
  // that SASLprep would change must still verify in Dovecot.
  const salted = await pbkdf2Async(password, salt, iterations, size, digest);
  const clientKey = createHmac(digest, salted).update("Client Key").digest();
  const storedKey = createHash(digest).update(clientKey).digest();
  const serverKey = createHmac(digest, salted).update("Server Key").digest();
  return `{${scheme}}${iterations},${salt.toString("base64")},${storedKey.toString("base64")},${serverKey.toString("base64")}`;
}
