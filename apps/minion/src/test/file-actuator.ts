// A real actuator for the minion's own tests: it "configures a daemon" made of files. apply writes
// the service's wanted content to staged/<id>.txt; commit "reloads" by copying every staged file
// to live/ (what a daemon would serve) and counts reloads. It can be told to fail, slowly or not.
import { copyFile, mkdir, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ActuatorError, type Actuator } from "@coyote/actuator";

export interface FileActuatorOptions {
  readonly dir: string;
  readonly id?: string;
  readonly condition?: string;
  /** Milliseconds to sleep inside apply and commit, so that a kill can land mid-way. */
  readonly slowMs?: number;
}

export interface FileActuatorCounters {
  applies: number;
  commits: number;
}

/** The content a spec asks for: its description, or "(none)". */
function wanted(description: string | undefined): string {
  return `${description ?? "(none)"}\n`;
}

export function createFileActuator(options: FileActuatorOptions): Actuator<string | undefined, { write?: string; remove?: boolean }> & { counters: FileActuatorCounters } {
  const staged = join(options.dir, "staged");
  const live = join(options.dir, "live");
  const counters: FileActuatorCounters = { applies: 0, commits: 0 };
  return {
    id: options.id ?? "actuator.test.files",
    condition: options.condition ?? "FilesReady",
    counters,
    async observe(target) {
      return readFile(join(staged, `${target.id}.txt`), "utf8").catch(() => undefined);
    },
    plan(target, observed) {
      if (!target.spec) return observed === undefined ? { steps: [], describe: [] } : { steps: [{ remove: true }], describe: ["remove the file"] };
      const description = target.spec.description;
      if (description?.startsWith("terminal:")) throw new ActuatorError("Impossible", `files for ${target.id}: ${description}`, { terminal: true });
      const content = wanted(description);
      return observed === content ? { steps: [], describe: [] } : { steps: [{ write: content }], describe: ["write the file"] };
    },
    async apply(plan, target) {
      counters.applies += 1;
      if (target.spec?.description?.startsWith("transient:")) {
        const marker = join(options.dir, `${target.id}.failed-once`);
        const failedBefore = await readFile(marker, "utf8").then(() => true, () => false);
        if (!failedBefore) {
          await mkdir(options.dir, { recursive: true });
          await writeFile(marker, "");
          throw new Error(`files for ${target.id}: a transient failure`);
        }
      }
      await mkdir(staged, { recursive: true });
      for (const step of plan.steps) {
        if (options.slowMs) await sleep(options.slowMs);
        if (step.remove) await rm(join(staged, `${target.id}.txt`), { force: true });
        if (step.write !== undefined) {
          const tmp = join(staged, `.${target.id}.tmp`);
          await writeFile(tmp, step.write);
          await rename(tmp, join(staged, `${target.id}.txt`));
        }
      }
    },
    async commit() {
      counters.commits += 1;
      await mkdir(live, { recursive: true });
      await mkdir(staged, { recursive: true });
      const files = (await readdir(staged)).filter((f) => f.endsWith(".txt"));
      for (const file of await readdir(live)) if (!files.includes(file)) await rm(join(live, file), { force: true });
      for (const file of files) {
        if (options.slowMs) await sleep(options.slowMs / 4);
        await copyFile(join(staged, file), join(live, file));
      }
      await writeFile(join(options.dir, "reloads.log"), "reload\n", { flag: "a" });
    },
  };
}
