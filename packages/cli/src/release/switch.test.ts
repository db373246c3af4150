import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { lstat, mkdir, readdir, readlink, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { tempDirs } from "@coyote/testing";
import { CliError } from "../errors.ts";
import { RELEASE_MARKER } from "./prepare.ts";
import { CURRENT, PREVIOUS, readReleaseLink, rollback, switchRelease } from "./switch.ts";

const tempDir = tempDirs("coyote-switch-");

/** An install folder with complete releases of these names (and one without its marker). */
async function installFolder(...releases: string[]): Promise<string> {
  const root = tempDir();
  for (const release of releases) {
    await mkdir(join(root, "releases", release), { recursive: true });
    await writeFile(join(root, "releases", release, RELEASE_MARKER), JSON.stringify({ release }));
  }
  await mkdir(join(root, "releases", "9.9.9-half"), { recursive: true });
  return root;
}

describe("switching releases", () => {
  test("a switch points current at the new release and previous at the old; rollback goes back, and forward again", async () => {
    const root = await installFolder("1.0.0-aaa", "1.1.0-bbb");
    assert.deepEqual(await switchRelease(root, "1.0.0-aaa"), { current: "1.0.0-aaa", previous: undefined });
    assert.equal(await readReleaseLink(root, PREVIOUS), undefined);
    assert.deepEqual(await switchRelease(root, "1.1.0-bbb"), { current: "1.1.0-bbb", previous: "1.0.0-aaa" });
    assert.equal(await readlink(join(root, CURRENT)), join("releases", "1.1.0-bbb"));
    assert.equal(await readlink(join(root, PREVIOUS)), join("releases", "1.0.0-aaa"));
    assert.deepEqual(await switchRelease(root, "1.1.0-bbb"), { current: "1.1.0-bbb", previous: "1.0.0-aaa" }, "switching to the current release changes nothing");
    assert.deepEqual(await rollback(root), { current: "1.0.0-aaa", previous: "1.1.0-bbb" });
    assert.equal(await readReleaseLink(root, CURRENT), "1.0.0-aaa");
    assert.deepEqual(await rollback(root), { current: "1.1.0-bbb", previous: "1.0.0-aaa" });
    assert.deepEqual((await readdir(root)).sort(), [CURRENT, PREVIOUS, "releases"], "no temporary link is left");
  });

  test("an incomplete release, a missing previous and a link out of the releases folder are refused", async () => {
    const root = await installFolder("1.0.0-aaa");
    await assert.rejects(switchRelease(root, "9.9.9-half"), (e: unknown) => e instanceof CliError && /not a complete release/.test(e.message));
    await assert.rejects(switchRelease(root, "../../etc"), (e: unknown) => e instanceof CliError && /not a release name/.test(e.message));
    await switchRelease(root, "1.0.0-aaa");
    await assert.rejects(rollback(root), (e: unknown) => e instanceof CliError && /no previous release/.test(e.message));
    const other = await installFolder();
    await symlink("/etc", join(other, CURRENT));
    await assert.rejects(readReleaseLink(other, CURRENT), /not at a release/);
  });

  test("each link is swapped atomically: a reader never finds current missing while releases switch", async () => {
    const root = await installFolder("1.0.0-aaa", "1.1.0-bbb");
    await switchRelease(root, "1.0.0-aaa");
    // A reader in its own process, so that it runs between any two steps of a switch.
    const reader = spawn(process.execPath, ["-e", `
      const fs = require("fs");
      let missing = 0, reads = 0;
      process.on("SIGTERM", () => { process.stdout.write(JSON.stringify({ missing, reads })); process.exit(0); });
      process.stdout.write("ready\\n");
      const tick = () => {
        for (let i = 0; i < 200; i++) { try { fs.readlinkSync(${JSON.stringify(join(root, CURRENT))}); } catch { missing++; } reads++; }
        setImmediate(tick);
      };
      tick();
    `], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    reader.stdout.setEncoding("utf8");
    reader.stdout.on("data", (chunk: string) => (out += chunk));
    while (!out.includes("ready")) await new Promise((resolve) => setTimeout(resolve, 10));
    for (let i = 0; i < 300; i++) await switchRelease(root, i % 2 === 0 ? "1.1.0-bbb" : "1.0.0-aaa");
    await switchRelease(root, "1.1.0-bbb");
    await rollback(root);
    reader.kill("SIGTERM");
    await once(reader, "exit");
    const { missing, reads } = JSON.parse(out.slice(out.indexOf("{"))) as { missing: number; reads: number };
    assert.ok(reads > 1000, `the reader read ${reads} times`);
    assert.equal(missing, 0, `a reader found a link missing ${missing} times in ${reads} reads`);
    assert.ok((await lstat(join(root, PREVIOUS))).isSymbolicLink());
  });
});
