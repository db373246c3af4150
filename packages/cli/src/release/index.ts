/**
 * Releases of an install folder (docs/PRODUCTION.md, "Upgrades and rollback"): `prepare.ts` makes
 * one from a checkout, `switch.ts` moves the `current` and `previous` links, `state-backup.ts`
 * keeps and restores what state migrations change, `services.ts` restarts the components and
 * waits for them, `update.ts` puts it together for `coyote update`.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { PreparedRelease } from "./prepare.ts";
import type { CommandLine } from "./run.ts";

export { EXCLUDED, isReleaseName, prepareRelease, readReleaseInfo, RELEASE_MARKER, type PrepareOptions, type PreparedRelease, type ReleaseInfo } from "./prepare.ts";
export { runCommand, type CommandLine, type RunOptions } from "./run.ts";
export { systemdManager, unitOf, waitHealthy, type Health, type HealthOptions, type ServiceManager, type SystemdOptions } from "./services.ts";
export { BACKUP_DIR, currentStateVersion, readStateBackup, REPLACED_DIR, restoreStateBackup, takeStateBackup, type StateBackup } from "./state-backup.ts";
export { CURRENT, PREVIOUS, pointLink, readReleaseLink, rollback, switchRelease, type ReleaseLinks } from "./switch.ts";
export { rollbackUpdate, update, type UpdateContext, type UpdateResult } from "./update.ts";

/**
 * The command that migrates the state folder with a release's own code: its CLI,
 * `update --migrate-state`, run as the units run it (`<release>/dist/coyote.mjs`, the bundle its
 * build makes), or from its sources through tsx's loader as its `./coyote` does when it has no
 * bundle.
 */
export function releaseMigrateCommand(release: PreparedRelease, node: string = process.execPath): CommandLine {
  const bundle = join(release.dir, "dist", "coyote.mjs");
  if (existsSync(bundle)) return { command: node, args: [bundle, "update", "--migrate-state"] };
  return {
    command: node,
    args: ["--import", join(release.dir, "node_modules", "tsx", "dist", "loader.mjs"), join(release.dir, "packages", "cli", "src", "main.ts"), "update", "--migrate-state"],
  };
}
