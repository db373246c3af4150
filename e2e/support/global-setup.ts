// One appliance for the whole run: started before the first test, stopped after the last one.
import { mkdir, rm } from "node:fs/promises";
import { saveInfo, startAppliance, stopAppliance } from "./appliance.ts";
import { INFO_FILE, OUTPUT_DIR, SCREENSHOT_DIR } from "./env.ts";

/**
 * Playwright's global setup: clears the screenshots of the last run, starts a fresh appliance and
 * leaves its info in {@link INFO_FILE}. The function it returns is the global teardown, which
 * stops the appliance (its state folder stays in `test-output/`, with the logs, until the next run).
 */
export default async function globalSetup(): Promise<() => Promise<void>> {
  await rm(SCREENSHOT_DIR, { recursive: true, force: true });
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  await mkdir(OUTPUT_DIR, { recursive: true });
  const info = await startAppliance();
  await saveInfo(INFO_FILE, info);
  process.stderr.write(`e2e: appliance up at ${info.panelUrl} (state ${info.stateDir}, pid ${info.pid})\n`);
  return async () => {
    await stopAppliance(info);
    process.stderr.write(`e2e: appliance stopped (its state and logs stay in ${info.stateDir})\n`);
  };
}
