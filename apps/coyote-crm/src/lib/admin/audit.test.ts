import assert from "node:assert/strict";
import { test } from "node:test";
import { detailText, parseDetail } from "./audit.ts";

test("parseDetail reads a JSON object and never throws", () => {
  assert.deepEqual(parseDetail('{"name":"north","count":2}'), { name: "north", count: 2 });
  assert.deepEqual(parseDetail("[1,2]"), { value: [1, 2] });
  assert.deepEqual(parseDetail("not json"), { text: "not json" });
});

test("detailText prints pairs on one line", () => {
  assert.equal(detailText({ name: "north", changed: ["specs/server.json"], open: true }), 'name: north, changed: ["specs/server.json"], open: true');
  assert.equal(detailText({}), "");
});
