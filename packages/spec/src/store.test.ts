import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { once } from "node:events";
import { chmod, mkdtemp, readFile, rm, stat, unlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, beforeEach, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { writeFileAtomic } from "./atomic.ts";
import { CoyoteError, ContractError } from "./errors.ts";
import { GitRepo } from "./git.ts";
import { ServiceStatus } from "./runtime.ts";
import type { Spec } from "./specs.ts";
import { INIT_MESSAGE, PENDING_JOURNAL, RECOVER_MESSAGE, StateStore, STORE_LOCK, type RecoveryReport } from "./store.ts";
import { commitCount, fingerprint, git } from "./test/support.ts";
import { AUTHOR, serviceSpec } from "./test/specs.ts";
import { parseSpec } from "./validate.ts";

const holderScript = fileURLToPath(new URL("./test/lock-holder.ts", import.meta.url));

const roots: string[] = [];
let root: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "coyote-store-"));
  roots.push(root);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});
after(async () => {
  for (const dir of roots) await rm(dir, { recursive: true, force: true });
});

/** A blog spec whose description names its version. */
function blog(version: number): Record<string, unknown> {
  return { ...serviceSpec("blog", 0), description: `version ${version}` };
}

function withoutGeneration(spec: Spec | undefined): unknown {
  assert.ok(spec !== undefined, "the spec exists");
  const { generation: _generation, ...rest } = spec;
  return rest;
}

function isCode(code: string): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof CoyoteError, `a CoyoteError, not ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

async function state(): Promise<{ files: string[]; commits: number }> {
  return { files: await fingerprint(root), commits: await commitCount(root) };
}

describe("StateStore.open", () => {
  test("closes a state folder that others may enter to 0700, and keeps the pass-through a daemon's group was given (0710)", async () => {
    const store = await StateStore.open(join(root, "state"));
    await chmod(store.root, 0o755);
    await StateStore.open(store.root);
    assert.equal((await stat(store.root)).mode & 0o777, 0o700);
    await chmod(store.root, 0o710);
    await StateStore.open(store.root);
    assert.equal((await stat(store.root)).mode & 0o777, 0o710);
  });

  test("creates the layout, with secrets/ and proxy/certs/ private, and a specs repository with one commit", async () => {
    const store = await StateStore.open(join(root, "state"));
    for (const folder of ["specs/services", "status", "stats", "proxy/certs", "activator", "inbox", "secrets", "run", "logs"]) {
      assert.ok((await stat(join(store.root, folder))).isDirectory(), folder);
    }
    assert.equal((await stat(join(store.root, "secrets"))).mode & 0o777, 0o700);
    assert.equal((await stat(join(store.root, "proxy/certs"))).mode & 0o777, 0o700);
    assert.equal((await git(store.root, "log", "--format=%s")).trim(), INIT_MESSAGE);
    assert.equal((await git(store.root, "symbolic-ref", "HEAD")).trim(), "refs/heads/main");
    assert.equal((await git(store.root, "config", "user.email")).trim(), "coyote@localhost");
    assert.equal((await stat(store.root)).mode & 0o777, 0o700);
    const again = await StateStore.open(join(root, "state"));
    assert.equal(await commitCount(again.root), 1, "opening again makes no commit");
    assert.deepEqual(again.recovery.gitLocksRemoved, []);
    assert.equal(again.recovery.committed, undefined);
  });

  test("path() resolves inside the state folder and refuses paths that leave it", async () => {
    const store = await StateStore.open(root);
    assert.equal(store.path("status/blog.json"), join(store.root, "status/blog.json"));
    for (const bad of ["../x", "status/../../x", "/etc/passwd", ""]) {
      assert.throws(() => store.path(bad), isCode("STORE_ERR_IO"), bad);
    }
  });
});

describe("applySpec", () => {
  test("writes pretty JSON, commits it with the author, and counts generations", async () => {
    const store = await StateStore.open(root);
    const first = await store.applySpec({ ...blog(1), generation: 42 }, { author: AUTHOR });
    assert.deepEqual({ ...first, revision: undefined }, { id: "blog", path: "specs/services/blog.json", changed: true, generation: 1, revision: undefined });
    const text = await readFile(join(root, "specs/services/blog.json"), "utf8");
    assert.ok(text.endsWith("}\n") && text.includes('\n  "id": "blog",\n'), "2-space indented with a final newline");
    assert.equal((JSON.parse(text) as { generation: number }).generation, 1, "the caller's generation is ignored");
    assert.equal((await git(root, "rev-parse", "HEAD")).trim(), first.revision);
    assert.equal((await git(root, "log", "-1", "--format=%an <%ae>|%s")).trim(), "Ada Admin <ada@example.org>|apply service blog (generation 1)");
    assert.equal(await git(root, "show", `${first.revision}:services/blog.json`), text, "the commit holds exactly the file");

    const same = await store.applySpec({ ...blog(1), generation: 7 }, { author: AUTHOR });
    assert.deepEqual(same, { ...first, changed: false });
    assert.equal(await commitCount(root), 2, "no commit when nothing changed");

    const second = await store.applySpec(blog(2), { author: AUTHOR, message: "describe version 2" });
    assert.equal(second.generation, 2);
    assert.equal((await git(root, "log", "-1", "--format=%s")).trim(), "describe version 2");
    assert.deepEqual(withoutGeneration(await store.getSpec("blog")), withoutGeneration(parseSpec(blog(2), "x")));

    const server = await store.applySpec(
      { schemaVersion: 1, kind: "Server", name: "box", hostname: "box.example.org" },
      { author: AUTHOR },
    );
    assert.deepEqual([server.id, server.path, server.generation], ["server", "specs/server.json", 1]);
    assert.deepEqual(await store.listSpecs(), [
      { id: "server", kind: "Server", generation: 1 },
      { id: "blog", kind: "Service", generation: 2 },
    ]);
  });

  test("an invalid spec throws a ContractError naming file and field, and changes nothing on disk", async () => {
    const store = await StateStore.open(root);
    await store.applySpec(blog(1), { author: AUTHOR });
    const before = await state();
    const bad = { ...blog(2), domains: [{ name: "Not_A_Domain" }] };
    await assert.rejects(store.applySpec(bad, { author: AUTHOR }), (error: unknown) => {
      assert.ok(error instanceof ContractError);
      assert.equal(error.code, "SPEC_ERR_INVALID");
      assert.match(error.message, /^specs\/services\/blog\.json: domains\[0\]\.name: not a valid domain name/);
      return true;
    });
    await assert.rejects(store.applySpec(bad, { author: AUTHOR, source: "upload.json" }), /^ContractError: upload\.json: domains\[0\]\.name/);
    await assert.rejects(store.applySpec({ ...blog(2), kind: "Blog" }, { author: AUTHOR }), (e: unknown) => e instanceof ContractError && e.code === "SPEC_ERR_UNKNOWN_KIND");
    await assert.rejects(store.applySpec({ ...serviceSpec("server", 0) }, { author: AUTHOR }), /id: "server" is reserved for the server spec/);
    await assert.rejects(store.applySpec(blog(2), { author: { name: "Eve <evil>", email: "eve@example.org" } }), ContractError);
    assert.deepEqual(await state(), before);
  });

  test("writers in one process are queued: parallel applies all land, one commit each, in a line", async () => {
    const store = await StateStore.open(root);
    const other = await StateStore.open(root);
    const ids = Array.from({ length: 8 }, (_, i) => `svc-${i}`);
    const results = await Promise.all([
      ...ids.map((id, i) => (i % 2 === 0 ? store : other).applySpec(serviceSpec(id, 0), { author: AUTHOR })),
      ...[1, 2, 3, 4].map((v) => store.applySpec(blog(v), { author: AUTHOR })),
    ]);
    assert.equal(new Set(results.map((r) => r.revision)).size, 12);
    assert.deepEqual(results.filter((r) => r.id === "blog").map((r) => r.generation), [1, 2, 3, 4]);
    assert.equal(await commitCount(root), 13);
    const parents = (await git(root, "rev-list", "--parents", "HEAD")).trim().split("\n");
    assert.ok(parents.every((line) => line.split(" ").length <= 2), "no merges");
    assert.equal((await store.listSpecs()).length, 9);
  });

  test("one applySpec takes a few tens of milliseconds", async () => {
    const store = await StateStore.open(root);
    await store.applySpec(blog(0), { author: AUTHOR });
    const times: number[] = [];
    for (let i = 1; i <= 20; i++) {
      const started = performance.now();
      await store.applySpec(blog(i), { author: AUTHOR });
      times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    console.log(`applySpec: median ${times[10]?.toFixed(1) ?? "?"} ms, max ${times[19]?.toFixed(1) ?? "?"} ms (20 applies)`);
    assert.ok((times[10] ?? Infinity) < 500, "not pathologically slow");
  });
});

describe("reading and deleting specs", () => {
  test("getSpec and listSpecs validate; one bad file is listed with its error and hides nothing", async () => {
    const store = await StateStore.open(root);
    await store.applySpec(blog(1), { author: AUTHOR });
    await writeFile(join(root, "specs/services/bad.json"), JSON.stringify({ ...serviceSpec("bad", 0), domains: [{ name: "Bad_Domain" }] }));
    await writeFile(join(root, "specs/services/torn.json"), '{"schemaVersion": 1, "ki');
    await writeFile(join(root, "specs/services/wrong.json"), JSON.stringify(serviceSpec("other", 0)));
    const list = await store.listSpecs();
    assert.deepEqual(list.map((e) => e.id), ["bad", "blog", "torn", "wrong"]);
    const errors = Object.fromEntries(list.map((e) => ["error" in e ? e.error.message : "ok", e.id]));
    assert.ok(Object.keys(errors).some((m) => m.startsWith('specs/services/bad.json: domains[0].name: not a valid domain name: "Bad_Domain"')));
    assert.ok(Object.keys(errors).some((m) => m.startsWith("specs/services/torn.json: (root): not valid JSON")));
    assert.ok(Object.keys(errors).some((m) => m.startsWith("specs/services/wrong.json: id: the file holds spec other")));
    await assert.rejects(store.getSpec("bad"), /^ContractError: specs\/services\/bad\.json: domains\[0\]\.name/);
    assert.equal(await store.getSpec("missing"), undefined);
    await assert.rejects(store.getSpec("../../etc/passwd"), ContractError);
    assert.equal(((await store.getSpec("blog")) as { description?: string } | undefined)?.description, "version 1");
    // readSpecs is the same listing with the parsed specs themselves.
    const read = await store.readSpecs();
    assert.deepEqual(read.map((e) => [e.id, "error" in e ? "error" : e.spec.kind]), [["bad", "error"], ["blog", "Service"], ["torn", "error"], ["wrong", "error"]]);
    assert.deepEqual(read.find((e) => e.id === "blog"), { id: "blog", spec: await store.getSpec("blog") });
  });

  test("deleteSpec commits the removal; a missing spec is SPEC_ERR_NOT_FOUND", async () => {
    const store = await StateStore.open(root);
    await store.applySpec(blog(1), { author: AUTHOR });
    const deleted = await store.deleteSpec("blog", { author: AUTHOR });
    assert.equal(deleted.revision, (await git(root, "rev-parse", "HEAD")).trim());
    assert.equal((await git(root, "log", "-1", "--format=%s")).trim(), "delete service blog");
    assert.equal((await git(root, "ls-tree", "-r", "--name-only", "HEAD")).trim(), "");
    assert.equal(await store.getSpec("blog"), undefined);
    const before = await state();
    await assert.rejects(store.deleteSpec("blog", { author: AUTHOR }), isCode("SPEC_ERR_NOT_FOUND"));
    assert.deepEqual(await state(), before);
  });
});

describe("history, diff and rollback", () => {
  test("round trip: v1, v2, v3 and a later service; rollback to v1, then to v3, then to the later state", async () => {
    const store = await StateStore.open(root);
    const v1 = (await store.applySpec(blog(1), { author: AUTHOR })).revision;
    const v2 = (await store.applySpec(blog(2), { author: { name: "Bob", email: "bob@example.org" } })).revision;
    const v3 = (await store.applySpec(blog(3), { author: AUTHOR })).revision;
    const withShop = (await store.applySpec(serviceSpec("shop", 1), { author: AUTHOR })).revision;

    const all = await store.history();
    assert.deepEqual(all.map((e) => e.revision), [withShop, v3, v2, v1, all[4]?.revision]);
    assert.equal(all[4]?.message, INIT_MESSAGE);
    const bobs = all[2];
    assert.ok(bobs !== undefined);
    assert.match(bobs.date, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/);
    assert.deepEqual(bobs, { revision: v2, author: { name: "Bob", email: "bob@example.org" }, date: bobs.date, message: "apply service blog (generation 2)", files: ["specs/services/blog.json"] });
    assert.deepEqual((await store.history("blog")).map((e) => e.revision), [v3, v2, v1]);
    assert.deepEqual((await store.history(undefined, 2)).map((e) => e.revision), [withShop, v3]);

    const d13 = await store.diff(v1, v3);
    assert.match(d13, /^--- a\/specs\/services\/blog\.json$/m);
    assert.match(d13, /^- {2}"description": "version 1",$/m);
    assert.match(d13, /^\+ {2}"description": "version 3",$/m);
    const dShop = await store.diff(withShop);
    assert.match(dShop, /^--- \/dev\/null\n\+\+\+ b\/specs\/services\/shop\.json$/m);
    assert.doesNotMatch(dShop, /blog\.json/);
    assert.equal(await store.diff(v3, v3), "");

    // Back to v1: the later service goes, blog has v1's content (its generation keeps counting).
    const back = await store.rollback(v1.slice(0, 10), { author: AUTHOR });
    assert.deepEqual(back.changed, ["specs/services/blog.json", "specs/services/shop.json"]);
    assert.deepEqual((await git(root, "ls-tree", "-r", "--name-only", back.revision)).trim().split("\n"), ["services/blog.json"]);
    assert.equal(await store.getSpec("shop"), undefined);
    const atV1 = parseSpec(JSON.parse(await git(root, "show", `${v1}:services/blog.json`)), "v1");
    assert.deepEqual(withoutGeneration(await store.getSpec("blog")), withoutGeneration(atV1));
    assert.equal((await store.getSpec("blog"))?.generation, 4);
    const [rollbackEntry] = await store.history(undefined, 1);
    assert.ok(rollbackEntry !== undefined);
    assert.equal(rollbackEntry.message, `rollback to ${v1.slice(0, 12)}: apply service blog (generation 1)`);
    assert.deepEqual(rollbackEntry.files, ["specs/services/blog.json", "specs/services/shop.json"]);
    assert.equal(await commitCount(root), 6, "a new commit; history is never rewritten");

    // Forward again to v3: blog gets v3's content, shop stays away (it came after v3).
    const forward = await store.rollback(v3, { author: AUTHOR });
    assert.deepEqual(forward.changed, ["specs/services/blog.json"]);
    const atV3 = parseSpec(JSON.parse(await git(root, "show", `${v3}:services/blog.json`)), "v3");
    assert.deepEqual(withoutGeneration(await store.getSpec("blog")), withoutGeneration(atV3));
    assert.equal((await store.getSpec("blog"))?.generation, 5);
    assert.equal(await store.getSpec("shop"), undefined);

    // To the state with the shop: the shop comes back exactly as it was.
    const shopBack = await store.rollback(withShop, { author: AUTHOR });
    assert.deepEqual(shopBack.changed, ["specs/services/shop.json"]);
    assert.equal(await readFile(join(root, "specs/services/shop.json"), "utf8"), await git(root, "show", `${withShop}:services/shop.json`));
    const again = await store.rollback(withShop, { author: AUTHOR });
    assert.deepEqual(again, { revision: shopBack.revision, changed: [] }, "nothing to do, no commit");
    assert.equal((await git(root, "fsck", "--strict")).trim(), "");
  });

  test("unknown, malformed and foreign revisions are refused and change nothing", async () => {
    const store = await StateStore.open(root);
    const v1 = (await store.applySpec(blog(1), { author: AUTHOR })).revision;
    await store.applySpec(blog(2), { author: AUTHOR });
    // A commit that exists in the object store but is not part of the history.
    const repo = new GitRepo(join(root, "specs"));
    const foreign = await repo.commitTree((await repo.readCommit(v1)).tree, undefined, "not in history", AUTHOR, AUTHOR);
    const before = await state();
    for (const revision of ["deadbeef", "0000000000000000000000000000000000000000", foreign]) {
      await assert.rejects(store.rollback(revision, { author: AUTHOR }), isCode("STORE_ERR_UNKNOWN_REVISION"), revision);
      await assert.rejects(store.diff(revision), isCode("STORE_ERR_UNKNOWN_REVISION"), revision);
    }
    for (const revision of ["HEAD", "main", "--output=/tmp/x", `${v1}^`, "abc", "", `-${v1}`, `${v1} `]) {
      await assert.rejects(store.rollback(revision, { author: AUTHOR }), isCode("STORE_ERR_UNKNOWN_REVISION"), revision);
      await assert.rejects(store.diff(v1, revision), isCode("STORE_ERR_UNKNOWN_REVISION"), revision);
    }
    assert.deepEqual(await state(), before);
  });

  test("a rollback to a revision holding an invalid spec is refused before anything changes", async () => {
    await StateStore.open(root);
    await writeFile(join(root, "specs/services/bad.json"), JSON.stringify({ ...serviceSpec("bad", 0), domains: [{ name: "Bad_Domain" }] }));
    const store = await StateStore.open(root);
    const recovered = store.recovery.committed;
    assert.ok(recovered !== undefined, "the hand-written file was committed by the recovery");
    assert.equal((await git(root, "log", "-1", "--format=%s")).trim(), RECOVER_MESSAGE);
    await store.deleteSpec("bad", { author: AUTHOR });
    await store.applySpec(blog(1), { author: AUTHOR });
    const before = await state();
    await assert.rejects(store.rollback(recovered, { author: AUTHOR }), (error: unknown) => {
      assert.ok(error instanceof ContractError);
      assert.match(error.message, new RegExp(`^specs/services/bad\\.json at ${recovered.slice(0, 12)}: domains\\[0\\]\\.name: not a valid domain name`));
      return true;
    });
    assert.deepEqual(await state(), before);
  });
});

describe("runtime files", () => {
  const status: ServiceStatus = { schemaVersion: 1, id: "blog", observedGeneration: 1, conditions: [], updatedAt: "2026-01-02T03:04:05Z" };

  test("writeJson validates before writing; readJson validates and names file and field", async () => {
    const store = await StateStore.open(root);
    await store.writeJson("status/blog.json", ServiceStatus, status);
    assert.deepEqual(await store.readJson("status/blog.json", ServiceStatus), status);
    assert.equal(await store.readJson("status/none.json", ServiceStatus), undefined);
    const before = await readFile(join(root, "status/blog.json"), "utf8");
    await assert.rejects(store.writeJson("status/blog.json", ServiceStatus, { ...status, observedGeneration: -1 }), /^ContractError: status\/blog\.json: observedGeneration:/);
    assert.equal(await readFile(join(root, "status/blog.json"), "utf8"), before, "the old document is kept");
    await assert.rejects(store.writeJson("specs/services/blog.json", ServiceStatus, status), isCode("STORE_ERR_IO"));
    await assert.rejects(store.writeJson("../outside.json", ServiceStatus, status), isCode("STORE_ERR_IO"));
    await writeFile(join(root, "status/bad.json"), JSON.stringify({ ...status, conditions: [{ type: "ready" }] }));
    await assert.rejects(store.readJson("status/bad.json", ServiceStatus), /^ContractError: status\/bad\.json: conditions\[0\]\.type: must be a PascalCase word/);
  });

  test("alarms append validated lines; torn and bad lines become warnings with their line number", async () => {
    const store = await StateStore.open(root);
    const alarm = {
      schemaVersion: 1,
      id: "alarm-0001",
      key: "minion/converge/blog",
      state: "raised",
      severity: "warning",
      source: "minion",
      code: "CONVERGE_FAILED",
      message: "blog does not converge",
      at: "2026-01-02T03:04:05Z",
    } as const;
    await store.appendAlarm(alarm);
    await writeFile(join(root, "alarms.jsonl"), '{"not": "an alarm"}\n', { flag: "a" });
    await store.appendAlarm({ ...alarm, id: "alarm-0002", state: "cleared" });
    await writeFile(join(root, "alarms.jsonl"), '{"schemaVersion":1,"id":"al', { flag: "a" });
    const before = await readFile(join(root, "alarms.jsonl"), "utf8");
    await assert.rejects(store.appendAlarm({ ...alarm, code: "lowercase" }), ContractError);
    assert.equal(await readFile(join(root, "alarms.jsonl"), "utf8"), before);
    const { alarms, warnings } = await store.readAlarms();
    assert.deepEqual(alarms.map((a) => a.id), ["alarm-0001", "alarm-0002"]);
    assert.equal(warnings.length, 2);
    assert.match(warnings[0] ?? "", /^alarms\.jsonl line 2: /);
    assert.match(warnings[1] ?? "", /^alarms\.jsonl line 4: \(root\): not valid JSON/);
    await store.appendAlarm({ ...alarm, id: "alarm-0003" });
    assert.deepEqual((await store.readAlarms()).alarms.map((a) => a.id), ["alarm-0001", "alarm-0002", "alarm-0003"], "a torn last line does not swallow the next alarm");
  });

  test("secrets are written with mode 0600 and their names are validated", async () => {
    const store = await StateStore.open(root);
    await store.writeSecret("vultr-api-key", "k3y");
    assert.equal((await stat(join(root, "secrets/vultr-api-key"))).mode & 0o777, 0o600);
    assert.equal((await store.readSecret("vultr-api-key"))?.toString("utf8"), "k3y");
    assert.equal(await store.readSecret("missing"), undefined);
    await assert.rejects(store.writeSecret("../escape", "x"), ContractError);
    await assert.rejects(store.readSecret("Upper"), ContractError);
  });
});

describe("crash recovery", () => {
  test("a work tree ahead of the history (crash between rename and commit, no journal) is committed as a recovery", async () => {
    let store = await StateStore.open(root);
    await store.applySpec(blog(1), { author: AUTHOR });
    const doc = `${JSON.stringify(parseSpec({ ...blog(9), generation: 2 }, "x"), null, 2)}\n`;
    await writeFile(join(root, "specs/services/blog.json"), doc);
    await unlink(join(root, "specs/services/blog.json")).then(() => writeFile(join(root, "specs/services/blog.json"), doc));
    const reports: RecoveryReport[] = [];
    store = await StateStore.open(root, { onRecovery: (report) => reports.push(report) });
    assert.ok(store.recovery.committed !== undefined);
    assert.equal(reports.length, 1);
    assert.equal((await git(root, "log", "-1", "--format=%s|%an")).trim(), `${RECOVER_MESSAGE}|Coyote`);
    assert.equal(await git(root, "show", "HEAD:services/blog.json"), doc);
  });

  test("a journaled commit whose files were written is finished with its own author and message", async () => {
    const store = await StateStore.open(root);
    const base = (await store.applySpec(blog(1), { author: AUTHOR })).revision;
    await store.applySpec(serviceSpec("shop", 0), { author: AUTHOR });
    const head = (await git(root, "rev-parse", "HEAD")).trim();
    // What a writer killed halfway through a two-file change leaves: objects and commit stored,
    // the journal written, one of two files replaced, the branch not moved.
    const repo = new GitRepo(join(root, "specs"));
    const blogDoc = Buffer.from(`${JSON.stringify(parseSpec({ ...blog(2), generation: 2 }, "x"), null, 2)}\n`);
    const shopDoc = Buffer.from(`${JSON.stringify(parseSpec({ ...serviceSpec("shop", 1), generation: 2 }, "x"), null, 2)}\n`);
    const files = await repo.lsTree(head);
    files.set("services/blog.json", { mode: "100644", type: "blob", oid: await repo.writeBlob(blogDoc) });
    files.set("services/shop.json", { mode: "100644", type: "blob", oid: await repo.writeBlob(shopDoc) });
    const pending = await repo.commitTree(await repo.writeTree(files), head, "change two services", AUTHOR, AUTHOR);
    await writeFile(join(root, PENDING_JOURNAL), `${pending}\n`);
    await writeFileAtomic(join(root, "specs/services/blog.json"), blogDoc);

    const reopened = await StateStore.open(root);
    assert.equal(reopened.recovery.completed, pending);
    assert.equal(reopened.recovery.committed, undefined);
    assert.equal((await git(root, "rev-parse", "HEAD")).trim(), pending);
    assert.equal((await git(root, "log", "-1", "--format=%s|%an")).trim(), "change two services|Ada Admin");
    assert.deepEqual(await readFile(join(root, "specs/services/shop.json")), shopDoc, "the second file was finished");

    // A journal whose files were never written is dropped: what readers saw stays the truth.
    const dropped = await repo.commitTree(await repo.writeTree(await repo.lsTree(base)), pending, "never happened", AUTHOR, AUTHOR);
    await writeFile(join(root, PENDING_JOURNAL), `${dropped}\n`);
    const third = await StateStore.open(root);
    assert.equal(third.recovery.completed, undefined);
    assert.equal((await git(root, "rev-parse", "HEAD")).trim(), pending);
  });

  test("stale git locks and temporary files are removed; a young git lock is waited for", async () => {
    const store = await StateStore.open(root);
    await store.applySpec(blog(1), { author: AUTHOR });
    const old = new Date(Date.now() - 60_000);
    for (const lock of ["specs/.git/index.lock", "specs/.git/refs/heads/main.lock", "specs/.git/HEAD.lock"]) {
      await writeFile(join(root, lock), "");
      await utimes(join(root, lock), old, old);
    }
    await writeFile(join(root, "specs/services/.blog.json.12345.0123456789ab.tmp"), '{"torn');
    await writeFile(join(root, "status/.blog.json.999999999.0123456789ab.tmp"), "dead writer");
    const liveTemp = `status/.blog.json.${process.pid}.0123456789ab.tmp`;
    await writeFile(join(root, liveTemp), "live writer");
    const reopened = await StateStore.open(root);
    assert.deepEqual(reopened.recovery.gitLocksRemoved.sort(), ["specs/.git/HEAD.lock", "specs/.git/index.lock", "specs/.git/refs/heads/main.lock"]);
    assert.deepEqual(reopened.recovery.tempFilesRemoved.sort(), ["specs/services/.blog.json.12345.0123456789ab.tmp", "status/.blog.json.999999999.0123456789ab.tmp"]);
    assert.equal(await readFile(join(root, liveTemp), "utf8"), "live writer");
    assert.equal((await reopened.applySpec(blog(2), { author: AUTHOR })).generation, 2);

    // A young ref lock, as a git process of a writer killed a moment ago holds it: waited for.
    await writeFile(join(root, "specs/.git/refs/heads/main.lock"), "");
    const timer = setTimeout(() => void unlink(join(root, "specs/.git/refs/heads/main.lock")), 300);
    const started = Date.now();
    const waited = await reopened.applySpec(blog(3), { author: AUTHOR });
    clearTimeout(timer);
    assert.ok(Date.now() - started >= 250, "it waited for the lock to go");
    assert.equal(waited.generation, 3);
  });

  test("another process holding the store lock makes a writer wait and fail with STORE_ERR_LOCKED; once dead it is taken over", async () => {
    const reports: RecoveryReport[] = [];
    const store = await StateStore.open(root, { lockTimeoutMs: 300, onRecovery: (report) => reports.push(report) });
    await store.applySpec(blog(1), { author: AUTHOR });
    const child = spawn(process.execPath, [holderScript, join(root, STORE_LOCK)], { stdio: "pipe" });
    try {
      await waitForLine(child, "locked");
      const before = await state();
      const started = Date.now();
      await assert.rejects(store.applySpec(blog(2), { author: AUTHOR }), (error: unknown) => {
        assert.ok(error instanceof CoyoteError);
        assert.equal(error.code, "STORE_ERR_LOCKED");
        assert.match(error.message, new RegExp(`held by pid ${child.pid ?? -1} `));
        return true;
      });
      assert.ok(Date.now() - started >= 300);
      assert.deepEqual(await state(), before);
    } finally {
      const exited = once(child, "exit");
      child.kill("SIGKILL");
      await exited;
    }
    assert.equal((await store.applySpec(blog(2), { author: AUTHOR })).generation, 2);
    assert.equal(reports.at(-1)?.tookOverLockOf?.pid, child.pid);
  });
});

async function waitForLine(child: ChildProcessWithoutNullStreams, line: string): Promise<void> {
  let out = "";
  child.stdout.setEncoding("utf8");
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: string) => {
      out += chunk;
      if (out.split("\n").includes(line)) resolve();
    });
    child.once("exit", (code) => {
      reject(new Error(`child exited (${code ?? "signal"}) before printing ${line}`));
    });
  });
}
