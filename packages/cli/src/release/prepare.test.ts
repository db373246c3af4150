import assert from "node:assert/strict";
import { lstat, mkdir, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { tempDirs } from "@coyote/testing";
import { CliError } from "../errors.ts";
import { fastPrepare, git, writeCheckout } from "../test/releases.ts";
import { prepareRelease, RELEASE_MARKER } from "./prepare.ts";

const tempDir = tempDirs("coyote-prepare-");

/** Install and build commands that also count their runs in a file outside the release. */
function countingPrepare(counter: string, buildFails = false) {
  const base = fastPrepare();
  return fastPrepare({
    install: { command: process.execPath, args: ["-e", `require('fs').appendFileSync(${JSON.stringify(counter)}, 'install\\n'); ${base.install?.args[1] ?? ""}`] },
    build: buildFails ? { command: process.execPath, args: ["-e", "console.error('the build broke'); process.exit(3)"] } : base.build,
  });
}

describe("prepareRelease", () => {
  test("copies a git checkout's tracked files into releases/<version>-<commit>, runs install and build there, and reuses a complete release", async () => {
    const dir = tempDir();
    const source = join(dir, "src");
    const commit = await writeCheckout(source, "1.4.0", {});
    // Never copied: untracked files, dependencies, state, build output, even when tracked.
    await writeFile(join(source, "untracked.txt"), "no");
    await mkdir(join(source, "node_modules", "x"), { recursive: true });
    await writeFile(join(source, "node_modules", "x", "index.js"), "");
    await mkdir(join(source, ".coyote"), { recursive: true });
    await writeFile(join(source, ".coyote", "state"), "");
    await mkdir(join(source, "pkg", "dist"), { recursive: true });
    await writeFile(join(source, "pkg", "dist", "out.js"), "");
    await writeFile(join(source, "pkg", "index.ts"), "export {};\n");
    await git(source, "add", "-f", "node_modules", "pkg");
    await git(source, "commit", "-q", "-m", "more");
    const head = (await git(source, "rev-parse", "--short=12", "HEAD")).trim();
    assert.notEqual(head, commit);
    const counter = join(dir, "count");
    const root = join(dir, "opt");
    const made = await prepareRelease(source, root, countingPrepare(counter));
    assert.equal(made.release, `1.4.0-${head}`);
    assert.equal(made.dir, join(root, "releases", made.release));
    assert.equal(made.reused, false);
    assert.deepEqual((await readdir(made.dir)).sort(), [RELEASE_MARKER, "behaviour.json", "cli.mjs", "component.mjs", "dist", "node_modules", "package.json", "pkg", "run.sh"]);
    assert.deepEqual(await readdir(join(made.dir, "node_modules")), ["installed"], "the checkout's node_modules is not copied");
    assert.deepEqual(await readdir(join(made.dir, "pkg")), ["index.ts"]);
    assert.equal((await stat(join(made.dir, "run.sh"))).mode & 0o777, 0o755);
    assert.equal((await stat(join(made.dir, "package.json"))).mode & 0o777, 0o644);
    assert.equal((JSON.parse(await readFile(join(made.dir, RELEASE_MARKER), "utf8")) as { commit: string }).commit, head);
    const again = await prepareRelease(source, root, countingPrepare(counter));
    assert.deepEqual(again, { ...made, reused: true });
    assert.equal(await readFile(counter, "utf8"), "install\n", "a complete release is not installed again");
  });

  test("a half-made release (no marker) is made again; a failed build leaves no marker", async () => {
    const dir = tempDir();
    const source = join(dir, "src");
    const commit = await writeCheckout(source, "2.0.0", {});
    const root = join(dir, "opt");
    const counter = join(dir, "count");
    await assert.rejects(prepareRelease(source, root, countingPrepare(counter, true)), (error: unknown) => error instanceof CliError && /building release 2\.0\.0-[0-9a-f]+: .* failed \(exit code 3\):\nthe build broke/.test(error.message));
    const dirOf = join(root, "releases", `2.0.0-${commit}`);
    await assert.rejects(lstat(join(dirOf, RELEASE_MARKER)), { code: "ENOENT" });
    await writeFile(join(dirOf, "left-over"), "from the interrupted run");
    const made = await prepareRelease(source, root, countingPrepare(counter));
    assert.equal(made.reused, false);
    await assert.rejects(lstat(join(dirOf, "left-over")), { code: "ENOENT" });
    assert.ok((await lstat(join(dirOf, RELEASE_MARKER))).isFile());
    assert.equal(await readFile(counter, "utf8"), "install\ninstall\n");
  });

  test("without git the release is named by a content hash; changed tracked files add one to the commit", async () => {
    const dir = tempDir();
    const source = join(dir, "src");
    const commit = await writeCheckout(source, "3.1.0", {});
    const root = join(dir, "opt");
    await writeFile(join(source, "cli.mjs"), "// changed\n");
    const dirty = await prepareRelease(source, root, fastPrepare());
    assert.match(dirty.release, new RegExp(`^3\\.1\\.0-${commit}-[0-9a-f]{8}$`));
    await rm(join(source, ".git"), { recursive: true });
    const plain = await prepareRelease(source, root, fastPrepare());
    assert.match(plain.release, /^3\.1\.0-[0-9a-f]{12}$/);
    assert.equal((await prepareRelease(source, root, fastPrepare())).release, plain.release, "the same content, the same release");
    await writeFile(join(source, "cli.mjs"), "// changed again\n");
    assert.notEqual((await prepareRelease(source, root, fastPrepare())).release, plain.release);
  });

  test("a version that cannot name a folder, or a folder that is no checkout, is refused", async () => {
    const dir = tempDir();
    const source = join(dir, "src");
    await mkdir(source);
    await writeFile(join(source, "package.json"), JSON.stringify({ version: "../../etc" }));
    await assert.rejects(prepareRelease(source, join(dir, "opt"), fastPrepare()), /cannot name a release folder/);
    await writeFile(join(source, "package.json"), JSON.stringify({ name: "x" }));
    await assert.rejects(prepareRelease(source, join(dir, "opt"), fastPrepare()), /no version in package\.json/);
    await assert.rejects(prepareRelease(join(dir, "missing"), join(dir, "opt"), fastPrepare()), /preparing a release from/);
  });
});
