// Helpers for this package's tests only (not exported from index.ts): temp folders and real child
// processes that import the logger, because ordering across processes and surviving SIGKILL can
// only be tested with real processes.
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

/** The `file:` URL of this package's entry point, for scripts written to a temp folder. */
export const INDEX_URL = pathToFileURL(join(import.meta.dirname, "..", "index.ts")).href;

/** The package folder, used as the children's working folder so that `--import tsx` resolves. */
export const PACKAGE_DIR = dirname(dirname(import.meta.dirname));

/** Makes a fresh temp folder and returns it with a function that removes it. */
export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "coyote-log-test-"));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Writes a TypeScript module (`.mts`, so it is ESM wherever it lies) and returns its path. */
export async function writeScript(dir: string, name: string, source: string): Promise<string> {
  const path = join(dir, `${name}.mts`);
  await writeFile(path, source);
  return path;
}

/** Starts `node --import tsx script ...args` with piped standard streams. */
export function startScript(script: string, args: readonly string[] = []): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, ["--import", "tsx", script, ...args], { cwd: PACKAGE_DIR, stdio: "pipe" });
}

/** How a script run by {@link runScript} ended and what it printed. */
export interface ScriptResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a script to its end and collects its output. */
export function runScript(script: string, args: readonly string[] = []): Promise<ScriptResult> {
  const child = startScript(script, args);
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => {
      resolve({ code, signal, stdout, stderr });
    });
  });
}
