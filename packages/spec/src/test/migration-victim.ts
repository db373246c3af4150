/**
 * The victim of the interrupted-migration test: runs the test migrations on a state folder and
 * prints `halfway` once the second one has done half of its work, then waits to be killed.
 *
 * Usage: node migration-victim.ts <state root>
 */
import { migrateState } from "../state-version.ts";
import type { MigrationContext, StateMigration } from "../migrations/index.ts";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * Two migrations that write marker files under `steps/`; the second writes `a`, calls `halfway`,
 * then writes `b`, so that a kill in between leaves it half-done.
 */
export function victimMigrations(halfway: () => Promise<void>): StateMigration[] {
  const step = async (root: string, name: string) => {
    await mkdir(join(root, "steps"), { recursive: true });
    await writeFile(join(root, "steps", name), `${name}\n`);
  };
  return [
    { from: 1, to: 2, description: "first step", up: ({ root }) => step(root, "one") },
    {
      from: 2,
      to: 3,
      description: "second step, in two halves",
      async up({ root }) {
        await step(root, "a");
        await halfway();
        await step(root, "b");
      },
    },
  ];
}

/** A context for migrations that touch only files (no specs repository, no secrets). */
export function filesOnly(root: string): MigrationContext {
  return { root, repo: undefined as never, secrets: undefined as never };
}

const root = process.argv[2];
if (root !== undefined && process.argv[1]?.endsWith("migration-victim.ts") === true) {
  await migrateState(filesOnly(root), {
    writtenBy: "victim",
    migrations: victimMigrations(async () => {
      process.stdout.write("halfway\n");
      await sleep(60_000);
    }),
  });
}
