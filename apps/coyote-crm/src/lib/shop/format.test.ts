import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatBytes, formatCount } from "./format.ts";

describe("formatBytes", () => {
  it("picks a unit", () => {
    assert.equal(formatBytes(0), "0 B");
    assert.equal(formatBytes(1023), "1023 B");
    assert.equal(formatBytes(1536), "1.5 KiB");
    assert.equal(formatBytes(200 * 1024 * 1024), "200 MiB");
    assert.equal(formatBytes(3 * 1024 ** 5), "3072 TiB");
  });
});

describe("formatCount", () => {
  it("separates thousands", () => {
    assert.equal(formatCount(12345), "12,345");
    assert.equal(formatCount(7), "7");
  });
});
