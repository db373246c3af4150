// The panel for integration tests, started as `coyote up` starts it (`coyote run coyote-crm`, the
// built app) on a state folder, with its output in a file, and waited for until it answers.
import { spawn, type ChildProcess } from "node:child_process";
import { open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { waitFor } from "@coyote/testing";

const REPO = join(import.meta.dirname, "..", "..", "..");

/**
 * Starts the panel of `stateDir` and waits (at most 90 s) until it answers HTTP on `port`.
 * @param logFile where its stdout and stderr go.
 * @throws Error with its output when it exits before answering.
 */
export async function startPanel(stateDir: string, port: number, logFile: string): Promise<ChildProcess> {
  const out = await open(logFile, "w");
  const env: Record<string, string | undefined> = { ...process.env, COYOTE_STATE: stateDir, COYOTE_CRM_INSECURE_COOKIES: "1" };
  delete env.NODE_OPTIONS;
  const crm = spawn(process.execPath, ["--import", "tsx", join(REPO, "packages", "cli", "src", "main.ts"), "run", "coyote-crm"], { cwd: REPO, env, stdio: ["ignore", out.fd, out.fd] });
  await out.close();
  const exited = new Promise<string>((resolve) => crm.once("exit", (code, signal) => resolve(`exited (${String(code ?? signal)})`)));
  await waitFor("the panel to answer", async () => {
    const ended = await Promise.race([exited, Promise.resolve(undefined)]);
    if (ended !== undefined) throw new Error(`the panel ${ended}: ${await readFile(logFile, "utf8")}`);
    const answer = await fetch(`http://127.0.0.1:${String(port)}/`, { redirect: "manual", signal: AbortSignal.timeout(5000) }).catch(() => undefined);
    await answer?.body?.cancel();
    return answer !== undefined;
  }, { timeoutMs: 90_000, intervalMs: 200 });
  return crm;
}
