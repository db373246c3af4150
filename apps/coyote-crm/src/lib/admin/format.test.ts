import assert from "node:assert/strict";
import { test } from "node:test";
import { formatAgo, formatBytes, formatTime, plural, shortRevision } from "./format.ts";

test("formatBytes uses powers of 1000 and few digits", () => {
  assert.equal(formatBytes(0), "0 B");
  assert.equal(formatBytes(999), "999 B");
  assert.equal(formatBytes(1500), "1.5 kB");
  assert.equal(formatBytes(23_400_000), "23.4 MB");
  assert.equal(formatBytes(512_000_000), "512 MB");
  assert.equal(formatBytes(-1), "? B");
});

test("formatTime prints UTC without the locale", () => {
  assert.equal(formatTime("2026-11-23T01:50:07.123Z"), "2026-11-23 01:50:07 UTC");
  assert.equal(formatTime(0), "1970-01-01 00:00:00 UTC");
  assert.equal(formatTime("not a time"), "not a time");
});

test("formatAgo picks a unit that keeps the number small", () => {
  assert.equal(formatAgo(-3), "0 s");
  assert.equal(formatAgo(42.9), "42 s");
  assert.equal(formatAgo(600), "10 min");
  assert.equal(formatAgo(3 * 3600), "3 h");
  assert.equal(formatAgo(5 * 86_400), "5 d");
});

test("shortRevision keeps seven digits", () => {
  assert.equal(shortRevision("0123456789abcdef0123456789abcdef01234567"), "0123456");
});

test("plural picks the noun's form from the count", () => {
  assert.equal(plural(1, "service"), "1 service");
  assert.equal(plural(0, "service"), "0 services");
  assert.equal(plural(2, "buddy", "buddies"), "2 buddies");
});
