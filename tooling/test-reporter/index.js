// A node:test reporter that prints nothing and writes the run's counts to
// $COYOTE_TEST_SUMMARY_DIR/<package>-<pid>.json, so that `coyote test` can add up the counts of
// every package into one closing line. Used beside the `spec` reporter, never instead of it.
import { mkdirSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";

/**
 * The first line of a failure's reason, so that the closing summary says why, not only which: the
 * spec reporter's full account may be far above it, or cut from a CI log.
 * @param {any} error the test's error (the runner wraps the thrown one as its cause).
 */
function why(error) {
  const reason = error?.cause ?? error;
  const text = typeof reason?.message === "string" ? `${reason.name ?? "Error"}${reason.code ? ` ${reason.code}` : ""}: ${reason.message}` : reason === undefined ? "" : String(reason);
  const line = text.split("\n").find((l) => l.trim() !== "") ?? "";
  return line === "" ? "" : ` — ${line.slice(0, 300)}`;
}

/**
 * Counts passed, failed and skipped tests (suites are not counted, their tests are).
 * @param {AsyncIterable<{type: string, data: any}>} source the test runner's event stream.
 */
export default async function* coyoteSummary(source) {
  const counts = { passed: 0, failed: 0, skipped: 0, failures: [] };
  for await (const event of source) {
    if (event.type !== "test:pass" && event.type !== "test:fail") continue;
    const data = event.data;
    if (data.details?.type === "suite") {
      // A suite that fails outside its tests (a hook, a file that does not load) still fails the run.
      if (event.type === "test:fail" && data.details?.error?.failureType !== "subtestsFailed") {
        counts.failed += 1;
        counts.failures.push(`${data.file ?? "?"}: ${data.name}`);
      }
      continue;
    }
    if (data.skip || data.todo) counts.skipped += 1;
    else if (event.type === "test:pass") counts.passed += 1;
    else {
      counts.failed += 1;
      counts.failures.push(`${data.file ?? "?"}: ${data.name}${why(data.details?.error)}`);
    }
  }
  const dir = process.env.COYOTE_TEST_SUMMARY_DIR;
  if (dir) {
    mkdirSync(dir, { recursive: true });
    const name = `${basename(process.cwd())}-${process.pid}.json`;
    writeFileSync(join(dir, name), JSON.stringify({ package: basename(process.cwd()), ...counts }));
  }
  yield "";
}
