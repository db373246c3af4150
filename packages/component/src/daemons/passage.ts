/**
 * The one way the box's daemons reach their own folders inside the state folder, which only the
 * appliance's user may list: a POSIX ACL entry per daemon user that grants passage (`--x`, search
 * without listing) on the state folder itself, nothing more. Each folder inside keeps its own mode
 * and owner (Postfix's queue its own, Dovecot's users file to Dovecot's group, the private ones
 * 0700), so a daemon's user reaches the folders made for it and nothing else, by name only.
 *
 * The daemon supervisor grants it before it starts a daemon as root; the production installer
 * grants the same entries. The state folder then shows mode 0710: with an ACL the group bits are
 * the ACL's mask, which only carries the passage (`prepareStateFolder` keeps it).
 */
import { findExecutable } from "@coyote/spec";
import { runBounded } from "./probes.ts";
import { lookupUser } from "./files.ts";

/** The program that writes ACL entries, and the Debian package that brings it. */
export const PASSAGE_TOOL = { program: "setfacl", package: "acl" } as const;

/** A user given passage: a system user's name, or a numeric uid that has no name (the mailboxes' owner). */
export type PassageUser = string | number;

/** How long setfacl may take. */
const SETFACL_TIMEOUT_MS = 10_000;

/** Why passage could not be granted: what to fix is in the message. */
export class PassageError extends Error {
  override readonly name = "PassageError";
}

/** The ACL entry (`u:<uid>:--x`) of one user, by uid so that no name is parsed by setfacl. */
function entryOf(user: PassageUser): string {
  if (typeof user === "number") {
    if (!Number.isInteger(user) || user < 1 || user > 0xfffffffe) throw new PassageError(`uid ${String(user)} is not a user id`);
    return `u:${String(user)}:--x`;
  }
  const found = lookupUser(user);
  if (found === undefined) throw new PassageError(`the system user ${user} does not exist (the Debian package of its daemon makes it)`);
  return `u:${String(found.uid)}:--x`;
}

/**
 * Gives each user passage through `dir` (ACL `u:<uid>:--x`), keeping every other entry.
 * @param dir the state folder.
 * @param users system user names or numeric uids.
 * @param programDirs where setfacl is looked for.
 * @throws PassageError naming the user or what the filesystem or the machine lacks.
 */
export async function grantPassage(dir: string, users: readonly PassageUser[], programDirs: readonly string[] = ["/usr/bin", "/bin"]): Promise<void> {
  if (users.length === 0) return;
  const entries = [...new Set(users.map(entryOf))];
  const setfacl = findExecutable(PASSAGE_TOOL.program, programDirs);
  if (setfacl === undefined) throw new PassageError(`${PASSAGE_TOOL.program} is not installed (Debian package ${PASSAGE_TOOL.package}); the daemons' users cannot pass through ${dir} without it`);
  const result = await runBounded(setfacl, ["-m", entries.join(","), "--", dir], SETFACL_TIMEOUT_MS);
  if (result.code !== 0) {
    const said = result.output.trim().slice(-300) || `exit ${String(result.code)}`;
    throw new PassageError(`giving ${users.join(", ")} passage through ${dir} failed (${said}); the state folder must be on a filesystem with POSIX ACLs (ext4, xfs, btrfs, tmpfs)`);
  }
}
