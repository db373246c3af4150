// bench/store: the spec store's write path with N specs in its history, against plain
// `git add` + `git commit` of the same file in a repository of the same size, and against a bare
// atomic file write (temporary file, fsync, rename), interleaved in the same run so that the
// machine's load falls on all three alike. Prints medians, p99 and the ratios, then checks that
// `git fsck` finds the store's repository clean and `git log` reads it, and how long a `git gc`
// of the history takes and what it leaves.
//
//   node --import tsx bench/src/store.ts [--specs 1000] [--writes 300]
import { execFile } from "node:child_process";
import { constants } from "node:fs";
import { cp, mkdtemp, open, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parseArgs } from "node:util";
import { StateStore, type ServiceSpec } from "@coyote/spec";

const { values } = parseArgs({ options: { specs: { type: "string", default: "1000" }, writes: { type: "string", default: "300" } } });
const SPECS = Number(values.specs);
const WRITES = Number(values.writes);
if (!Number.isInteger(SPECS) || SPECS < 1 || !Number.isInteger(WRITES) || WRITES < 3) throw new Error("--specs ≥ 1 and --writes ≥ 3, whole numbers");
const AUTHOR = { name: "bench", email: "bench@coyote.invalid" };
const run = promisify(execFile);
const out = (line: string) => process.stdout.write(`${line}\n`);

function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
}

function median(xs: readonly number[]): number {
  return quantile(xs, 0.5);
}

function ms(x: number): string {
  return `${x.toFixed(2)} ms`;
}

const spec = (i: number, round: number): ServiceSpec => ({
  schemaVersion: 1,
  kind: "Service",
  id: `svc-${i}`,
  domains: [{ name: `svc-${i}.bench.example`, authoritative: true, records: [{ name: "@", type: "TXT", text: `round ${round}` }] }],
});

/** git isolated from the user's and the system's configuration, as the store runs it. */
function gitEnv(gitDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("GIT_")) env[key] = value;
  return {
    ...env,
    GIT_DIR: gitDir,
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_AUTHOR_NAME: AUTHOR.name,
    GIT_AUTHOR_EMAIL: AUTHOR.email,
    GIT_COMMITTER_NAME: AUTHOR.name,
    GIT_COMMITTER_EMAIL: AUTHOR.email,
    LC_ALL: "C",
  };
}

/** The bare atomic write: temporary file, fsync, rename. */
async function atomicWrite(path: string, data: string): Promise<void> {
  const temp = `${path}.tmp`;
  const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, path);
}

const base = await mkdtemp(join(tmpdir(), "coyote-bench-store-"));
try {
  const stateDir = join(base, "state");
  const store = await StateStore.open(stateDir, { author: AUTHOR });
  let started = performance.now();
  for (let i = 0; i < SPECS; i++) await store.applySpec(spec(i, 0), { author: AUTHOR });
  const setupMs = performance.now() - started;
  out(`setup: ${SPECS} specs applied through the store in ${ms(setupMs)} (${ms(setupMs / SPECS)} each, a commit each)`);

  // The peers start from the same files: a git repository holding them in one commit, and a folder.
  const gitDir = join(base, "plain");
  const env = gitEnv(join(gitDir, ".git"));
  await cp(join(stateDir, "specs", "services"), join(gitDir, "services"), { recursive: true });
  await run("git", ["init", "--quiet", "--initial-branch=main", gitDir], { env });
  await run("git", ["add", "services"], { cwd: gitDir, env });
  await run("git", ["commit", "--quiet", "--no-gpg-sign", "-m", `${SPECS} specs`], { cwd: gitDir, env });
  const bareDir = join(base, "bare");
  await cp(join(stateDir, "specs", "services"), bareDir, { recursive: true });

  const times = { store: [] as number[], git: [] as number[], atomic: [] as number[] };
  const peers: Record<keyof typeof times, (i: number, round: number) => Promise<void>> = {
    store: async (i, round) => {
      await store.applySpec(spec(i, round), { author: AUTHOR });
    },
    git: async (i, round) => {
      const file = `services/svc-${i}.json`;
      await atomicWrite(join(gitDir, file), `${JSON.stringify({ ...spec(i, round), generation: round + 1 }, null, 2)}\n`);
      await run("git", ["add", "--", file], { cwd: gitDir, env });
      await run("git", ["commit", "--quiet", "--no-gpg-sign", "--no-verify", "-m", `apply service ${i} (generation ${round + 1})`, "--", file], { cwd: gitDir, env });
    },
    atomic: async (i, round) => {
      await atomicWrite(join(bareDir, `svc-${i}.json`), `${JSON.stringify({ ...spec(i, round), generation: round + 1 }, null, 2)}\n`);
    },
  };
  const order: Array<keyof typeof times> = ["store", "git", "atomic"];
  started = performance.now();
  for (let round = 1; round <= WRITES; round++) {
    const i = (round * 37) % SPECS;
    // Each round starts with another of the three, so that none always runs on a cache warmed by the others.
    for (let k = 0; k < order.length; k++) {
      const name = order[(round + k) % order.length] ?? "store";
      const t = performance.now();
      await peers[name](i, round);
      times[name].push(performance.now() - t);
    }
  }
  out(`${WRITES} interleaved rounds in ${ms(performance.now() - started)}`);

  // What the history weighs loose, and after the housekeeping that otherwise runs when the store is quiet.
  const weight = async () => {
    const counted = (await run("git", ["count-objects", "-v"], { cwd: join(stateDir, "specs"), env: gitEnv(join(stateDir, "specs", ".git")) })).stdout;
    const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, "m").exec(counted)?.[1] ?? Number.NaN);
    return `${field("count")} loose objects (${(field("size") / 1024).toFixed(1)} MiB), ${field("packs")} packs (${(field("size-pack") / 1024).toFixed(1)} MiB)`;
  };
  const loose = await weight();
  started = performance.now();
  await store.compactHistory();
  out(`history: ${loose}; git gc took ${ms(performance.now() - started)}, leaving ${await weight()}`);
  const fsck = await run("git", ["fsck", "--full", "--strict", "--no-dangling", "--no-progress"], { cwd: join(stateDir, "specs"), env: gitEnv(join(stateDir, "specs", ".git")) });
  const commits = (await run("git", ["rev-list", "--count", "refs/heads/main"], { cwd: join(stateDir, "specs"), env: gitEnv(join(stateDir, "specs", ".git")) })).stdout.trim();
  out(`store repository after it: git fsck ${fsck.stdout.trim() === "" && fsck.stderr.trim() === "" ? "clean" : `says: ${fsck.stdout}${fsck.stderr}`}, ${commits} commits in git log`);

  out("");
  out(`| one spec write with ${SPECS} specs (${WRITES} writes each, interleaved) | median | p99 | median ratio store / this |`);
  out("|---|---|---|---|");
  const row = (label: string, xs: readonly number[]) => out(`| ${label} | ${ms(median(xs))} | ${ms(quantile(xs, 0.99))} | ${(median(times.store) / median(xs)).toFixed(2)}× |`);
  row("store: applySpec (validate, lock, objects, journal, file, branch)", times.store);
  row("plain git: atomic write, `git add`, `git commit`", times.git);
  row("bare atomic write (temporary file, fsync, rename)", times.atomic);
} finally {
  if (process.env.BENCH_KEEP === undefined) await rm(base, { recursive: true, force: true });
  else out(`kept in ${base}`);
}
