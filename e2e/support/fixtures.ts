// The test object every spec uses: the running appliance, a guard that fails a test on any browser
// error, and numbered full-page screenshots.
import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { test as base, expect, type BrowserContext, type Page } from "@playwright/test";
import { BUILD_ID_FILE, loadInfo, webAppBuild, type ApplianceInfo } from "./appliance.ts";
import { INFO_FILE, SCREENSHOT_DIR } from "./env.ts";

/** Browser errors seen in this worker, in order: console messages of type error and uncaught page errors. */
const seen: string[] = [];
const watched = new WeakSet<BrowserContext>();

/**
 * Records every console error and uncaught error of every page of `context` (pages opened later
 * included). Contexts made by hand (another browser, another session) must be watched with this
 * too; the test's own `context` is watched automatically.
 */
export function watchContext(context: BrowserContext): void {
  if (watched.has(context)) return;
  watched.add(context);
  context.on("console", (message) => {
    if (message.type() !== "error") return;
    const where = message.location().url;
    seen.push(`console error on ${message.page()?.url() ?? "a page"}: ${message.text()}${where ? ` (${where})` : ""}`);
  });
  context.on("weberror", (error) => {
    seen.push(`uncaught error on ${error.page()?.url() ?? "a page"}: ${error.error().message}`);
  });
}

/**
 * Takes a full-page screenshot to `test-output/screenshots/NN-name.png`. The number continues
 * from the files already there, so it stays in visiting order even when a worker restarts.
 */
export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const count = (await readdir(SCREENSHOT_DIR)).filter((f) => f.endsWith(".png")).length;
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
  const file = join(SCREENSHOT_DIR, `${String(count + 1).padStart(2, "0")}-${slug}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

interface TestFixtures {
  /** Fails the test when any watched page logged a console error or threw (automatic). */
  browserErrorGuard: undefined;
}

interface WorkerFixtures {
  /** The appliance the global setup started. */
  box: ApplianceInfo;
}

/** Playwright's `test` with the appliance and the guards. */
export const test = base.extend<TestFixtures, WorkerFixtures>({
  box: [
    // eslint-disable-next-line no-empty-pattern -- Playwright requires the fixtures argument to be destructured
    async ({}, use) => {
      await use(await loadInfo(INFO_FILE));
    },
    { scope: "worker" },
  ],
  browserErrorGuard: [
    async ({ context, box }, use, testInfo) => {
      watchContext(context);
      const start = seen.length;
      await use(undefined);
      const fresh = seen.slice(start);
      const failed = fresh.length > 0 || testInfo.status !== testInfo.expectedStatus;
      // Others may build the web app in the same checkout while this runs; say so, since the
      // running panel then serves missing files and its pages fail for that reason alone.
      const build = failed ? await webAppBuild() : box.webAppBuild;
      const rebuilt = build !== box.webAppBuild ? ` (note: the web app was rebuilt while the appliance ran: ${BUILD_ID_FILE} changed from ${box.webAppBuild} to ${build ?? "nothing"})` : "";
      if (rebuilt !== "") testInfo.annotations.push({ type: "rebuilt", description: rebuilt.trim() });
      // The first error goes on the first line: that line is what `coyote test` lists for a failure.
      const [first, ...rest] = fresh;
      if (first !== undefined) throw new Error(`the browser reported ${fresh.length} error(s) during this test${rebuilt}: ${first}${rest.map((e) => `\n  - ${e}`).join("")}`);
    },
    { auto: true },
  ],
});

export { expect };
