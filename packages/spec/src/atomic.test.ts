import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { appendLineDurable, atomicTempPath, atomicTempWriter, onAtomicWrite, removeStaleTempFiles, writeFileAtomic, type AtomicWrite } from "./atomic.ts";
import { CoyoteError } from "./errors.ts";

const run = promisify(execFile);
const atomicModule = fileURLToPath(new URL("./atomic.ts", import.meta.url));

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "coyote-atomic-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("writeFileAtomic", () => {
  test("replaces the target and leaves no temporary file", async () => {
    const target = join(dir, "replace.json");
    await writeFile(target, "old\n");
    await writeFileAtomic(target, "new\n");
    assert.equal(await readFile(target, "utf8"), "new\n");
    await writeFileAtomic(target, new Uint8Array([1, 2, 3]));
    assert.deepEqual([...(await readFile(target))], [1, 2, 3]);
    assert.deepEqual((await readdir(dir)).filter((n) => n.includes("replace.json")), ["replace.json"]);
  });

  test("applies the mode exactly, whatever the umask", async () => {
    const target = join(dir, "secret");
    const previous = process.umask(0o077);
    try {
      await writeFileAtomic(target, "s3cret", { mode: 0o640 });
      assert.equal((await stat(target)).mode & 0o777, 0o640);
      await writeFileAtomic(target, "s3cret", { mode: 0o600 });
      assert.equal((await stat(target)).mode & 0o777, 0o600);
    } finally {
      process.umask(previous);
    }
  });

  test("a write that fails midway (file size limit) keeps the old content and removes the temporary file", async () => {
    const target = join(dir, "big.txt");
    await writeFile(target, "old content\n");
    // A real I/O failure in the middle of the write: the shell's file size limit (8 KiB) makes the
    // kernel refuse the rest of a 100 kB write with EFBIG (Node ignores SIGXFSZ).
    const script = `import { writeFileAtomic } from ${JSON.stringify(atomicModule)};
      try { await writeFileAtomic(${JSON.stringify(target)}, Buffer.alloc(100000, 65)); console.log("written"); }
      catch (error) { console.log(error.code + " " + error.message); }`;
    const { stdout } = await run("/bin/sh", ["-c", `ulimit -f 8; exec "$0" --input-type=module -e "$1"`, process.execPath, script]);
    assert.match(stdout, /^STORE_ERR_IO writing .*big\.txt: EFBIG/);
    assert.equal(await readFile(target, "utf8"), "old content\n");
    assert.deepEqual((await readdir(dir)).filter((n) => n.includes("big.txt")), ["big.txt"]);
  });

  test("a failing rename (the target is a folder) removes the temporary file", async () => {
    const target = join(dir, "folder");
    await mkdir(join(target, "inside"), { recursive: true });
    await assert.rejects(writeFileAtomic(target, "x"), (error: unknown) => error instanceof CoyoteError && error.code === "STORE_ERR_IO");
    assert.deepEqual((await readdir(dir)).filter((n) => n.includes("folder")), ["folder"]);
  });

  test("a folder that is not writable fails and keeps the old content", { skip: process.getuid?.() === 0 ? "root may write anywhere" : false }, async () => {
    const sub = join(dir, "readonly");
    await mkdir(sub);
    await writeFile(join(sub, "f"), "old");
    const { chmod } = await import("node:fs/promises");
    await chmod(sub, 0o500);
    try {
      await assert.rejects(writeFileAtomic(join(sub, "f"), "new"), (error: unknown) => error instanceof CoyoteError && error.code === "STORE_ERR_IO");
      assert.equal(await readFile(join(sub, "f"), "utf8"), "old");
    } finally {
      await chmod(sub, 0o700);
    }
  });
});

describe("onAtomicWrite", () => {
  test("tells each write with its folder's mtime before and after; a listener that throws fails no write", async () => {
    const sub = join(dir, "told");
    await mkdir(sub);
    const told: AtomicWrite[] = [];
    const stopThrowing = onAtomicWrite(() => {
      throw new Error("a broken listener");
    });
    const stop = onAtomicWrite((write) => told.push(write));
    try {
      const before = (await stat(sub)).mtimeMs;
      await writeFileAtomic(join(sub, "a.json"), "{}\n");
      assert.equal(await readFile(join(sub, "a.json"), "utf8"), "{}\n");
      assert.equal(told.length, 1);
      const [write] = told;
      assert.ok(write);
      assert.equal(write.path, join(sub, "a.json"));
      assert.equal(write.folderMtimeBefore, before, "the mtime before the temporary file was made");
      assert.equal(write.folderMtimeAfter, (await stat(sub)).mtimeMs);
    } finally {
      stop();
      stopThrowing();
    }
    await writeFileAtomic(join(sub, "b.json"), "{}\n");
    assert.equal(told.length, 1, "a listener that stopped is told nothing");
  });
});

describe("appendLineDurable", () => {
  test("appends lines, repairs a torn last line and refuses line breaks", async () => {
    const file = join(dir, "log.jsonl");
    await appendLineDurable(file, '{"a":1}');
    await appendLineDurable(file, '{"a":2}');
    assert.equal(await readFile(file, "utf8"), '{"a":1}\n{"a":2}\n');
    await writeFile(file, '{"a":1}\n{"a":', { flag: "a" });
    await appendLineDurable(file, '{"a":3}');
    assert.equal(await readFile(file, "utf8"), '{"a":1}\n{"a":2}\n{"a":1}\n{"a":\n{"a":3}\n');
    await assert.rejects(appendLineDurable(file, "two\nlines"), (error: unknown) => error instanceof CoyoteError && error.code === "STORE_ERR_IO");
  });

  test("concurrent appenders never interleave inside a line", async () => {
    const file = join(dir, "concurrent.jsonl");
    const lines = Array.from({ length: 200 }, (_, i) => JSON.stringify({ i, pad: "x".repeat(i * 10) }));
    await Promise.all(lines.map((line) => appendLineDurable(file, line)));
    const written = (await readFile(file, "utf8")).split("\n").filter((l) => l !== "");
    assert.deepEqual([...written].sort(), [...lines].sort());
  });
});

describe("removeStaleTempFiles", () => {
  test("removes temporary files of dead writers only, or all when told", async () => {
    const sub = join(dir, "temps");
    await mkdir(sub);
    const dead = join(sub, ".a.json.999999999.0123456789ab.tmp");
    const live = atomicTempPath(join(sub, "b.json"));
    await writeFile(dead, "x");
    await writeFile(live, "x");
    await writeFile(join(sub, "keep.json"), "x");
    assert.equal(atomicTempWriter(".a.json.999999999.0123456789ab.tmp"), 999999999);
    assert.equal(atomicTempWriter("keep.json"), undefined);
    assert.deepEqual(await removeStaleTempFiles(sub), [dead]);
    assert.deepEqual((await readdir(sub)).sort(), [live.slice(sub.length + 1), "keep.json"].sort());
    assert.deepEqual(await removeStaleTempFiles(sub, { all: true }), [live]);
    assert.deepEqual(await readdir(sub), ["keep.json"]);
  });
});
