import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

/** scrypt's cost parameters: N = 2^logN, block size r, parallelism p. */
export interface ScryptParams {
  readonly logN: number;
  readonly r: number;
  readonly p: number;
}

/**
 * The production parameters: N = 2^17, r = 8, p = 1, OWASP's current recommendation for scrypt
 * (128 MiB and a few tenths of a second per hash). Hashes store their own parameters, so raising
 * these later only means older hashes are redone at their owner's next sign-in.
 */
export const SCRYPT_DEFAULT: ScryptParams = { logN: 17, r: 8, p: 1 };

const KEY_LENGTH = 32;
// Process-wide, shared by the custom server and the app's bundled copy of this module (like the
// database connection in instance.ts), so that an option given to startCrm reaches the actions.
const KEY = Symbol.for("coyote.crm.scrypt");
type Holder = { [KEY]?: ScryptParams };

/**
 * Sets the parameters new hashes are made with, for this process. Only tests lower them (a hash at
 * the production cost takes 128 MiB); the crm never calls this without an explicit option.
 * @throws when a parameter is outside what {@link verifyPassword} accepts.
 */
export function setScryptParams(params: ScryptParams): void {
  if (!validParams(params)) throw new Error(`scrypt parameters out of range: ln=${params.logN}, r=${params.r}, p=${params.p} (ln 10-20, r 1-32, p 1-16)`);
  (globalThis as Holder)[KEY] = params;
}

/** The parameters new hashes are made with in this process. */
export function scryptParams(): ScryptParams {
  return (globalThis as Holder)[KEY] ?? SCRYPT_DEFAULT;
}

function validParams({ logN, r, p }: ScryptParams): boolean {
  return Number.isInteger(logN) && Number.isInteger(r) && Number.isInteger(p) && logN >= 10 && logN <= 20 && r >= 1 && r <= 32 && p >= 1 && p <= 16;
}

function derive(password: string, salt: Buffer, { logN, r, p }: ScryptParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // scrypt needs 128·N·r bytes; the margin covers its own bookkeeping.
    scrypt(password.normalize("NFKC"), salt, KEY_LENGTH, { N: 2 ** logN, r, p, maxmem: 129 * 2 ** logN * r + 1024 * 1024 }, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

function phc({ logN, r, p }: ScryptParams, salt: Buffer, key: Buffer): string {
  return `$scrypt$ln=${logN},r=${r},p=${p}$${salt.toString("base64url")}$${key.toString("base64url")}`;
}

/** Hashes a password into a `$scrypt$ln=17,r=8,p=1$<salt>$<hash>` PHC string (base64 without padding). */
export async function hashPassword(password: string, params: ScryptParams = scryptParams()): Promise<string> {
  const salt = randomBytes(16);
  return phc(params, salt, await derive(password, salt, params));
}

interface ParsedHash {
  readonly params: ScryptParams;
  readonly salt: Buffer;
  readonly key: Buffer;
}

function parseHash(hash: string): ParsedHash | undefined {
  const m = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/.exec(hash);
  if (m === null) return undefined;
  const params = { logN: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  const key = Buffer.from(m[5] ?? "", "base64url");
  if (!validParams(params) || key.length !== KEY_LENGTH) return undefined;
  return { params, salt: Buffer.from(m[4] ?? "", "base64url"), key };
}

/** Checks a password against a hash from {@link hashPassword}, in constant time. A malformed hash never matches. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const parsed = parseHash(hash);
  if (parsed === undefined) return false;
  const key = await derive(password, parsed.salt, parsed.params);
  return timingSafeEqual(key, parsed.key);
}

/**
 * Whether a stored hash was made with weaker parameters than new hashes get (or is malformed), so
 * that a successful sign-in should store a new hash of the password it just verified.
 */
export function needsRehash(hash: string, params: ScryptParams = scryptParams()): boolean {
  const parsed = parseHash(hash);
  if (parsed === undefined) return true;
  const cost = (q: ScryptParams) => 2 ** q.logN * q.r * q.p;
  return cost(parsed.params) < cost(params) || parsed.params.r < params.r;
}

/**
 * A hash that verifies nothing, at the current parameters: checked when an e-mail is unknown, so
 * that the answer takes as long as for a known one.
 */
export function dummyHash(params: ScryptParams = scryptParams()): string {
  return phc(params, Buffer.alloc(16), Buffer.alloc(KEY_LENGTH));
}
