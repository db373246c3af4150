import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";

/**
 * SCRAM-SHA-1 credentials (RFC 5802) in Dovecot's stored format, so that one stored credential
 * serves both mail (Dovecot verifies `{SCRAM-SHA-1}` hashes for PLAIN logins and for SCRAM) and
 * XMPP (Prosody's `internal_hashed` store keeps exactly the same four values).
 */

/** The scheme prefix of a SCRAM-SHA-1 credential in Dovecot's format. */
export const SCRAM_SHA1_SCHEME = "{SCRAM-SHA-1}";

/** The iteration count Dovecot and RFC 5802 use by default, and the least Prosody accepts quietly. */
export const SCRAM_MIN_ITERATIONS = 4096;

/**
 * The iteration count of new credentials. Measured on the appliance's Debian 12 (Node 24, one
 * core): PBKDF2-HMAC-SHA1 costs 1.8 ms at 4096 rounds, 5.1 ms at 10,000, 40 ms at 100,000 and
 * 187 ms at 600,000; SHA-256 0.6, 2.7, 31 and 209 ms. Every PLAIN login (IMAP, SMTP submission,
 * XMPP without SCRAM) pays this once in Dovecot or Prosody, so the count is a trade between an
 * offline guess's cost and an online attacker's leverage on the server: 32,768 rounds (about
 * 14 ms) makes a stolen hash eight times dearer to attack than RFC 5802's 4096 while a burst of
 * bad logins stays cheap. Both daemons verify any stored count (checked with `doveadm pw -t` and
 * Prosody's `internal_hashed`).
 *
 * SCRAM-SHA-256 would be stronger still, and both daemons here accept it: Dovecot 2.3.19
 * verifies `{SCRAM-SHA-256}` in a passwd-file at any count, and Prosody 0.12.3's
 * `internal_hashed` stores it with `password_hash = "SHA-256"`. But that option is per host and
 * switches the whole host: the SHA-1 credentials stored so far (whose passwords are not known)
 * would stop working, so the switch needs a per-host migration as users change passwords.
 */
export const SCRAM_DEFAULT_ITERATIONS = 32_768;

/**
 * The most iterations a stored credential may ask for. Prosody recomputes the salted password
 * with this count on every PLAIN login, so an absurd count in a spec would let it stall the
 * server; a million is about a second of SHA-1 work.
 */
export const SCRAM_MAX_ITERATIONS = 1_000_000;

const SHA1_LENGTH = 20;

/** The four values of a SCRAM-SHA-1 credential. */
export interface ScramSha1Credential {
  /** The PBKDF2 iteration count. */
  readonly iterations: number;
  /** The salt, as bytes (Prosody stores it raw; the wire and Dovecot carry it in base64). */
  readonly salt: Buffer;
  /** H(ClientKey), 20 bytes. */
  readonly storedKey: Buffer;
  /** HMAC(SaltedPassword, "Server Key"), 20 bytes. */
  readonly serverKey: Buffer;
}

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
 * Derives the stored SCRAM-SHA-1 keys of a password (RFC 5802 section 3).
 * @param password the clear-text password (SASLprep is applied here).
 * @param salt the salt bytes.
 * @param iterations the PBKDF2 iteration count.
 */
export function deriveScramSha1(password: string, salt: Buffer, iterations: number): ScramSha1Credential {
  const salted = pbkdf2Sync(saslprep(password), salt, iterations, SHA1_LENGTH, "sha1");
  const clientKey = createHmac("sha1", salted).update("Client Key").digest();
  return {
    iterations,
    salt,
    storedKey: createHash("sha1").update(clientKey).digest(),
    serverKey: createHmac("sha1", salted).update("Server Key").digest(),
  };
}

/**
 * Makes the credential a spec stores for a user's mail and XMPP password:
 * `{SCRAM-SHA-1}<iterations>,<base64 salt>,<base64 StoredKey>,<base64 ServerKey>`, Dovecot's
 * format (what `doveadm pw -s SCRAM-SHA-1` prints). The web panel calls it at signup and on a
 * password change; the clear-text password is never stored anywhere.
 *
 * The password goes through SASLprep first, as SCRAM requires. ASCII passwords are unaffected;
 * a password that SASLprep changes (non-ASCII spaces, compatibility characters such as ligatures)
 * works for XMPP, while Dovecot, which does not apply SASLprep, accepts it for mail only when typed
 * in its prepared form.
 * @param password the clear-text password.
 * @param salt the salt; 16 random bytes when omitted (then the function is not deterministic).
 * @param iterations the PBKDF2 iteration count, between 4096 and 1,000,000 ({@link SCRAM_DEFAULT_ITERATIONS} by default).
 * @returns the credential string.
 * @throws TypeError for an empty or prohibited password, an empty salt or an iteration count out of range.
 */
export function scramSha1Credentials(password: string, salt?: Buffer, iterations = SCRAM_DEFAULT_ITERATIONS): string {
  if (!Number.isInteger(iterations) || iterations < SCRAM_MIN_ITERATIONS || iterations > SCRAM_MAX_ITERATIONS) {
    throw new TypeError(`making scram-sha-1 credentials: iterations must be a whole number from ${SCRAM_MIN_ITERATIONS} to ${SCRAM_MAX_ITERATIONS}, not ${iterations}`);
  }
  const saltBytes = salt ?? randomBytes(16);
  if (saltBytes.length === 0) throw new TypeError("making scram-sha-1 credentials: the salt is empty");
  return formatScramSha1(deriveScramSha1(password, saltBytes, iterations));
}

/** Formats a credential in Dovecot's `{SCRAM-SHA-1}` format. */
export function formatScramSha1(credential: ScramSha1Credential): string {
  const { iterations, salt, storedKey, serverKey } = credential;
  return `${SCRAM_SHA1_SCHEME}${iterations},${salt.toString("base64")},${storedKey.toString("base64")},${serverKey.toString("base64")}`;
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

/** Why {@link parseScramSha1} refused a hash. */
export type ScramParseProblem = "unsupported-scheme" | "malformed";

/**
 * Reads a `{SCRAM-SHA-1}` credential in Dovecot's format.
 * @returns the credential, or the problem: `unsupported-scheme` for any other scheme (the hash
 *   cannot serve XMPP), `malformed` for a SCRAM-SHA-1 credential that is not well formed (four
 *   comma-separated fields, an iteration count from 4096 to 1,000,000, canonical base64, 20-byte
 *   keys).
 */
export function parseScramSha1(hash: string): { ok: true; credential: ScramSha1Credential } | { ok: false; problem: ScramParseProblem } {
  if (!hash.startsWith(SCRAM_SHA1_SCHEME)) return { ok: false, problem: "unsupported-scheme" };
  const fields = hash.slice(SCRAM_SHA1_SCHEME.length).split(",");
  if (fields.length !== 4) return { ok: false, problem: "malformed" };
  const [count, salt64, stored64, server64] = fields as [string, string, string, string];
  if (!/^[1-9][0-9]{0,9}$/.test(count)) return { ok: false, problem: "malformed" };
  const iterations = Number(count);
  if (iterations < SCRAM_MIN_ITERATIONS || iterations > SCRAM_MAX_ITERATIONS) return { ok: false, problem: "malformed" };
  const salt = strictBase64(salt64);
  const storedKey = strictBase64(stored64);
  const serverKey = strictBase64(server64);
  if (salt === undefined || storedKey?.length !== SHA1_LENGTH || serverKey?.length !== SHA1_LENGTH) return { ok: false, problem: "malformed" };
  return { ok: true, credential: { iterations, salt, storedKey, serverKey } };
}
