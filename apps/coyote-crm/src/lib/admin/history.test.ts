import assert from "node:assert/strict";
import { test } from "node:test";
import { diffCounts, diffLines, isUnknownRevision, Revision, RollbackInput } from "./history.ts";

test("a revision is 7 to 40 hex digits, lowercased", () => {
  assert.equal(Revision.parse("ABCDEF0"), "abcdef0");
  assert.equal(Revision.parse("0123456789abcdef0123456789abcdef01234567"), "0123456789abcdef0123456789abcdef01234567");
  for (const bad of ["abc123", "0123456789abcdef0123456789abcdef012345678", "HEAD", "abcdef0^", "--all", "abcdefg"]) assert.equal(Revision.safeParse(bad).success, false, bad);
  assert.equal(RollbackInput.safeParse({ revision: "main~1" }).success, false);
});

test("diffLines tells headers, hunks, additions and deletions apart", () => {
  const diff = [
    "diff --git a/specs/server.json b/specs/server.json",
    "index 1111111..2222222 100644",
    "--- a/specs/server.json",
    "+++ b/specs/server.json",
    "@@ -1,3 +1,3 @@",
    " {",
    '-  "signupsOpen": false',
    '+  "signupsOpen": true',
    " }",
    "",
  ].join("\n");
  const lines = diffLines(diff);
  assert.deepEqual(
    lines.map((l) => l.kind),
    ["meta", "meta", "meta", "meta", "hunk", "context", "del", "add", "context"],
  );
  assert.deepEqual(diffCounts(lines), { added: 1, removed: 1 });
  assert.deepEqual(diffLines(""), []);
});

test("a new file's header is not counted as an addition", () => {
  const lines = diffLines("diff --git a/x b/x\nnew file mode 100644\n--- /dev/null\n+++ b/x\n@@ -0,0 +1 @@\n+{}\n");
  assert.deepEqual(diffCounts(lines), { added: 1, removed: 0 });
});

test("isUnknownRevision tells the store's unknown-revision error by its code", async () => {
  const { CoyoteError } = await import("@coyote/spec");
  assert.equal(isUnknownRevision(new CoyoteError("STORE_ERR_UNKNOWN_REVISION", "diffing abc1234: no such revision")), true);
  assert.equal(isUnknownRevision(new CoyoteError("STORE_ERR_GIT", "git failed")), false);
  assert.equal(isUnknownRevision(new Error("x")), false);
  assert.equal(isUnknownRevision(undefined), false);
});
