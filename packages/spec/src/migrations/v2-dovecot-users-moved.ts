import { lstat, rm } from "node:fs/promises";
import { join } from "node:path";
import { ioError, isNotFound } from "../spec-files.ts";
import type { StateMigration } from "./types.ts";

/** Where builds before version 3 of the state folder kept Dovecot's users file. */
export const OLD_DOVECOT_USERS = "mail/dovecot/users";

/**
 * 2 → 3. Builds before this version kept Dovecot's users file (every mailbox's password hash) at
 * `mail/dovecot/users`, inside the Dovecot folder that stays open to Postfix. Today's builds write
 * it to `mail/dovecot-users/passwd`, in a folder of its own, and nothing reads the old file any
 * more: the stale copy of the hashes is removed. The minion writes the new file at its next
 * reconcile. Idempotent: removing a file that is gone is nothing to do.
 */
export const dovecotUsersMoved: StateMigration = {
  from: 2,
  to: 3,
  description: `stale copy of dovecot's users file (${OLD_DOVECOT_USERS}) removed; it lives in mail/dovecot-users/passwd`,
  async up({ root }) {
    const path = join(root, OLD_DOVECOT_USERS);
    try {
      const found = await lstat(path);
      // A folder of that name is not something an older build made: left alone.
      if (found.isDirectory()) return;
      await rm(path, { force: true });
    } catch (cause) {
      if (!isNotFound(cause)) throw ioError(`removing ${OLD_DOVECOT_USERS}`, cause);
    }
  },
};
