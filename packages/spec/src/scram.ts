import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";

/**
 * SCRAM credentials (RFC 5802 with SHA-1, RFC 7677 with SHA-256) in Dovecot's stored format, so
 * that one stored credential serves both mail (Dovecot verifies `{SCRAM-SHA-1}` and
 * `{SCRAM-SHA-256}` hashes for PLAIN logins and for SCRAM) and XMPP (Prosody's `internal_hashed`
 * store keeps exactly the same four values).
 */

/** The hash function of a SCRAM credential, spelled as Prosody's `password_hash` option spells it. */
export type ScramHash = "SHA-1" | "SHA-256";

/** The scheme prefix of a SCRAM-SHA-1 credential in Dovecot's format. */
export const SCRAM_SHA1_SCHEME = "{SCRAM-SHA-1}";

/** The scheme prefix of a SCRAM-SHA-256 credential in Dovecot's format. */
export const SCRAM_SHA256_SCHEME = "{SCRAM-SHA-256}";

/** The iteration count Dovecot and RFC 5802 use by default, and the least Prosody accepts quietly. */
export const SCRAM_MIN_ITERATIONS = 4096;

/**
 * The iteration count of new SCRAM-SHA-1 credentials, which are made only for a service whose
 * accounts are SCRAM-SHA-1 already (see {@link scramCredentialsFor}). Measured on the appliance's
 * Debian 12 (Node 24, one core): PBKDF2-HMAC-SHA1 costs 1.8 ms at 4096 rounds, 5.1 ms at 10,000,
 * 40 ms at 100,000 and 187 ms at 600,000. Every PLAIN login (IMAP, SMTP submission, XMPP without
 * SCRAM) pays this once in Dovecot or Prosody, so the count is a trade between an offline guess's
 * cost and an online attacker's leverage on the server: 32,768 rounds (about 14 ms) makes a
 * stolen hash eight times dearer to attack than RFC 5802's 4096 while a burst of bad logins stays
 * cheap. Both daemons verify any stored count (checked with `doveadm pw -t` and Prosody's
 * `internal_hashed`).
 */
export const SCRAM_DEFAULT_ITERATIONS = 32_768;

/**
 * The iteration count of new SCRAM-SHA-256 credentials, the scheme of every new service. Measured
 * on the appliance (2 cores, Debian 12, under load): Dovecot 2.3.19 computes PBKDF2-HMAC-SHA256
 * with its own code at about 1.25 µs a round (`doveadm pw -t`: 16,384 rounds about 20 ms, 32,768
 * about 41 ms, 65,536 about 80 ms above the program's start), while OpenSSL, which Prosody and
 * Node use, takes about 0.14 µs (16,384 rounds 2.3 ms, 65,536 rounds 9.5 ms). Dovecot is the
 * dearer verifier of every mail login, so 16,384 rounds keeps a login at about 20 ms there; per
 * round SHA-256 is two to three times dearer than SHA-1 to an attacker's hardware, so a stolen
 * hash costs more to attack than a SCRAM-SHA-1 one at 32,768 rounds.
 *
 * Prosody's `internal_hashed` switches a whole host to SCRAM-SHA-256 with `password_hash =
 * "SHA-256"`, so the scheme is per service: the SHA-1 credentials stored before (whose passwords
 * are not known) keep their service on SHA-1, and a host never mixes the two.
 */
export const SCRAM_SHA256_DEFAULT_ITERATIONS = 16_384;

/**
 * The most iterations a stored credential may ask for. Prosody recomputes the salted password
 * with this count on every PLAIN login, so an absurd count in a spec would let it stall the
 * server; a million is about a second of SHA-1 work.
 */
export const SCRAM_MAX_ITERATIONS = 1_000_000;

/** What sets the two schemes apart: Dovecot's prefix, Node's digest name and the key length. */
const SCHEMES: Readonly<Record<ScramHash, { readonly prefix: string; readonly digest: string; readonly length: number }>> = {
  "SHA-1": { prefix: SCRAM_SHA1_SCHEME, digest: "sha1", length: 20 },
  "SHA-256": { prefix: SCRAM_SHA256_SCHEME, digest: "sha256", length: 32 },
};

/** The four values of a SCRAM credential, and its hash function. */
export interface ScramCredential {
  /** The hash function: SHA-1 (20-byte keys) or SHA-256 (32-byte keys). */
  readonly hash: ScramHash;
  /** The PBKDF2 iteration count. */
  readonly iterations: number;
  /** The salt, as bytes (Prosody stores it raw; the wire and Dovecot carry it in base64). */
  readonly salt: Buffer;
  /** H(ClientKey), 20 or 32 bytes. */
  readonly storedKey: Buffer;
  /** HMAC(SaltedPassword, "Server Key"), 20 or 32 bytes. */
  readonly serverKey: Buffer;
}

/** A SCRAM-SHA-1 credential. */
export type ScramSha1Credential = ScramCredential & { readonly hash: "SHA-1" };

// RFC 3454 table C.1.2: non-ASCII space characters, which SASLprep maps to a plain space.
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/gu;
// RFC 3454 table B.1: characters commonly mapped to nothing. A set rather than a character class:
// most of them are combining or joining marks, which a regular expression class would misread.
const MAPPED_TO_NOTHING: ReadonlySet<number> = new Set([
  0x00ad, 0x034f, 0x1806, 0x180b, 0x180c, 0x180d, 0x200c, 0x200d, 0x2060, 0xfe00, 0xfe01, 0xfe02, 0xfe03, 0xfe04, 0xfe05, 0xfe06,
  0xfe07, 0xfe08, 0xfe09, 0xfe0a, 0xfe0b, 0xfe0c, 0xfe0d, 0xfe0e, 0xfe0f, 0xfeff,
]);
// RFC 4013 section 2.3: control characters, private use, non-characters, surrogates, characters
// inappropriate for plain text or canonical representation, display-changing and tagging
// characters (tables C.2 to C.9).
const PROHIBITED =
  /[\p{Cc}\p{Co}\p{Cs}\u06DD\u070F\u180E\u200E\u200F\u2028-\u202E\u2060-\u2063\u206A-\u206F\u2FF0-\u2FFB\uFDD0-\uFDEF\uFFF9-\uFFFF\u{1D173}-\u{1D17A}\u{E0001}\u{E0020}-\u{E007F}\u{1FFFE}\u{1FFFF}\u{2FFFE}\u{2FFFF}\u{3FFFE}\u{3FFFF}\u{4FFFE}\u{4FFFF}\u{5FFFE}\u{5FFFF}\u{6FFFE}\u{6FFFF}\u{7FFFE}\u{7FFFF}\u{8FFFE}\u{8FFFF}\u{9FFFE}\u{9FFFF}\u{AFFFE}\u{AFFFF}\u{BFFFE}\u{BFFFF}\u{CFFFE}\u{CFFFF}\u{DFFFE}\u{DFFFF}\u{EFFFE}\u{EFFFF}]/u;

/**
 * Prepares a password with SASLprep (RFC 4013) as SCRAM requires (RFC 5802 section 2.2), so that
 * what an XMPP client sends after its own SASLprep matches what was stored. ASCII passwords are
 * returned unchanged. The bidirectional-text check of RFC 3454 section 6 is not made: JavaScript
 * has no bidi-class tables, and it only rejects passwords, it never changes one.
 * @throws TypeError when the password is empty after preparation or holds a prohibited character.
 */
export function saslprep(password: string): string {
  // SASLprep works on code points, which is what iterating a string yields.
  let mapped = "";
  for (const char of password.replace(NON_ASCII_SPACE, " ")) if (!MAPPED_TO_NOTHING.has(char.codePointAt(0) ?? 0)) mapped += char;
  const prepared = mapped.normalize("NFKC");
  if (prepared === "") throw new TypeError("preparing a password: it is empty");
  const bad = PROHIBITED.exec(prepared);
  if (bad) throw new TypeError(`preparing a password: it holds a character SASLprep prohibits (U+${(bad[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")})`);
  return prepared;
}

/**
 * Derives the stored SCRAM keys of a password (RFC 5802 section 3; RFC 7677 for SHA-256).
 * @param hash the hash function.
 * @param password the clear-text password (SASLprep is applied here).
 * @param salt the salt bytes.
 * @param iterations the PBKDF2 iteration count.
 */
export function deriveScram(hash: ScramHash, password: string, salt: Buffer, iterations: number): ScramCredential {
  const { digest, length } = SCHEMES[hash];
  const salted = pbkdf2Sync(saslprep(password), salt, iterations, length, digest);
  const clientKey = createHmac(digest, salted).update("Client Key").digest();
  return {
    hash,
    iterations,
    salt,
    storedKey: createHash(digest).update(clientKey).digest(),
    serverKey: createHmac(digest, salted).update("Server Key").digest(),
  };
}

/**
 * Derives the stored SCRAM-SHA-1 keys of a password (RFC 5802 section 3).
 * @param password the clear-text password (SASLprep is applied here).
 * @param salt the salt bytes.
 * @param iterations the PBKDF2 iteration count.
 */
export function deriveScramSha1(password: string, salt: Buffer, iterations: number): ScramSha1Credential {
  return { ...deriveScram("SHA-1", password, salt, iterations), hash: "SHA-1" };
}

/**
 * Makes the credential a spec stores for a user's mail and XMPP password:
 * `{SCRAM-SHA-256}<iterations>,<base64 salt>,<base64 StoredKey>,<base64 ServerKey>` (or
 * `{SCRAM-SHA-1}...`), Dovecot's format (what `doveadm pw -s SCRAM-SHA-256` prints). The
 * clear-text password is never stored anywhere.
 *
 * The password goes through SASLprep first, as SCRAM requires. ASCII passwords are unaffected;
 * a password that SASLprep changes (non-ASCII spaces, compatibility characters such as ligatures)
 * works for XMPP, while Dovecot, which does not apply SASLprep, accepts it for mail only when typed
 * in its prepared form.
 * @param hash the hash function.
 * @param password the clear-text password.
 * @param salt the salt; 16 random bytes when omitted (then the function is not deterministic).
 * @param iterations the PBKDF2 iteration count, between 4096 and 1,000,000 (by default
 *   {@link SCRAM_SHA256_DEFAULT_ITERATIONS} for SHA-256, {@link SCRAM_DEFAULT_ITERATIONS} for SHA-1).
 * @returns the credential string.
 * @throws TypeError for an empty or prohibited password, an empty salt or an iteration count out of range.
 */
export function scramCredentials(hash: ScramHash, password: string, salt?: Buffer, iterations?: number): string {
  const count = iterations ?? (hash === "SHA-256" ? SCRAM_SHA256_DEFAULT_ITERATIONS : SCRAM_DEFAULT_ITERATIONS);
  const what = `making scram-${hash.toLowerCase()} credentials`;
  if (!Number.isInteger(count) || count < SCRAM_MIN_ITERATIONS || count > SCRAM_MAX_ITERATIONS) {
    throw new TypeError(`${what}: iterations must be a whole number from ${SCRAM_MIN_ITERATIONS} to ${SCRAM_MAX_ITERATIONS}, not ${count}`);
  }
  const saltBytes = salt ?? randomBytes(16);
  if (saltBytes.length === 0) throw new TypeError(`${what}: the salt is empty`);
  return formatScram(deriveScram(hash, password, saltBytes, count));
}

/**
 * Makes `{SCRAM-SHA-1}` credentials ({@link scramCredentials} with SHA-1), for a service whose
 * accounts are SCRAM-SHA-1 already.
 * @param password the clear-text password.
 * @param salt the salt; 16 random bytes when omitted.
 * @param iterations the PBKDF2 iteration count ({@link SCRAM_DEFAULT_ITERATIONS} by default).
 * @throws TypeError as {@link scramCredentials} does.
 */
export function scramSha1Credentials(password: string, salt?: Buffer, iterations = SCRAM_DEFAULT_ITERATIONS): string {
  return scramCredentials("SHA-1", password, salt, iterations);
}

/**
 * Makes `{SCRAM-SHA-256}` credentials ({@link scramCredentials} with SHA-256), the scheme of a new
 * service's mail and XMPP accounts.
 * @param password the clear-text password.
 * @param salt the salt; 16 random bytes when omitted.
 * @param iterations the PBKDF2 iteration count ({@link SCRAM_SHA256_DEFAULT_ITERATIONS} by default).
 * @throws TypeError as {@link scramCredentials} does.
 */
export function scramSha256Credentials(password: string, salt?: Buffer, iterations = SCRAM_SHA256_DEFAULT_ITERATIONS): string {
  return scramCredentials("SHA-256", password, salt, iterations);
}

/**
 * The SCRAM hash function a service's new credential must use, given the credentials its accounts
 * have now: SHA-256 for a service with none, otherwise the one they share, because Prosody
 * verifies one scheme per host and the earlier passwords are not known.
 * @param existing the password hashes of the service's mail and XMPP accounts today.
 * @throws TypeError when they are not all SCRAM-SHA-1 or all SCRAM-SHA-256.
 */
export function scramHashFor(existing: readonly string[]): ScramHash {
  const schemes = new Set(existing.map(passwordHashScheme));
  if (schemes.size === 0) return "SHA-256";
  const [only] = schemes;
  if (schemes.size === 1 && only === SCRAM_SHA1_SCHEME) return "SHA-1";
  if (schemes.size === 1 && only === SCRAM_SHA256_SCHEME) return "SHA-256";
  throw new TypeError(`choosing the scheme of a new credential: the service's accounts use ${[...schemes].sort().join(" and ")}, not one scram scheme`);
}

/** Formats a credential in Dovecot's `{SCRAM-SHA-1}` or `{SCRAM-SHA-256}` format. */
export function formatScram(credential: ScramCredential): string {
  const { hash, iterations, salt, storedKey, serverKey } = credential;
  return `${SCHEMES[hash].prefix}${iterations},${salt.toString("base64")},${storedKey.toString("base64")},${serverKey.toString("base64")}`;
}

/** Formats a credential in Dovecot's `{SCRAM-SHA-1}` format. */
export function formatScramSha1(credential: ScramSha1Credential): string {
  return formatScram(credential);
}

/** The scheme of a stored password hash: `{SCRAM-SHA-1}`, `{ARGON2ID}`, `$argon2id$`, ... */
export function passwordHashScheme(hash: string): string {
  const braces = /^\{[^}]*\}/.exec(hash);
  if (braces) return braces[0];
  const phc = /^\$[^$]*\$/.exec(hash);
  return phc ? phc[0] : "(none)";
}

function strictBase64(text: string): Buffer | undefined {
  if (text === "" || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined;
  const bytes = Buffer.from(text, "base64");
  // Node ignores stray bits in the last character; only the canonical spelling round-trips.
  return bytes.toString("base64") === text ? bytes : undefined;
}

/** Why {@link parseScram} refused a hash. */
export type ScramParseProblem = "unsupported-scheme" | "malformed";

/** The outcome of reading a credential. */
export type ScramParseResult<C extends ScramCredential = ScramCredential> = { ok: true; credential: C } | { ok: false; problem: ScramParseProblem };

/**
 * Reads a `{SCRAM-SHA-1}` or `{SCRAM-SHA-256}` credential in Dovecot's format.
 * @returns the credential, or the problem: `unsupported-scheme` for any other scheme (the hash
 *   cannot serve XMPP), `malformed` for a SCRAM credential that is not well formed (four
 *   comma-separated fields, an iteration count from 4096 to 1,000,000, canonical base64, keys of
 *   the hash's length: 20 bytes for SHA-1, 32 for SHA-256).
 */
export function parseScram(hash: string): ScramParseResult {
  const scheme = passwordHashScheme(hash);
  const name = (Object.keys(SCHEMES) as ScramHash[]).find((h) => SCHEMES[h].prefix === scheme);
  if (name === undefined) return { ok: false, problem: "unsupported-scheme" };
  const fields = hash.slice(scheme.length).split(",");
  if (fields.length !== 4) return { ok: false, problem: "malformed" };
  const [count, salt64, stored64, server64] = fields as [string, string, string, string];
  if (!/^[1-9][0-9]{0,9}$/.test(count)) return { ok: false, problem: "malformed" };
  const iterations = Number(count);
  if (iterations < SCRAM_MIN_ITERATIONS || iterations > SCRAM_MAX_ITERATIONS) return { ok: false, problem: "malformed" };
  const salt = strictBase64(salt64);
  const storedKey = strictBase64(stored64);
  const serverKey = strictBase64(server64);
  const { length } = SCHEMES[name];
  if (salt === undefined || storedKey?.length !== length || serverKey?.length !== length) return { ok: false, problem: "malformed" };
  return { ok: true, credential: { hash: name, iterations, salt, storedKey, serverKey } };
}

/**
 * Reads a `{SCRAM-SHA-1}` credential in Dovecot's format, as {@link parseScram} does; every other
 * scheme, `{SCRAM-SHA-256}` included, is `unsupported-scheme`.
 */
export function parseScramSha1(hash: string): ScramParseResult<ScramSha1Credential> {
  if (!hash.startsWith(SCRAM_SHA1_SCHEME)) return { ok: false, problem: "unsupported-scheme" };
  const parsed = parseScram(hash);
  return parsed.ok ? { ok: true, credential: { ...parsed.credential, hash: "SHA-1" } } : parsed;
}
