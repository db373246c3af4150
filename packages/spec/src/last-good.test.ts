import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { LastGood } from "./last-good.ts";
import { ServerSpec } from "./specs.ts";
import { parseJson } from "./validate.ts";

describe("LastGood", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "last-good-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const file = () => join(dir, "server.json");
  const keepFile = () => join(dir, "kept", "server.json");
  const read = async (): Promise<ServerSpec | undefined> => {
    const text = await readFile(file(), "utf8").catch(() => undefined);
    return text === undefined ? undefined : parseJson(ServerSpec, text, "specs/server.json");
  };
  const good = (hostname: string) => JSON.stringify({ schemaVersion: 1, kind: "Server", name: "box", hostname });

  it("has nothing before the first valid version, and says why when the first one is bad", async () => {
    const holder = new LastGood({ schema: ServerSpec, label: "specs/server.json", keepFile: keepFile() });
    assert.deepEqual(await holder.refresh(read), { value: undefined, problem: undefined, changed: false });
    await writeFile(file(), JSON.stringify({ schemaVersion: 1, kind: "Server", name: "box", hostname: 7 }));
    const bad = await holder.refresh(read);
    assert.equal(bad.value, undefined);
    assert.match(bad.problem ?? "", /specs\/server\.json: hostname: .*; no valid version was ever applied/);
  });

  it("keeps the last good version through an invalid and a missing file, on disk across a restart", async () => {
    const holder = new LastGood({ schema: ServerSpec, label: "specs/server.json", keepFile: keepFile() });
    await writeFile(file(), good("box.example"));
    const first = await holder.refresh(read);
    assert.equal(first.value?.hostname, "box.example");
    assert.equal(first.changed, true);
    assert.equal((await stat(keepFile())).mode & 0o777, 0o600);

    await writeFile(file(), JSON.stringify({ schemaVersion: 1, kind: "Server", name: "box", hostname: "box.example", dns: { backend: "bogus" } }));
    const invalid = await holder.refresh(read);
    assert.equal(invalid.value?.hostname, "box.example", "the last good version stays");
    assert.equal(invalid.changed, false);
    assert.match(invalid.problem ?? "", /specs\/server\.json: dns\.backend: .*keeping the last good version/);

    // A restarted daemon finds the kept copy before it reads the (still invalid) file.
    const restarted = new LastGood({ schema: ServerSpec, label: "specs/server.json", keepFile: keepFile() });
    const afterRestart = await restarted.refresh(read);
    assert.equal(afterRestart.value?.hostname, "box.example");
    assert.match(afterRestart.problem ?? "", /dns\.backend/);

    await rm(file());
    const missing = await restarted.refresh(read);
    assert.equal(missing.value?.hostname, "box.example");
    assert.match(missing.problem ?? "", /specs\/server\.json: the file is missing; keeping the last good version/);

    await writeFile(file(), good("new.example"));
    const fixed = await restarted.refresh(read);
    assert.deepEqual([fixed.value?.hostname, fixed.problem, fixed.changed], ["new.example", undefined, true]);
    assert.equal(parseJson(ServerSpec, await readFile(keepFile(), "utf8"), "kept").hostname, "new.example");
  });

  it("never trusts a damaged kept copy", async () => {
    await writeFile(keepFile(), "{ not json");
    await writeFile(file(), "{ also not json");
    const holder = new LastGood({ schema: ServerSpec, label: "specs/server.json", keepFile: keepFile() });
    const state = await holder.refresh(read);
    assert.equal(state.value, undefined);
    assert.match(state.problem ?? "", /no valid version was ever applied \(the kept copy is unusable: /);
  });
});
