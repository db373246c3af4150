import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { clearFailures, countFailure, MAX_ROWS, purgeAttempts, reserveAttempt, retryAfterMs, type Limit } from "./ratelimit.ts";
import { sandboxes } from "../test/support.ts";

const box = sandboxes();
const limit: Limit = { max: 3, windowMs: 60_000, baseDelayMs: 1000, maxDelayMs: 8000 };
const rows = (b: Awaited<ReturnType<typeof box>>) => (b.db.$client.prepare("select count(*) as n from attempts").get() as { n: number }).n;

describe("attempt limits", () => {
  test("a few attempts are free, then each waits twice as long as the one before, up to a cap", async () => {
    const b = await box();
    const t0 = 1_000_000;
    for (let i = 0; i < 2; i++) {
      assert.equal(reserveAttempt(b.db, [["k", limit]], t0), 0);
      assert.equal(retryAfterMs(b.db, "k", limit, t0), 0);
    }
    assert.equal(reserveAttempt(b.db, [["k", limit]], t0), 0, "the third is still free");
    assert.equal(retryAfterMs(b.db, "k", limit, t0), 1000, "then 1 s");
    assert.equal(reserveAttempt(b.db, [["k", limit]], t0 + 500), 500, "a try while waiting is refused and not counted");
    assert.equal(reserveAttempt(b.db, [["k", limit]], t0 + 1000), 0);
    assert.equal(retryAfterMs(b.db, "k", limit, t0 + 1000), 2000, "then 2 s");
    let t = t0 + 3000;
    for (const expected of [4000, 8000, 8000]) {
      assert.equal(reserveAttempt(b.db, [["k", limit]], t), 0);
      assert.equal(retryAfterMs(b.db, "k", limit, t), expected);
      t += expected;
    }
    assert.equal(retryAfterMs(b.db, "other", limit, t0), 0, "other keys are not affected");
    clearFailures(b.db, "k");
    assert.equal(retryAfterMs(b.db, "k", limit, t), 0, "a good sign-in clears the key");
  });

  test("a key left alone for a window after its wait is forgiven", async () => {
    const b = await box();
    const t0 = 5_000_000;
    for (let i = 0; i < 3; i++) countFailure(b.db, "k", limit, t0);
    assert.equal(retryAfterMs(b.db, "k", limit, t0), 1000);
    countFailure(b.db, "k", limit, t0 + 1000 + 60_000);
    assert.equal(retryAfterMs(b.db, "k", limit, t0 + 1000 + 60_000), 0, "counting starts again from one");
  });

  test("one reservation covers every key or none: a waiting key keeps the others uncounted", async () => {
    const b = await box();
    const t0 = 9_000_000;
    for (let i = 0; i < 3; i++) countFailure(b.db, "blocked", limit, t0);
    assert.ok(reserveAttempt(b.db, [["fresh", limit], ["blocked", limit]], t0) > 0);
    assert.equal(rows(b), 1, "the fresh key was not counted");
  });

  test("expired rows are purged, and the table never holds more than its cap", async () => {
    const b = await box();
    const t0 = 20_000_000;
    for (let i = 0; i < 50; i++) countFailure(b.db, `old-${i}`, limit, t0);
    for (let i = 0; i < 30; i++) countFailure(b.db, `new-${i}`, limit, t0 + 30_000 + i);
    assert.equal(purgeAttempts(b.db, t0 + 61_000, MAX_ROWS), 50, "the rows of the old attempts expired");
    assert.equal(rows(b), 30);
    assert.equal(purgeAttempts(b.db, t0 + 61_000, 10), 20, "beyond the cap, the soonest to expire go");
    assert.equal(rows(b), 10);
    assert.equal(b.db.$client.prepare("select min(key) as k from attempts").get() !== undefined, true);
    assert.deepEqual((b.db.$client.prepare("select key from attempts order by key").all() as Array<{ key: string }>).map((r) => r.key).sort(), Array.from({ length: 10 }, (_, i) => `new-${i + 20}`).sort());
  });

  test("writes purge on their own: a flood of new addresses leaves only live rows", async () => {
    const b = await box();
    const t0 = 40_000_000;
    for (let i = 0; i < 150; i++) countFailure(b.db, `flood-${i}`, limit, t0);
    // After the window every one of them expired; the next writes purge them without a timer.
    for (let i = 0; i < 100; i++) countFailure(b.db, `later-${i}`, limit, t0 + 120_000);
    assert.ok(rows(b) <= 100, `${rows(b)} rows`);
  });
});
