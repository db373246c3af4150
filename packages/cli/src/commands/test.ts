import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import type { CliEnv } from "../env.ts";
import { CliError, EXIT } from "../errors.ts";
import type { Io } from "../io.ts";
import { aptInstall, exec, onPath, readSystemDeps, type SystemDep } from "../apt.ts";

/** The counts of one part of the run. */
export interface Tally {
  /** What was run: `lint @coyote/spec`, `tests packages/spec`, ... */
  readonly name: string;
  /** How many passed. */
  readonly passed: number;
  /** How many failed. */
  readonly failed: number;
  /** How many were skipped. */
  readonly skipped: number;
  /** What failed, by name. */
  readonly failures: readonly string[];
}

/** Adds up tallies into the one closing line `N passed, N failed`. */
export function summaryLine(tallies: readonly Tally[]): string {
  const passed = tallies.reduce((n, t) => n + t.passed, 0);
  const failed = tallies.reduce((n, t) => n + t.failed, 0);
  return `${passed} passed, ${failed} failed`;
}

/**
 * Makes sure the programs the tests need are installed: installs the missing ones with apt-get
 * when running as root, and otherwise reports them, as a failure when `ci` is set.
 */
export async function ensureSystemDeps(env: CliEnv, io: Io): Promise<Tally> {
  const deps = await readSystemDeps(env.home);
  const pathVar = env.processEnv.PATH ?? "";
  let missing: SystemDep[] = [];
  for (const dep of deps) if (!(await onPath(dep.command, pathVar))) missing.push(dep);
  if (missing.length > 0 && process.getuid?.() === 0 && (await onPath("apt-get", pathVar))) {
    const packages = [...new Set(missing.map((d) => d.package))];
    io.err(`coyote: installing Debian packages the tests need: ${packages.join(" ")}`);
    await aptInstall(env, io, packages, { startServices: true });
    const still: SystemDep[] = [];
    for (const dep of missing) if (!(await onPath(dep.command, pathVar))) still.push(dep);
    missing = still;
  }
  for (const dep of missing) {
    io.err(`coyote: ${env.ci ? "missing" : "warning: missing"} ${dep.command} (Debian package ${dep.package}), needed because ${dep.why}: run ./coyote test as root, or apt-get install ${dep.package}`);
  }
  const failures = env.ci ? missing.map((d) => `missing dependency ${d.command} (${d.package})`) : [];
  return { name: "system dependencies", passed: deps.length - missing.length, failed: failures.length, skipped: env.ci ? 0 : missing.length, failures };
}

interface TurboTask {
  taskId: string;
  command?: string;
  execution?: { exitCode?: number | null };
  cache?: { status?: string };
}

/** Runs turbo tasks and counts one check per package and task from turbo's run summary. */
async function turboChecks(env: CliEnv, tasks: readonly string[]): Promise<Tally> {
  const turbo = join(env.home, "node_modules", ".bin", "turbo");
  const runsDir = join(env.home, ".turbo", "runs");
  const before = new Set(await readdir(runsDir).catch(() => [] as string[]));
  const code = await exec(turbo, ["run", ...tasks, "--continue", "--output-logs=errors-only", "--summarize"], { cwd: env.home, env: { ...env.processEnv } });
  const fresh = (await readdir(runsDir).catch(() => [] as string[])).filter((f) => f.endsWith(".json") && !before.has(f));
  const name = tasks.join(" + ");
  if (fresh.length !== 1 || fresh[0] === undefined) {
    return { name, passed: 0, failed: 1, skipped: 0, failures: [`turbo run ${name} exited with ${code} and wrote no run summary`] };
  }
  const summary = JSON.parse(await readFile(join(runsDir, fresh[0]), "utf8")) as { tasks: TurboTask[] };
  await rm(join(runsDir, fresh[0]), { force: true });
  // A package without the script is listed as "<NONEXISTENT>": nothing ran, so nothing is counted.
  summary.tasks = summary.tasks.filter((t) => t.command !== "<NONEXISTENT>");
  const failures = summary.tasks.filter((t) => (t.execution?.exitCode ?? 0) !== 0).map((t) => t.taskId);
  if (code !== 0 && failures.length === 0) failures.push(`turbo run ${name} exited with ${code}`);
  return { name, passed: summary.tasks.length - failures.length, failed: failures.length, skipped: 0, failures };
}

interface PackageSummary {
  package: string;
  passed: number;
  failed: number;
  skipped: number;
  failures: string[];
}

/** The workspace folders (relative to home) whose package.json has a `test` script. */
export async function packagesWithTests(home: string): Promise<string[]> {
  const root = JSON.parse(await readFile(join(home, "package.json"), "utf8")) as { workspaces: string[] };
  const found: string[] = [];
  const hasTests = async (dir: string) => {
    const manifest = await readFile(join(home, dir, "package.json"), "utf8").catch(() => undefined);
    return manifest !== undefined && (JSON.parse(manifest) as { scripts?: Record<string, string> }).scripts?.test !== undefined;
  };
  for (const pattern of root.workspaces) {
    // `apps/*` names the folders in apps/; `integration` names one folder, itself a package.
    if (!pattern.endsWith("/*")) {
      if (await hasTests(pattern)) found.push(pattern);
      continue;
    }
    const parent = pattern.slice(0, -2);
    for (const dir of (await readdir(join(home, parent)).catch(() => [] as string[])).sort()) {
      if (await hasTests(`${parent}/${dir}`)) found.push(`${parent}/${dir}`);
    }
  }
  return found;
}

/** Runs every package's tests (turbo, one package at a time) and adds up their counts. */
async function unitTests(env: CliEnv): Promise<Tally[]> {
  const summaryDir = await mkdtemp(join(tmpdir(), "coyote-test-summary-"));
  try {
    const turbo = join(env.home, "node_modules", ".bin", "turbo");
    const code = await exec(turbo, ["run", "test", "--continue", "--concurrency=1", "--output-logs=full"], {
      cwd: env.home,
      env: { ...env.processEnv, COYOTE_TEST_SUMMARY_DIR: summaryDir, FORCE_COLOR: "0" },
    });
    const summaries: PackageSummary[] = [];
    for (const file of await readdir(summaryDir)) summaries.push(JSON.parse(await readFile(join(summaryDir, file), "utf8")) as PackageSummary);
    const tallies: Tally[] = [];
    for (const dir of await packagesWithTests(env.home)) {
      const name = dir.split("/").at(-1) ?? dir;
      const own = summaries.filter((s) => s.package === name);
      if (own.length === 0) {
        tallies.push({ name: `tests ${dir}`, passed: 0, failed: 1, skipped: 0, failures: [`${dir}: the test run ended without a summary (it crashed or ran no test file)`] });
        continue;
      }
      tallies.push({
        name: `tests ${dir}`,
        passed: own.reduce((n, s) => n + s.passed, 0),
        failed: own.reduce((n, s) => n + s.failed, 0),
        skipped: own.reduce((n, s) => n + s.skipped, 0),
        failures: own.flatMap((s) => s.failures),
      });
    }
    const counted = tallies.reduce((n, t) => n + t.failed, 0);
    if (code !== 0 && counted === 0) tallies.push({ name: "tests", passed: 0, failed: 1, skipped: 0, failures: [`turbo run test exited with ${code}`] });
    return tallies;
  } finally {
    await rm(summaryDir, { recursive: true, force: true });
  }
}

/** A test result in Playwright's JSON report: one run of one test (retries make more). */
interface PlaywrightResult {
  readonly error?: { readonly message?: string };
  readonly errors?: readonly { readonly message?: string }[];
}

/** A test in Playwright's JSON report, with its final verdict. */
interface PlaywrightTest {
  readonly projectName?: string;
  readonly status?: "expected" | "unexpected" | "flaky" | "skipped";
  readonly results?: readonly PlaywrightResult[];
}

interface PlaywrightSpec {
  readonly title: string;
  readonly tests?: readonly PlaywrightTest[];
}

interface PlaywrightSuite {
  readonly title: string;
  readonly specs?: readonly PlaywrightSpec[];
  readonly suites?: readonly PlaywrightSuite[];
}

/** The parts of Playwright's JSON report (`reporter: json`) that the tally needs. */
export interface PlaywrightReport {
  readonly suites?: readonly PlaywrightSuite[];
  /** Errors outside any test: a global setup that threw, a file that did not load. */
  readonly errors?: readonly { readonly message?: string }[];
}

// Playwright's messages carry the terminal's colour codes even in the JSON report.
// eslint-disable-next-line no-control-regex -- the escape character is exactly what is matched
const ANSI = /\u001b\[[0-9;]*m/g;

function firstLine(message: string | undefined): string {
  return (message ?? "").replace(ANSI, "").split("\n").map((l) => l.trim()).find((l) => l !== "") ?? "no error message";
}

/**
 * Turns Playwright's JSON report into the `e2e` tally: passed = expected, failed = unexpected and
 * flaky (a test that needed a retry is not trusted) plus errors outside tests, skipped = skipped.
 * Each failure names the test (file › title [project]) and the first line of its error.
 * @param report the parsed `results.json`, or undefined when the run wrote none (it crashed).
 * @param exitCode Playwright's exit code: a failing exit with nothing failed in the report still
 *   counts as one failure, so a broken run can never add up to "all passed".
 */
export function playwrightTally(report: PlaywrightReport | undefined, exitCode: number): Tally {
  if (report === undefined) {
    return { name: "e2e", passed: 0, failed: 1, skipped: 0, failures: [`e2e: playwright exited with ${exitCode} and wrote no results (e2e/test-output/results.json)`] };
  }
  let passed = 0;
  let skipped = 0;
  const failures: string[] = [];
  const visit = (suite: PlaywrightSuite, path: readonly string[]): void => {
    const here = suite.title === "" ? path : [...path, suite.title];
    for (const spec of suite.specs ?? []) {
      for (const test of spec.tests ?? []) {
        if (test.status === "expected") passed++;
        else if (test.status === "skipped") skipped++;
        else {
          const last = test.results?.at(-1);
          const error = last?.error?.message ?? last?.errors?.[0]?.message;
          const verdict = test.status === "flaky" ? "flaky (passed only on a retry)" : firstLine(error);
          failures.push(`e2e ${[...here, spec.title].join(" › ")}${test.projectName ? ` [${test.projectName}]` : ""}: ${verdict}`);
        }
      }
    }
    for (const child of suite.suites ?? []) visit(child, here);
  };
  for (const suite of report.suites ?? []) visit(suite, []);
  for (const error of report.errors ?? []) failures.push(`e2e: ${firstLine(error.message)}`);
  if (exitCode !== 0 && failures.length === 0) failures.push(`e2e: playwright exited with ${exitCode} though no test failed`);
  return { name: "e2e", passed, failed: failures.length, skipped, failures };
}

/** Runs the browser tests (`playwright test` in e2e/) and tallies their JSON report. */
async function e2eTests(env: CliEnv): Promise<Tally> {
  const dir = join(env.home, "e2e");
  const results = join(dir, "test-output", "results.json");
  // A report left by an earlier run must never be read as this run's.
  await rm(results, { force: true });
  const code = await exec(join(env.home, "node_modules", ".bin", "playwright"), ["test"], { cwd: dir, env: { ...env.processEnv } });
  const text = await readFile(results, "utf8").catch(() => undefined);
  if (text === undefined) return playwrightTally(undefined, code);
  try {
    return playwrightTally(JSON.parse(text) as PlaywrightReport, code);
  } catch (error) {
    return { name: "e2e", passed: 0, failed: 1, skipped: 0, failures: [`e2e: playwright exited with ${code} and its results.json is not JSON (${error instanceof Error ? error.message : String(error)})`] };
  }
}

const STEPS = ["deps", "lint", "typecheck", "build", "unit", "e2e"] as const;
type Step = (typeof STEPS)[number];

/** Adds `coyote test`. */
export function testCommand(program: Command, env: CliEnv, io: Io): void {
  program
    .command("test")
    .description("install what the tests need, then run lint, typecheck, the build, every package's tests and the browser tests; ends with `N passed, N failed`")
    .option("--only <steps>", `run only these steps, comma-separated (${STEPS.join(", ")})`)
    .action(async (options: { only?: string }) => {
      const steps = new Set<Step>(options.only === undefined ? STEPS : options.only.split(",").map((s) => {
        if (!(STEPS as readonly string[]).includes(s)) throw new CliError(`--only: unknown step "${s}" (one of ${STEPS.join(", ")})`, EXIT.USAGE);
        return s as Step;
      }));
      const tallies: Tally[] = [];
      if (steps.has("deps")) tallies.push(await ensureSystemDeps(env, io));
      const checks = (["lint", "typecheck"] as const).filter((s) => steps.has(s));
      if (checks.length > 0) tallies.push(await turboChecks(env, checks));
      // The web app's tests and the browser tests run against the built app.
      if (steps.has("build")) tallies.push(await turboChecks(env, ["build"]));
      if (steps.has("unit")) tallies.push(...(await unitTests(env)));
      if (steps.has("e2e")) tallies.push(await e2eTests(env));
      io.out("");
      io.out("summary:");
      for (const t of tallies) io.out(`  ${t.name}: ${t.passed} passed, ${t.failed} failed${t.skipped ? `, ${t.skipped} skipped` : ""}`);
      const failures = tallies.flatMap((t) => t.failures);
      if (failures.length > 0) {
        io.out("failed:");
        for (const f of failures) io.out(`  ${f}`);
      }
      io.out(summaryLine(tallies));
      if (failures.length > 0) throw new CliError("", EXIT.FAILED);
    });
}
