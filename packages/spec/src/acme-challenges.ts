import { mkdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { z } from "zod";
import { writeFileAtomic } from "./atomic.ts";
import { CoyoteError } from "./errors.ts";
import { parseJson, validate } from "./json-contract.ts";
import { acquireFileLock } from "./lock.ts";

/**
 * `dns/acme-challenges.json`: the ACME DNS-01 challenges the built-in DNS server serves on top of
 * its zones while a certificate is being ordered (docs/ARCHITECTURE.md, "On disk"). Its one writer
 * is {@link publishAcmeChallenge} / {@link withdrawAcmeChallenge}, which serialise their
 * read-modify-write under a lock file shared by every process, so two orders running at once (two
 * names, or `x` and `*.x`) never drop each other's records.
 */

/** One TXT record at `_acme-challenge.<domain>`. */
export const AcmeChallenge = z.strictObject({
  name: z.string().max(300).regex(/^_acme-challenge\.[a-z0-9.-]+$/, { error: "a challenge record is named _acme-challenge.<domain>" }),
  value: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, { error: "a challenge value is base64url" }),
});
/** One TXT record at `_acme-challenge.<domain>`. */
export type AcmeChallenge = z.infer<typeof AcmeChallenge>;

/** The content of `dns/acme-challenges.json`. */
export const AcmeChallengesFile = z.strictObject({
  schemaVersion: z.literal(1),
  records: z.array(AcmeChallenge).max(1000, { error: "at most 1000 challenge records" }),
});
/** The content of `dns/acme-challenges.json`. */
export type AcmeChallengesFile = z.infer<typeof AcmeChallengesFile>;

// Each holder keeps the lock for one small read and one write: ten seconds is a stuck holder.
const LOCK_TIMEOUT_MS = 10_000;
// The file holds at most 1000 short records; anything far larger is not ours.
const MAX_FILE_BYTES = 512 * 1024;

/** Where the challenges file is in a state folder. */
export function acmeChallengesPath(stateDir: string): string {
  return join(stateDir, "dns", "acme-challenges.json");
}

/** The lock file that serialises writers of the challenges file (`run/acme-challenges.lock`). */
export function acmeChallengesLockPath(stateDir: string): string {
  return join(stateDir, "run", "acme-challenges.lock");
}

/**
 * Reads and validates the challenges file.
 * @param file the file ({@link acmeChallengesPath}).
 * @returns its records; none when the file does not exist.
 * @throws ContractError naming the file and the bad field when it is damaged; CoyoteError
 *   STORE_ERR_IO when it cannot be read or is too large to be ours.
 */
export async function readAcmeChallenges(file: string): Promise<AcmeChallenge[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new CoyoteError("STORE_ERR_IO", `reading ${file}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  if (text.length > MAX_FILE_BYTES) throw new CoyoteError("STORE_ERR_IO", `reading ${file}: ${text.length} bytes, more than the ${MAX_FILE_BYTES} a challenges file may hold`);
  return parseJson(AcmeChallengesFile, text, file).records;
}

async function change(stateDir: string, edit: (records: AcmeChallenge[]) => AcmeChallenge[]): Promise<void> {
  const file = acmeChallengesPath(stateDir);
  const lockPath = acmeChallengesLockPath(stateDir);
  await mkdir(dirname(file), { recursive: true });
  await mkdir(dirname(lockPath), { recursive: true });
  const lock = await acquireFileLock(lockPath, { timeoutMs: LOCK_TIMEOUT_MS, what: "dns/acme-challenges.json" });
  try {
    const next = validate(AcmeChallengesFile, { schemaVersion: 1, records: edit(await readAcmeChallenges(file)) }, file);
    // Not fsynced: challenges live for one order, and an order interrupted by a power loss starts over.
    await writeFileAtomic(file, `${JSON.stringify(next, null, 2)}\n`, { durable: false });
  } finally {
    await lock.release();
  }
}

function challengeFor(domain: string, value: string): AcmeChallenge {
  return { name: `_acme-challenge.${domain}`, value };
}

/**
 * Adds a TXT value at `_acme-challenge.<domain>`; several values may coexist at one name (as for
 * `x` and `*.x`), and publishing one that is already there changes nothing.
 * @throws ContractError naming the field when the domain or value is malformed, or naming the file
 *   when it is damaged (it is then left as it is); CoyoteError STORE_ERR_LOCKED or STORE_ERR_IO.
 */
export function publishAcmeChallenge(stateDir: string, domain: string, value: string): Promise<void> {
  const added = challengeFor(domain, value);
  return change(stateDir, (records) => [...records.filter((r) => !(r.name === added.name && r.value === added.value)), added]);
}

/**
 * Removes a TXT value published by {@link publishAcmeChallenge}; removing one that is not there
 * changes nothing.
 * @throws as {@link publishAcmeChallenge}.
 */
export function withdrawAcmeChallenge(stateDir: string, domain: string, value: string): Promise<void> {
  const removed = challengeFor(domain, value);
  return change(stateDir, (records) => records.filter((r) => !(r.name === removed.name && r.value === removed.value)));
}
