import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createLogger, type CoyoteLogger } from "@coyote/log";
import { errorText, observeFragment, readTextIfExists } from "./index.ts";

describe("fragment files", () => {
  let dir: string;
  let logFile: string;
  let logger: CoyoteLogger;
  const parse = (text: string): { id: string } => {
    const value = JSON.parse(text) as { id?: unknown };
    if (typeof value.id !== "string") throw new Error("the fragment names no id");
    return { id: value.id };
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "coyote-actuator-files-"));
    logFile = join(dir, "minion.log");
    logger = createLogger({ component: "minion", file: logFile });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("a missing file is no text and no fragment", async () => {
    assert.equal(await readTextIfExists(join(dir, "absent.json")), undefined);
    assert.deepEqual(await observeFragment(join(dir, "absent.json"), parse, logger, "mail"), { text: undefined, fragment: undefined });
  });

  test("a valid fragment is parsed, an invalid one is kept as text and logged", async () => {
    await writeFile(join(dir, "good.json"), '{"id":"good"}');
    await writeFile(join(dir, "bad.json"), '{"id":7}');
    assert.deepEqual(await observeFragment(join(dir, "good.json"), parse, logger, "mail"), { text: '{"id":"good"}', fragment: { id: "good" } });
    assert.deepEqual(await observeFragment(join(dir, "bad.json"), parse, logger, "mail"), { text: '{"id":7}', fragment: undefined });
    await logger.close();
    const log = await readFile(logFile, "utf8");
    assert.match(log, /the service's mail fragment is invalid; it is rewritten/);
    assert.match(log, /bad\.json/);
  });

  test("a file that cannot be read is an error, not a missing file", async () => {
    // A folder in the file's place: reading fails with EISDIR, which must not read as "no fragment".
    await assert.rejects(readTextIfExists(dir), /EISDIR/);
    assert.equal(errorText(new Error("boom")), "boom");
    assert.equal(errorText("plain"), "plain");
  });
});
