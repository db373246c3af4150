import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { decisionOf, INBOX_DECISIONS_DIR, InboxDecision, InboxRequest, StateStore } from "@coyote/spec";
import { decideRequest } from "./admin/inbox.ts";
import { readInbox } from "./state.ts";

const FP = `sha256:${"ab".repeat(32)}`;
const request = (id: string): InboxRequest => InboxRequest.parse({ schemaVersion: 1, id, receivedAt: "2026-11-23T01:00:00.000Z", from: { address: "https://north.example.org", fingerprint: FP }, request: "monitor" });

test("a decision lives in inbox-decisions/, beside the listener's request file, which the crm never rewrites", async () => {
  const dir = await mkdtemp(join(tmpdir(), "crm-inbox-"));
  try {
    const store = await StateStore.open(dir);
    await store.writeJson("inbox/req-00000001.json", InboxRequest, request("req-00000001"));
    await store.writeJson("inbox/req-00000002.json", InboxRequest, request("req-00000002"));
    const before = await readFile(join(dir, "inbox", "req-00000001.json"), "utf8");
    const decided = decideRequest(request("req-00000001"), "accept", "ada@example.org", new Date("2026-11-23T02:00:00.000Z"));
    await store.writeJson(`${INBOX_DECISIONS_DIR}/req-00000001.json`, InboxDecision, decisionOf(decided));
    const inbox = await readInbox(store);
    assert.equal(inbox.find((e) => e.file === "req-00000001.json")?.request?.state, "accepted");
    assert.equal(inbox.find((e) => e.file === "req-00000001.json")?.request?.decidedBy, "ada@example.org");
    assert.equal(inbox.find((e) => e.file === "req-00000002.json")?.request?.state, "pending");
    assert.equal(await readFile(join(dir, "inbox", "req-00000001.json"), "utf8"), before, "the request file is the listener's");
    // A decision that answers another request is a bad entry, not a decision.
    await store.writeJson(`${INBOX_DECISIONS_DIR}/req-00000002.json`, InboxDecision, { ...decisionOf(decided), id: "req-99999999" });
    assert.match((await readInbox(store)).find((e) => e.file === "req-00000002.json")?.error ?? "", /answers request req-99999999, not req-00000002/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
