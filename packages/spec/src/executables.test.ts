import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { findExecutable } from "./executables.ts";

describe("findExecutable", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "coyote-exec-"));
    await writeFile(join(dir, "runs"), "#!/bin/sh\n");
    await chmod(join(dir, "runs"), 0o755);
    await writeFile(join(dir, "plain"), "not a program\n");
    await chmod(join(dir, "plain"), 0o644);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("finds an executable in the first folder that has it, and nothing that cannot run", () => {
    assert.equal(findExecutable("runs", ["/nonexistent", dir]), join(dir, "runs"));
    assert.equal(findExecutable("plain", [dir]), undefined, "a file without the execute bit is no program");
    assert.equal(findExecutable("absent", [dir]), undefined);
  });

  it("does not read an empty folder name as the working folder", () => {
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      assert.equal(findExecutable("runs", [""]), undefined);
    } finally {
      process.chdir(cwd);
    }
  });
});
