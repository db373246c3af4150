import { defineConfig } from "@playwright/test";
import { CHROMIUM } from "./support/appliance.ts";
import { CI, OUTPUT_DIR } from "./support/env.ts";

/**
 * The browser tests: one appliance for the whole run (support/global-setup.ts), one worker, the
 * story first, then the access checks, the account pages and a mail client using what they show
 * (projects run in this order with one worker), Debian's Chromium only. The story waits for real
 * provisioning, hence the generous timeouts.
 */
export default defineConfig({
  testDir: "tests",
  outputDir: OUTPUT_DIR,
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: CI,
  timeout: 180_000,
  expect: { timeout: 15_000 },
  globalSetup: "./support/global-setup.ts",
  reporter: [["list"], ["json", { outputFile: `${OUTPUT_DIR}/results.json` }]],
  use: {
    browserName: "chromium",
    headless: true,
    launchOptions: { executablePath: CHROMIUM, args: ["--no-sandbox"] },
    actionTimeout: 20_000,
    navigationTimeout: 30_000,
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
  },
  projects: [
    { name: "story", testMatch: /story\.spec\.ts$/ },
    { name: "access", testMatch: /access\.spec\.ts$/ },
    { name: "account", testMatch: /account\.spec\.ts$/ },
    { name: "mail", testMatch: /mail\.spec\.ts$/ },
  ],
});
