/**
 * How snickers uses the local CA: made on first issuance, loaded (never made) to revoke what it
 * replaces or removes, and its CRL kept fresh while the minion runs.
 */
import { readFile } from "node:fs/promises";
import type { CoyoteLogger } from "@coyote/log";
import type { RevocationReason } from "./crl.ts";
import { SnickersError } from "./errors.ts";
import { LocalCa } from "./local-ca.ts";

/** How often the CRL's age is checked; it is reissued halfway through its week of validity. */
export const CRL_CHECK_INTERVAL_MS = 3_600_000;

/** The local CA of one state folder, opened once and shared by every reconcile. */
export class CaKeeper {
  readonly #dir: string;
  readonly #now: () => number;
  #ca: Promise<LocalCa | undefined> | undefined;

  /**
   * @param dir `proxy/ca` of the state folder.
   * @param now the clock that CRLs and revocations are dated by.
   */
  constructor(dir: string, now: () => number) {
    this.#dir = dir;
    this.#now = now;
  }

  /** The CA, made first when there is none (local-CA mode). */
  async forIssuing(hostname: string): Promise<LocalCa> {
    const existing = await this.#get(() => LocalCa.load(this.#dir, hostname, this.#now()));
    if (existing) return existing;
    this.#ca = undefined;
    const made = await this.#get(() => LocalCa.open(this.#dir, hostname, this.#now()));
    if (!made) throw new SnickersError("SNICKERS_ERR_LOCAL_CA_UNREADABLE", `opening the local CA in ${this.#dir}: it could not be made`);
    return made;
  }

  /** The CA when the box has one: an ACME box that never used it has nothing to revoke. */
  existing(hostname: string): Promise<LocalCa | undefined> {
    return this.#get(() => LocalCa.load(this.#dir, hostname, this.#now()));
  }

  /**
   * Revokes the certificate in a PEM file when the local CA issued it and it has not expired,
   * before snickers replaces or removes the file. A failure (a damaged revocation record) is
   * thrown, so the file stays until the certificate can be revoked.
   */
  async revokeFile(file: string, host: string, reason: RevocationReason, hostname: string, logger: CoyoteLogger): Promise<void> {
    let pem: string;
    try {
      pem = await readFile(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw error;
    }
    const ca = await this.existing(hostname);
    if (!ca) return;
    if (await ca.revoke(pem, reason, this.#now(), host)) logger.info({ host, reason, crl: ca.crlFile }, "revoked the local CA's certificate it replaces or removes");
  }

  /** Issues a new CRL when the current one is halfway to its nextUpdate. */
  async refresh(hostname: string, logger: CoyoteLogger): Promise<void> {
    const ca = await this.existing(hostname);
    if (ca && (await ca.refreshCrl(this.#now()))) logger.info({ crl: ca.crlFile }, "issued the local CA's CRL again");
  }

  /** One load at a time, kept once it succeeds; a failure is not kept, so the next call retries. */
  #get(load: () => Promise<LocalCa | undefined>): Promise<LocalCa | undefined> {
    const current = this.#ca ?? load();
    this.#ca = current;
    current.then(
      (ca) => {
        if (ca === undefined && this.#ca === current) this.#ca = undefined;
      },
      () => {
        if (this.#ca === current) this.#ca = undefined;
      },
    );
    return current;
  }
}
