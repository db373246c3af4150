/**
 * Helpers shared by the store's tests: git on a state folder's specs repository, and a
 * fingerprint of a whole folder to prove that a failed call changed nothing.
 */
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * Runs git on the specs repository of a state folder, isolated from the user's config.
 * @returns standard output.
 */
export async function git(root: string, ...args: string[]): Promise<string> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("GIT_")) env[key] = value;
  const { stdout } = await run("git", args, {
    cwd: join(root, "specs"),
    env: { ...env, GIT_DIR: join(root, "specs", ".git"), GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null", LC_ALL: "C" },
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

/** The number of commits on the specs branch. */
export async function commitCount(root: string): Promise<number> {
  return Number((await git(root, "rev-list", "--count", "refs/heads/main")).trim());
}

/**
 * Every file, folder and link under a folder with its type, mode and content hash, sorted: equal
 * fingerprints mean nothing in the folder changed (times aside).
 */
export async function fingerprint(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (path: string, rel: string): Promise<void> => {
    for (const name of (await readdir(path)).sort()) {
      const full = join(path, name);
      const relative = rel === "" ? name : `${rel}/${name}`;
      const stats = await lstat(full);
      const mode = (stats.mode & 0o7777).toString(8);
      if (stats.isDirectory()) {
        out.push(`d ${mode} ${relative}`);
        await walk(full, relative);
      } else if (stats.isSymbolicLink()) {
        out.push(`l ${relative} -> ${await readlink(full)}`);
      } else {
        out.push(`f ${mode} ${relative} ${createHash("sha256").update(await readFile(full)).digest("hex")}`);
      }
    }
  };
  await walk(dir, "");
  return out;
}

/**
 * Runs git on the specs repository of a state folder with bytes on its standard input.
 * @returns standard output, raw.
 */
export async function gitWithInput(root: string, input: string, ...args: string[]): Promise<Buffer> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("GIT_")) env[key] = value;
  const child = spawn("git", args, {
    cwd: join(root, "specs"),
    env: { ...env, GIT_DIR: join(root, "specs", ".git"), GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null", LC_ALL: "C" },
  });
  const out: Buffer[] = [];
  let err = "";
  child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
  child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString("utf8")));
  child.stdin.end(input);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", resolve);
  });
  if (code !== 0) throw new Error(`git ${args.join(" ")} failed (${code ?? "signal"}): ${err}`);
  return Buffer.concat(out);
}
