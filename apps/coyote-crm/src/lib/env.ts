// The only module of the crm that reads or sets process.env.
import { join, resolve } from "node:path";

/** Where the crm keeps what it needs. */
export interface CrmEnv {
  /** The state folder (`COYOTE_STATE`). */
  readonly stateDir: string;
  /** The crm's database file. */
  readonly dbFile: string;
  /**
   * Whether cookies carry `Secure`. On by default; `COYOTE_CRM_INSECURE_COOKIES=1` turns it off
   * for a panel reached over plain HTTP from another machine (browsers accept Secure cookies
   * over http only from localhost).
   */
  readonly secureCookies: boolean;
}

/** Reads the crm's environment (cheap; read on every use, so that a test can start crms on two state folders). */
export function crmEnv(): CrmEnv {
  const stateDir = resolve(process.env.COYOTE_STATE ?? ".coyote");
  return {
    stateDir,
    dbFile: join(stateDir, "crm", "crm.db"),
    secureCookies: process.env.COYOTE_CRM_INSECURE_COOKIES !== "1",
  };
}

/**
 * Hands the server's settings to the app's own modules, which Next bundles apart from the server
 * and which read them back through {@link crmEnv}.
 */
export function exportCrmEnv(stateDir: string, secureCookies: boolean): void {
  process.env.COYOTE_STATE = stateDir;
  process.env.COYOTE_CRM_INSECURE_COOKIES = secureCookies ? "0" : "1";
}
