// The only module of the browser tests that reads process.env (docs/CONTRIBUTING.md, "Conventions").
import { join, resolve } from "node:path";

/** Where the run's outputs go: `e2e/test-output/` (gitignored). */
export const OUTPUT_DIR = resolve(import.meta.dirname, "..", "test-output");

/** Where the global setup leaves the running appliance's info for the workers. */
export const INFO_FILE = join(OUTPUT_DIR, "appliance.json");

/** Where the screenshots of every page visited go, as `NN-name.png`. */
export const SCREENSHOT_DIR = join(OUTPUT_DIR, "screenshots");

/** Whether this runs in CI (`CI=true`): Playwright then forbids `test.only`. */
export const CI = process.env.CI === "true" || process.env.CI === "1";
