/**
 * The store writes git objects and moves the branch in-process: these tests hold it to what the
 * `git` binary does with the same input (the same object ids, reflog lines, packed refs), check
 * that git reads everything it wrote (`git fsck --strict`, `git log`, `git show`, `git reflog`),
 * and that the history is packed by `git gc` without losing anything.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, test } from "node:test";
import { promisify } from "node:util";
import { CoyoteError } from "./errors.ts";
import { buildTrees, commitObject, formatIdent, timezoneOffset, type TreeEntry } from "./git-objects.ts";
import { readRef, updateRef, ZERO_OID } from "./git-refs.ts";
import { GitRepo } from "./git.ts";
import { PENDING_JOURNAL, StateStore, type MaintenanceReport } from "./store.ts";
import { estimateLooseObjects } from "./store-maintenance.ts";
import { git, gitWithInput } from "./test/support.ts";
import { AUTHOR, serviceSpec } from "./test/specs.ts";
import { parseSpec } from "./validate.ts";

const run = promisify(execFile);
let root: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "coyote-store-git-"));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** git in the specs repository with more environment (author, committer, dates). */
async function gitEnv(extra: Record<string, string>, input: string, ...args: string[]): Promise<string> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("GIT_")) env[key] = value;
  const child = run("git", args, { cwd: join(root, "specs"), env: { ...env, GIT_DIR: join(root, "specs", ".git"), GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null", LC_ALL: "C", ...extra } });
  child.child.stdin?.end(input);
  return (await child).stdout.trim();
}

function isGitError(error: unknown): boolean {
  assert.ok(error instanceof CoyoteError, `a CoyoteError, not ${String(error)}`);
  assert.equal(error.code, "STORE_ERR_GIT", error.message);
  return true;
}

describe("objects written in-process", () => {
  test("trees and commits get the very ids git gives them, identities cleaned as git cleans them", async () => {
    await StateStore.open(root);
    const repo = new GitRepo(join(root, "specs"));
    const blob = await repo.writeBlob(Buffer.from("{}\n"));
    assert.equal(blob, await gitWithInput(root, "{}\n", "hash-object", "--stdin").then((b) => b.toString("utf8").trim()));
    // "a.b" sorts before the folder "a" (compared as "a/"), which sorts before "a0"; U+FF01 comes
    // before an emoji in UTF-8 (git's order), after it in UTF-16 (JavaScript's).
    const files = new Map<string, TreeEntry>(["a.b", "a/x.json", "a0", "services/blog.json", "server.json", "\u{1F600}.json", "\uFF01.json"].map((p) => [p, { mode: "100644", type: "blob", oid: blob }]));
    const { root: tree, trees } = buildTrees(files);
    const input = trees.map((t) => t.entries.map((e) => `${e.mode} ${e.type} ${e.oid}\t${e.name}\0`).join("")).join("\0");
    const ids = (await gitWithInput(root, input, "mktree", "-z", "--batch")).toString("utf8").trim().split("\n");
    assert.deepEqual(ids, trees.map((t) => t.oid));
    assert.equal(ids.at(-1), tree);

    const when = new Date(1_765_000_000_000);
    const date = `@${Math.floor(when.getTime() / 1000)} ${timezoneOffset(when)}`;
    for (const [author, message] of [
      [{ name: "Ada Jr.", email: "ada@example.org." }, "one line"],
      [{ name: " 'Zoë' Ümlaut, ", email: "<zoe@example.org>" }, "subject\n\nbody with trailer\n\nSigned-off-by: Ada <ada@example.org>\n"],
    ] as const) {
      const expected = await gitEnv(
        { GIT_AUTHOR_NAME: author.name, GIT_AUTHOR_EMAIL: author.email, GIT_COMMITTER_NAME: AUTHOR.name, GIT_COMMITTER_EMAIL: AUTHOR.email, GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date },
        message.endsWith("\n") ? message : `${message}\n`,
        "commit-tree", "--no-gpg-sign", tree,
      );
      assert.equal(commitObject(tree, [], message, author, AUTHOR, when).oid, expected, `commit by ${JSON.stringify(author)}`);
    }
    assert.throws(() => formatIdent({ name: "...", email: "a@b" }, when), isGitError);
  });

  test("a history of applies, deletes and a rollback is one git fsck, git log, git show and git reflog read", async () => {
    const store = await StateStore.open(root);
    const first = await store.applySpec(serviceSpec("blog", 0), { author: AUTHOR, message: "first blog\n\nwhy: a trailer follows\n\nReviewed-by: Bo <bo@example.org>" });
    await store.applySpec(serviceSpec("shop", 1), { author: { name: "Bo Builder.", email: "bo@example.org" } });
    await store.deleteSpec("blog", { author: AUTHOR });
    await store.rollback(first.revision, { author: AUTHOR });
    assert.equal((await git(root, "fsck", "--full", "--strict", "--no-progress")).trim(), "");
    const log = (await git(root, "log", "--format=%an <%ae>|%cn|%B%x00", "refs/heads/main")).split("\0\n").map((l) => l.trim()).filter((l) => l !== "");
    assert.deepEqual(log, [
      `Ada Admin <ada@example.org>|Coyote|rollback to ${first.revision.slice(0, 12)}: first blog`,
      "Ada Admin <ada@example.org>|Coyote|delete service blog",
      "Bo Builder <bo@example.org>|Coyote|apply service shop (generation 1)",
      "Ada Admin <ada@example.org>|Coyote|first blog\n\nwhy: a trailer follows\n\nReviewed-by: Bo <bo@example.org>",
      "Coyote <coyote@localhost>|Coyote|init: empty specs repository",
    ]);
    assert.equal((await git(root, "log", "-1", "--format=%(trailers:key=Reviewed-by,valueonly)", first.revision)).trim(), "Bo <bo@example.org>");
    assert.equal(await git(root, "show", "HEAD:services/blog.json"), await readFile(join(root, "specs/services/blog.json"), "utf8"));
    assert.match(await git(root, "diff", "--stat", first.revision, "HEAD~2"), /services\/shop\.json/);
    // The reflog is git's own: `git reflog` reads it, one line per move, newest first.
    const reflog = (await git(root, "reflog", "show", "--format=%gs", "refs/heads/main")).trim().split("\n");
    assert.deepEqual(reflog, [`rollback to ${first.revision.slice(0, 12)}: first blog`, "delete service blog", "apply service shop (generation 1)", "first blog", "init: empty specs repository"]);
    assert.equal((await git(root, "reflog", "show", "--format=%gs", "HEAD")).trim().split("\n").length, 5);
  });
});

describe("the branch moved in-process", () => {
  test("compare-and-swap: a branch that is not where the writer thinks is left alone, lock and all", async () => {
    const store = await StateStore.open(root);
    const head = await store.head();
    const gitDir = join(root, "specs", ".git");
    const other = await gitEnv({}, "", "commit-tree", "--no-gpg-sign", "-m", "other", "-p", head, `${head}^{tree}`);
    assert.equal(await updateRef(gitDir, "refs/heads/main", other, ZERO_OID, "must not exist", AUTHOR), "moved");
    assert.equal(await updateRef(gitDir, "refs/heads/main", other, other, "wrong old value", AUTHOR), "moved");
    assert.equal(await readRef(gitDir, "refs/heads/main"), head);
    assert.deepEqual((await readdir(join(gitDir, "refs", "heads"))).sort(), ["main"]);
    assert.equal(await updateRef(gitDir, "refs/heads/main", other, head, "right old value", AUTHOR), "updated");
    assert.equal((await git(root, "rev-parse", "HEAD")).trim(), other);
  });

  test("a branch that git packed into packed-refs is read there, and the next write leaves it loose again", async () => {
    const store = await StateStore.open(root);
    const packed = (await store.applySpec(serviceSpec("blog", 0), { author: AUTHOR })).revision;
    await git(root, "pack-refs", "--all", "--prune");
    await assert.rejects(readFile(join(root, "specs/.git/refs/heads/main")), "git removed the loose ref");
    const reopened = await StateStore.open(root);
    assert.equal(await reopened.head(), packed);
    const next = await reopened.applySpec(serviceSpec("blog", 1), { author: AUTHOR });
    assert.equal((await readFile(join(root, "specs/.git/refs/heads/main"), "utf8")).trim(), next.revision);
    assert.equal((await git(root, "rev-parse", "HEAD")).trim(), next.revision);
    assert.equal((await git(root, "rev-parse", "HEAD^")).trim(), packed, "the history goes on from the packed branch");
    assert.equal((await git(root, "fsck", "--full", "--strict", "--no-progress")).trim(), "");
  });

  test("a ref lock that another git process keeps makes the write fail naming it, and changes no branch", async () => {
    const store = await StateStore.open(root);
    const head = await store.head();
    await writeFile(join(root, "specs/.git/refs/heads/main.lock"), "");
    await assert.rejects(updateRef(join(root, "specs/.git"), "refs/heads/main", head, head, "x", AUTHOR), (error) => isGitError(error) && /main\.lock exists/.test((error as Error).message));
    assert.equal(await readFile(join(root, "specs/.git/refs/heads/main.lock"), "utf8"), "", "someone else's lock is not removed");
    assert.equal(await store.head(), head);
    await assert.rejects(readRef(join(root, "specs/.git"), "refs/heads/../../config"), isGitError);
  });
});

describe("recovery before each write", () => {
  test("a write finishes a dead writer's journaled commit even when no lock was left to take over", async () => {
    const store = await StateStore.open(root);
    const head = (await store.applySpec(serviceSpec("blog", 0), { author: AUTHOR })).revision;
    // What a writer of another process leaves when it dies after replacing the file, once its
    // lock file is gone too (removed by hand): the journal, and a work tree ahead of the branch.
    const repo = new GitRepo(join(root, "specs"));
    const doc = Buffer.from(`${JSON.stringify(parseSpec({ ...serviceSpec("blog", 1), generation: 2 }, "x"), null, 2)}\n`);
    const files = await repo.lsTree(head);
    files.set("services/blog.json", { mode: "100644", type: "blob", oid: await repo.writeBlob(doc) });
    const pending = await repo.commitTree(await repo.writeTree(files), head, "the dead writer's change", AUTHOR, AUTHOR);
    await writeFile(join(root, PENDING_JOURNAL), `${pending}\n`);
    await writeFile(join(root, "specs/services/blog.json"), doc);
    const next = await store.applySpec(serviceSpec("shop", 0), { author: AUTHOR });
    assert.equal((await git(root, "rev-parse", `${next.revision}^`)).trim(), pending, "the journaled commit went in first");
    assert.equal(await git(root, "show", "HEAD:services/blog.json"), doc.toString("utf8"));
  });
});

describe("housekeeping", () => {
  test("git gc packs the history once enough loose objects pile up, off the write path, losing nothing", async () => {
    const reports: MaintenanceReport[] = [];
    const store = await StateStore.open(root, { maintenance: { looseObjects: 256, idleMs: 500 }, onMaintenance: (r) => reports.push(r) });
    const gitDir = join(root, "specs", ".git");
    // Git estimates the loose objects from one of its 256 folders: write until that estimate is
    // over the threshold, as git will see it (a few hundred commits).
    let commits = 1;
    for (let i = 0; commits < 2000 && (await estimateLooseObjects(gitDir)) <= 512; i++, commits++) {
      await store.applySpec({ ...serviceSpec("blog", 0), description: `v${i}` }, { author: AUTHOR });
    }
    const before = Number((await git(root, "count-objects", "-v")).match(/^count: (\d+)$/m)?.[1]);
    const last = await store.head();
    for (let waited = 0; reports.length === 0 && waited < 30_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
    assert.ok(reports.length >= 1, "a run once the writes went quiet");
    assert.deepEqual(reports.filter((r) => r.error !== undefined), []);
    const after = Number((await git(root, "count-objects", "-v")).match(/^count: (\d+)$/m)?.[1]);
    assert.ok(after < before / 4, `loose objects went from ${before} to ${after}`);
    assert.ok((await readdir(join(root, "specs/.git/objects/pack"))).some((f) => f.endsWith(".pack")), "a pack was written");
    assert.equal((await readFile(join(root, "specs/.git/refs/heads/main"), "utf8")).trim(), last, "the branch stays a loose ref");
    assert.equal((await git(root, "fsck", "--full", "--strict", "--no-progress")).trim(), "");
    assert.equal(Number((await git(root, "rev-list", "--count", "HEAD")).trim()), commits);
    // Writes go on over the packed history, and an explicit run packs everything.
    await store.applySpec(serviceSpec("blog", 1), { author: AUTHOR });
    await store.compactHistory();
    assert.equal(await estimateLooseObjects(join(root, "specs", ".git")), 0);
    assert.equal((await git(root, "count-objects", "-v")).match(/^count: (\d+)$/m)?.[1], "0");
    assert.equal((await git(root, "fsck", "--full", "--strict", "--no-progress")).trim(), "");
  });

  test("a history that only short-lived writers made is packed when a store opens on it far behind", async () => {
    const writer = await StateStore.open(root, { maintenance: { looseObjects: 0 } });
    const gitDir = join(root, "specs", ".git");
    for (let i = 0; i < 2000 && (await estimateLooseObjects(gitDir)) <= 512; i++) {
      await writer.applySpec({ ...serviceSpec("blog", 0), description: `v${i}` }, { author: AUTHOR });
    }
    const reports: MaintenanceReport[] = [];
    await StateStore.open(root, { maintenance: { looseObjects: 256, busyFactor: 1, idleMs: 3_600_000 }, onMaintenance: (r) => reports.push(r) });
    for (let waited = 0; reports.length === 0 && waited < 30_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
    assert.equal(reports.length, 1, "one run, started by the open");
    assert.equal(reports[0]?.error, undefined);
    assert.ok((await readdir(join(gitDir, "objects/pack"))).some((f) => f.endsWith(".pack")), "a pack was written");
    assert.equal((await git(root, "fsck", "--full", "--strict", "--no-progress")).trim(), "");
  });
});
