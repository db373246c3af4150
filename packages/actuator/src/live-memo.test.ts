import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { LiveMemo } from "./live-memo.ts";

test("keeps an answer for the same pid while it is young, and asks again for another pid, after the time, or once forgotten", async () => {
  const memo = new LiveMemo<number>(50);
  let asked = 0;
  const ask = () => Promise.resolve(++asked);
  assert.equal(await memo.get(10, ask), 1);
  assert.equal(await memo.get(10, ask), 1, "the same pid, young: kept");
  assert.equal(await memo.get(11, ask), 2, "a restarted daemon is asked again");
  await sleep(60);
  assert.equal(await memo.get(11, ask), 3, "too old: asked again");
  memo.forget();
  assert.equal(await memo.get(11, ask), 4, "forgotten after a commit");
});
