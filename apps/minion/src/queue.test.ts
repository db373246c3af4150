import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { WorkQueue } from "./queue.ts";

const options = { debounceMs: 20, backoffInitialMs: 10, backoffMaxMs: 40 };

describe("work queue", () => {
  test("adds within the debounce window fold into one", async () => {
    const queue = new WorkQueue(options);
    for (let i = 0; i < 10; i++) queue.add("a");
    queue.add("b");
    assert.equal(queue.length, 2);
    const first = await queue.next();
    const second = await queue.next();
    assert.deepEqual([first, second], ["a", "b"]);
    assert.equal(queue.length, 0);
    queue.finish("a", { kind: "done" });
    queue.finish("b", { kind: "done" });
    assert.ok(queue.idle);
    queue.close();
  });

  test("a key added while processing is processed again after, never twice at once", async () => {
    const queue = new WorkQueue(options);
    queue.addAfter("a", 0);
    assert.equal(await queue.next(), "a");
    queue.add("a");
    queue.addAfter("a", 0);
    assert.deepEqual(queue.drainReady(10), [], "not handed out while processing");
    queue.finish("a", { kind: "done" });
    assert.deepEqual(queue.drainReady(10), ["a"], "processed once more");
    queue.finish("a", { kind: "done" });
    assert.ok(queue.idle);
    queue.close();
  });

  test("retries back off exponentially up to the cap; terminal and done are not retried", async () => {
    const queue = new WorkQueue(options);
    assert.deepEqual([1, 2, 3, 4, 5].map((n) => queue.backoffFor(n)), [10, 20, 40, 40, 40]);
    queue.addAfter("x", 0);
    assert.equal(await queue.next(), "x");
    const failedAt = Date.now();
    queue.finish("x", { kind: "retry" });
    assert.equal(queue.drainReady(10).length, 0);
    assert.equal(await queue.next(), "x");
    assert.ok(Date.now() - failedAt >= 9, "waited for the backoff");
    queue.finish("x", { kind: "terminal" });
    await sleep(60);
    assert.equal(queue.drainReady(10).length, 0, "a terminal failure is not retried");
    assert.ok(queue.idle);
    queue.close();
  });

  test("an add never delays work due sooner; after-outcomes requeue", async () => {
    const queue = new WorkQueue(options);
    queue.addAfter("k", 0);
    queue.addAfter("k", 10_000);
    assert.deepEqual(queue.drainReady(5), ["k"]);
    queue.finish("k", { kind: "after", ms: 15 });
    assert.equal(queue.length, 1);
    assert.equal(await queue.next(), "k");
    queue.finish("k", { kind: "done" });
    queue.close();
  });

  test("close wakes a waiting next() with undefined", async () => {
    const queue = new WorkQueue(options);
    const waiting = queue.next();
    queue.close();
    assert.equal(await waiting, undefined);
  });
});
