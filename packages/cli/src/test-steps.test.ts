import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { after, describe, test } from "node:test";
import { playwrightTally, type PlaywrightReport } from "./commands/test.ts";

const HOME = resolve(import.meta.dirname, "..", "..", "..");
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("coyote test: the e2e step's tally", () => {
  test("counts expected, unexpected, flaky and skipped tests through nested suites, naming each failure", () => {
    const report: PlaywrightReport = {
      suites: [
        {
          title: "story.spec.ts",
          specs: [
            { title: "a fresh box", tests: [{ projectName: "story", status: "expected", results: [{}] }] },
            {
              title: "a wrong token",
              tests: [{ projectName: "story", status: "unexpected", results: [{ error: { message: "\u001b[31mError: expect(locator).toBeVisible() failed\u001b[39m\n\nLocator: getByLabel('Activation token')" } }] }],
            },
            { title: "later", tests: [{ projectName: "story", status: "skipped", results: [] }] },
          ],
          suites: [
            {
              title: "signup",
              specs: [
                { title: "flaky one", tests: [{ projectName: "access", status: "flaky", results: [{ error: { message: "first try failed" } }, {}] }] },
                { title: "passes", tests: [{ status: "expected", results: [{}] }] },
              ],
            },
          ],
        },
      ],
      errors: [],
    };
    const tally = playwrightTally(report, 1);
    assert.deepEqual(tally, {
      name: "e2e",
      passed: 2,
      failed: 2,
      skipped: 1,
      failures: [
        "e2e story.spec.ts › a wrong token [story]: Error: expect(locator).toBeVisible() failed",
        "e2e story.spec.ts › signup › flaky one [access]: flaky (passed only on a retry)",
      ],
    });
  });

  test("a run that crashed before writing results is one failure naming the exit code", () => {
    assert.deepEqual(playwrightTally(undefined, 134), {
      name: "e2e",
      passed: 0,
      failed: 1,
      skipped: 0,
      failures: ["e2e: playwright exited with 134 and wrote no results (e2e/test-output/results.json)"],
    });
  });

  test("an error outside any test (a global setup that threw) is a failure", () => {
    const tally = playwrightTally({ suites: [], errors: [{ message: "Error: starting the appliance in /tmp/x: coyote up exited (1)\n  at startAppliance" }] }, 1);
    assert.equal(tally.failed, 1);
    assert.deepEqual(tally.failures, ["e2e: Error: starting the appliance in /tmp/x: coyote up exited (1)"]);
  });

  test("a failing exit with nothing failed in the report still fails, and a clean run has no failure", () => {
    assert.deepEqual(playwrightTally({ suites: [] }, 1).failures, ["e2e: playwright exited with 1 though no test failed"]);
    assert.deepEqual(playwrightTally({ suites: [{ title: "a.spec.ts", specs: [{ title: "ok", tests: [{ status: "expected" }] }] }] }, 0), { name: "e2e", passed: 1, failed: 0, skipped: 0, failures: [] });
  });

  test("reads the report the real Playwright writes", { timeout: 60_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), "coyote-e2e-tally-"));
    dirs.push(dir);
    // The files import the workspace's own @playwright/test by path: the temp folder has no node_modules.
    const playwright = pathToFileURL(join(HOME, "node_modules", "@playwright", "test", "index.mjs")).href;
    writeFileSync(join(dir, "playwright.config.mjs"), `import { defineConfig } from ${JSON.stringify(playwright)};\nexport default defineConfig({ testDir: ".", workers: 1, reporter: [["json", { outputFile: "results.json" }]] });\n`);
    writeFileSync(
      join(dir, "three.spec.mjs"),
      `import { test, expect } from ${JSON.stringify(playwright)};\ntest("passes", () => { expect(1).toBe(1); });\ntest("fails", () => { expect(1, "one is two").toBe(2); });\ntest.skip("is skipped", () => {});\n`,
    );
    const run = spawnSync(join(HOME, "node_modules", ".bin", "playwright"), ["test", "--config", "playwright.config.mjs"], { cwd: dir, encoding: "utf8", timeout: 50_000, env: { ...process.env, CI: "", FORCE_COLOR: "1" } });
    assert.equal(run.status, 1, run.stderr);
    const tally = playwrightTally(JSON.parse(readFileSync(join(dir, "results.json"), "utf8")) as PlaywrightReport, run.status);
    assert.equal(tally.passed, 1);
    assert.equal(tally.skipped, 1);
    assert.equal(tally.failed, 1);
    assert.match(tally.failures[0] ?? "", /^e2e three\.spec\.mjs › fails: Error: one is two/);
    assert.ok(!(tally.failures[0] ?? "").includes("\u001b"), "the colour codes are gone");
  });

  test("a real run whose global setup throws (the appliance did not start) is a failure with its message", { timeout: 60_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), "coyote-e2e-tally-"));
    dirs.push(dir);
    const playwright = pathToFileURL(join(HOME, "node_modules", "@playwright", "test", "index.mjs")).href;
    writeFileSync(join(dir, "setup.mjs"), `export default async function () { throw new Error("starting the appliance: coyote up exited (1)"); }\n`);
    writeFileSync(join(dir, "playwright.config.mjs"), `import { defineConfig } from ${JSON.stringify(playwright)};\nexport default defineConfig({ testDir: ".", workers: 1, globalSetup: "./setup.mjs", reporter: [["json", { outputFile: "results.json" }]] });\n`);
    writeFileSync(join(dir, "one.spec.mjs"), `import { test } from ${JSON.stringify(playwright)};\ntest("never runs", () => {});\n`);
    const run = spawnSync(join(HOME, "node_modules", ".bin", "playwright"), ["test", "--config", "playwright.config.mjs"], { cwd: dir, encoding: "utf8", timeout: 50_000, env: { ...process.env, CI: "" } });
    assert.notEqual(run.status, 0);
    const tally = playwrightTally(JSON.parse(readFileSync(join(dir, "results.json"), "utf8")) as PlaywrightReport, run.status ?? 1);
    assert.equal(tally.passed, 0);
    assert.ok(tally.failed >= 1, JSON.stringify(tally));
    assert.ok(tally.failures.some((f) => f.includes("starting the appliance: coyote up exited (1)")), JSON.stringify(tally.failures));
  });
});
