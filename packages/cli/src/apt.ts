// Debian packages installed by the CLI when it runs as root: the programs the tests need
// (`coyote test`) and the box's daemons (`coyote up`). The answers to the packages' install
// questions are kept with the test dependencies, in `tooling/system-deps.json`.
import { spawn } from "node:child_process";
import { access, constants, readFile, rm, writeFile } from "node:fs/promises";
import { delimiter, isAbsolute, join } from "node:path";
import type { CliEnv } from "./env.ts";
import type { Io } from "./io.ts";

/** A program the tests need and the Debian package that brings it (`tooling/system-deps.json`). */
export interface SystemDep {
  /** The command looked up on PATH, or an absolute path for a program that is not on it. */
  readonly command: string;
  /** The Debian package that installs it. */
  readonly package: string;
  /** Which tests need it. */
  readonly why: string;
  /** Answers to the package's install questions, as `debconf-set-selections` lines. */
  readonly debconf?: readonly string[];
}

/** The test dependencies of `tooling/system-deps.json`. */
export async function readSystemDeps(home: string): Promise<SystemDep[]> {
  return (JSON.parse(await readFile(join(home, "tooling", "system-deps.json"), "utf8")) as { test: SystemDep[] }).test;
}

/** Whether `command` is an executable file in one of PATH's folders (or, given as an absolute path, there). */
export async function onPath(command: string, pathVar: string): Promise<boolean> {
  if (isAbsolute(command)) return access(command, constants.X_OK).then(() => true, () => false);
  for (const dir of pathVar.split(delimiter).filter(Boolean)) {
    try {
      await access(join(dir, command), constants.X_OK);
      return true;
    } catch {
      // not in this folder
    }
  }
  return false;
}

/** Runs a command with its output on the CLI's stderr (or its own stdout); resolves with its exit code. */
export function exec(command: string, args: readonly string[], options: { cwd: string; env: Record<string, string | undefined>; stdout?: "inherit" | "stderr"; input?: string }): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: [options.input === undefined ? "ignore" : "pipe", options.stdout === "stderr" ? 2 : "inherit", "inherit"] });
    child.once("error", () => resolve(127));
    child.once("exit", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Debian's way to keep a package's install from starting its service: invoke-rc.d asks this script. */
const POLICY_RC_D = "/usr/sbin/policy-rc.d";

/**
 * Installs Debian packages with apt-get, answering their questions from `tooling/system-deps.json`.
 * @param options.startServices false to keep the packages' own system services from being started
 *   (a `policy-rc.d` that refuses, unless the machine has one already): the box runs its own
 *   instances of its daemons, and Debian's would take their ports.
 * @param options.policyRcD where that script goes; Debian's `/usr/sbin/policy-rc.d` by default.
 * @returns whether apt-get succeeded.
 */
export async function aptInstall(env: CliEnv, io: Io, packages: readonly string[], options: { readonly startServices: boolean; readonly policyRcD?: string }): Promise<boolean> {
  const wanted = [...new Set(packages)];
  if (wanted.length === 0) return true;
  const aptEnv = { ...env.processEnv, DEBIAN_FRONTEND: "noninteractive" };
  const answers = (await readSystemDeps(env.home)).filter((d) => wanted.includes(d.package)).flatMap((d) => d.debconf ?? []);
  if (answers.length > 0) await exec("debconf-set-selections", [], { cwd: env.home, env: aptEnv, stdout: "stderr", input: `${answers.join("\n")}\n` });
  const policy = options.policyRcD ?? POLICY_RC_D;
  const ownPolicy = !options.startServices && !(await access(policy).then(() => true, () => false));
  if (ownPolicy) await writeFile(policy, "#!/bin/sh\n# Written by coyote while it installs packages: their services are not started.\nexit 101\n", { mode: 0o755 });
  try {
    if ((await exec("apt-get", ["update", "-q"], { cwd: env.home, env: aptEnv, stdout: "stderr" })) !== 0) io.err("coyote: apt-get update failed; trying the install with the package lists there are");
    return (await exec("apt-get", ["install", "-y", "-q", "--no-install-recommends", ...wanted], { cwd: env.home, env: aptEnv, stdout: "stderr" })) === 0;
  } finally {
    if (ownPolicy) await rm(policy, { force: true });
  }
}
