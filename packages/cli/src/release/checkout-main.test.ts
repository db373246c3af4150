// checkout-main.ts as install.sh runs it: by Node from the TypeScript source, without tsx or any
// installed dependency, naming the release exactly as `coyote update` does.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { promisify } from "node:util";
import { tempDirs } from "@coyote/testing";
import { fastPrepare, git, writeCheckout } from "../test/releases.ts";
import { prepareRelease } from "./prepare.ts";

const run = promisify(execFile);
const tempDir = tempDirs("coyote-checkout-main-");
const SCRIPT = join(import.meta.dirname, "checkout-main.ts");

/** Runs the script with Node alone (no loader), as install.sh does. */
async function checkoutMain(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [SCRIPT, ...args], { timeout: 60_000, env: { PATH: process.env.PATH } });
    return { code: 0, out: stdout, err: stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, out: failed.stdout ?? "", err: failed.stderr ?? "" };
  }
}

/** Every file under a folder, relative, sorted. */
async function filesUnder(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => !e.isDirectory()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1)).sort();
}

describe("checkout-main.ts (install.sh's release name)", () => {
  test("names a checkout without git, a clean git checkout and a changed one as prepareRelease does, with Node alone", async () => {
    const dir = tempDir();
    const source = join(dir, "src");
    await writeCheckout(source, "2.1.0", {});
    // The same tree, without git: named by its content.
    const plain = join(dir, "plain");
    await mkdir(plain);
    for (const file of await filesUnder(source)) {
      if (file.startsWith(".git/")) continue;
      await mkdir(join(plain, file, ".."), { recursive: true });
      await writeFile(join(plain, file), await readFile(join(source, file)), { mode: (await stat(join(source, file))).mode });
    }
    for (const checkout of [source, plain]) {
      const named = await checkoutMain(checkout);
      assert.equal(named.code, 0, named.err);
      assert.equal(named.err, "", "no warning from Node on the way");
      const prepared = await prepareRelease(checkout, join(dir, `opt-${String(checkout === plain)}`), fastPrepare());
      assert.equal(named.out.trim(), prepared.release);
    }
    assert.match((await checkoutMain(plain)).out, /^2\.1\.0-[0-9a-f]{12}\n$/);
    await writeFile(join(source, "package.json"), `${await readFile(join(source, "package.json"), "utf8")}\n`);
    const changed = await checkoutMain(source);
    assert.match(changed.out, /^2\.1\.0-[0-9a-f]{12}-[0-9a-f]{8}\n$/);
    assert.equal(changed.out.trim(), (await prepareRelease(source, join(dir, "opt-changed"), fastPrepare())).release);
  });

  test("--copy-to copies what a release holds: tracked files only, never dependencies, state or build output", async () => {
    const dir = tempDir();
    const source = join(dir, "src");
    await writeCheckout(source, "2.2.0", {});
    await writeFile(join(source, "untracked.txt"), "no");
    await mkdir(join(source, "node_modules", "x"), { recursive: true });
    await writeFile(join(source, "node_modules", "x", "index.js"), "");
    const target = join(dir, "release");
    const copied = await checkoutMain(source, "--copy-to", target);
    assert.equal(copied.code, 0, copied.err);
    assert.deepEqual(await filesUnder(target), (await git(source, "ls-files")).trim().split("\n").sort());
    // A folder already there is not overwritten: install.sh removes a half-made one first.
    const again = await checkoutMain(source, "--copy-to", target);
    assert.equal(again.code, 1);
    assert.match(again.err, /EEXIST/);
    await rm(target, { recursive: true });
  });

  test("a wrong command line exits 2 with the usage; a checkout that cannot make a release exits 1 naming why", async () => {
    const dir = tempDir();
    assert.equal((await checkoutMain()).code, 2);
    assert.equal((await checkoutMain(dir, "--copy-to")).code, 2);
    assert.equal((await checkoutMain(dir, "--copy", join(dir, "x"))).code, 2);
    const missing = await checkoutMain(join(dir, "missing"));
    assert.equal(missing.code, 1);
    assert.match(missing.err, /preparing a release from .*missing: ENOENT/);
    await writeFile(join(dir, "package.json"), JSON.stringify({ version: "../up" }));
    const bad = await checkoutMain(dir);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /cannot name a release folder/);
  });
});
