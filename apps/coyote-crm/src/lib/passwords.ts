import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

// scrypt with N = 2^15, r = 8, p = 1 (OWASP's minimum for scrypt), 32 MiB per hash.
const LOG_N = 15;
const R = 8;
const P = 1;
const KEY_LENGTH = 32;

function derive(password: string, salt: Buffer, logN: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password.normalize("NFKC"), salt, KEY_LENGTH, { N: 2 ** logN, r, p, maxmem: 256 * 2 ** logN * r }, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

/** Hashes a password into a `$scrypt$ln=15,r=8,p=1$<salt>$<hash>` PHC string (base64 without padding). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, LOG_N, R, P);
  return `$scrypt$ln=${LOG_N},r=${R},p=${P}$${salt.toString("base64url")}$${key.toString("base64url")}`;
}

/** Checks a password against a hash from {@link hashPassword}, in constant time. A malformed hash never matches. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const m = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/.exec(hash);
  if (m === null) return false;
  const [logN, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (logN < 10 || logN > 20 || r < 1 || p < 1) return false;
  const expected = Buffer.from(m[5] ?? "", "base64url");
  if (expected.length !== KEY_LENGTH) return false;
  const key = await derive(password, Buffer.from(m[4] ?? "", "base64url"), logN, r, p);
  return timingSafeEqual(key, expected);
}

/** A hash that verifies nothing, checked when an e-mail is unknown so that the answer takes as long. */
export const DUMMY_HASH = "$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
