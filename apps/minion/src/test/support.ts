// Helpers for the minion's own tests.
import { rmSync } from "node:fs";
import { after } from "node:test";
import type { Minion } from "../minion.ts";

/**
 * The minions and folders one test file starts and makes, registered by pushing them here: after
 * the file's tests the minions are stopped first (they write into the folders), then the folders
 * are removed.
 */
export function cleanedUpAfterTests(): { readonly dirs: string[]; readonly minions: Minion[] } {
  const dirs: string[] = [];
  const minions: Minion[] = [];
  after(async () => {
    for (const minion of minions) await minion.stop().catch(() => undefined);
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  return { dirs, minions };
}
