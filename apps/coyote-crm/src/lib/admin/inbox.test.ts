import assert from "node:assert/strict";
import { test } from "node:test";
import { InboxRequest } from "@coyote/spec";
import { DecisionInput, decideRequest, InboxFileName, requestText, splitInbox } from "./inbox.ts";

const request = InboxRequest.parse({
  schemaVersion: 1,
  id: "req-00000001",
  receivedAt: "2026-11-23T01:00:00.000Z",
  from: { name: "north", address: "https://north.example.org", fingerprint: `sha256:${"ab".repeat(32)}` },
  request: "become-backup",
  serviceId: "blog",
});

test("inbox file names cannot leave the inbox folder", () => {
  assert.equal(InboxFileName.safeParse("req-00000001.json").success, true);
  for (const bad of ["../specs/server.json", "a/b.json", "x.txt", ".json", "..json", ""]) assert.equal(InboxFileName.safeParse(bad).success, false, bad);
  assert.equal(DecisionInput.safeParse({ file: "r.json", decision: "maybe" }).success, false);
});

test("splitInbox separates pending, decided and bad files", () => {
  const decided = { ...request, id: "req-00000002", state: "refused" as const, decidedAt: "2026-11-23T01:10:00.000Z" };
  const lists = splitInbox([
    { file: "a.json", request },
    { file: "b.json", request: decided },
    { file: "c.json", error: "inbox/c.json: from: required" },
  ]);
  assert.deepEqual(
    lists.pending.map((e) => e.file),
    ["a.json"],
  );
  assert.deepEqual(
    lists.decided.map((e) => e.file),
    ["b.json"],
  );
  assert.deepEqual(lists.bad, [{ file: "c.json", error: "inbox/c.json: from: required" }]);
});

test("decideRequest records the decision and still validates", () => {
  const now = new Date("2026-11-23T02:00:00.000Z");
  const accepted = decideRequest(request, "accept", "ada@example.org", now);
  assert.equal(accepted.state, "accepted");
  assert.equal(accepted.decidedAt, "2026-11-23T02:00:00.000Z");
  assert.equal(accepted.decidedBy, "ada@example.org");
  assert.equal(InboxRequest.parse(accepted).state, "accepted");
  assert.equal(decideRequest(request, "refuse", "ada@example.org", now).state, "refused");
  assert.throws(() => decideRequest(accepted, "refuse", "bob@example.org", now), /already accepted by ada@example\.org/);
});

test("requestText names what is asked", () => {
  assert.equal(requestText(request), "become a backup of a service");
});
