// The only module of the crm that reads process.env (CONVENTIONS.md, "Workspace").
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

let cached: CrmEnv | undefined;

/** Reads and checks the crm's environment once. */
export function crmEnv(): CrmEnv {
  if (cached !== undefined) return cached;
  const stateDir = resolve(process.env.COYOTE_STATE ?? ".coyote");
  cached = {
    stateDir,
    dbFile: join(stateDir, "crm", "crm.db"),
    secureCookies: process.env.COYOTE_CRM_INSECURE_COOKIES !== "1",
  };
  return cached;
}
