import assert from "node:assert/strict";
import { test } from "node:test";
import { chartGeometry, hourFrame, latestMemory, memorySeries, niceCeiling, trafficSummary, type ChartFrame } from "./chart.ts";

const frame: ChartFrame = { width: 110, height: 60, margin: { top: 10, right: 0, bottom: 0, left: 10 }, from: 0, to: 100 };

test("niceCeiling rounds up to 1, 2, 2.5 or 5 times a power of ten", () => {
  assert.equal(niceCeiling(0), 1);
  assert.equal(niceCeiling(Number.NaN), 1);
  assert.equal(niceCeiling(1), 1);
  assert.equal(niceCeiling(7), 10);
  assert.equal(niceCeiling(12), 20);
  assert.equal(niceCeiling(21), 25);
  assert.equal(niceCeiling(0.3), 0.5);
  assert.equal(niceCeiling(4_100_000), 5_000_000);
});

test("chartGeometry maps time to x and value to y inside the plot", () => {
  const g = chartGeometry(
    [
      { at: 0, value: 0 },
      { at: 50, value: 5 },
      { at: 100, value: 10 },
    ],
    frame,
  );
  assert.equal(g.yMax, 10);
  // plot: x 10..110, y 10..60 (bottom = 60); value 10 is the top.
  assert.deepEqual(g.lines, ["M10 60 L60 35 L110 10"]);
  assert.deepEqual(g.yTicks, [
    { value: 0, y: 60 },
    { value: 5, y: 35 },
    { value: 10, y: 10 },
  ]);
  assert.equal(g.drawn, 3);
});

test("chartGeometry breaks the line at a null and draws a lone reading as a dot", () => {
  const g = chartGeometry(
    [
      { at: 10, value: 1 },
      { at: 20, value: 1 },
      { at: 30, value: null },
      { at: 40, value: 2 },
    ],
    frame,
  );
  assert.equal(g.lines.length, 2);
  assert.match(g.lines[0] ?? "", /^M20 35 L30 35$/);
  assert.match(g.lines[1] ?? "", /^M50 10 h0$/);
});

test("chartGeometry drops points outside the window and sorts by time", () => {
  const g = chartGeometry(
    [
      { at: 80, value: 1 },
      { at: -5, value: 1000 },
      { at: 20, value: 2 },
      { at: 150, value: 1000 },
    ],
    frame,
  );
  assert.equal(g.yMax, 2);
  assert.equal(g.drawn, 2);
  assert.equal(g.lines[0], "M30 10 L90 35");
});

test("an hour frame has ticks every 15 minutes from 60 to now", () => {
  const g = chartGeometry([], hourFrame(3_600_000));
  assert.deepEqual(
    g.xTicks.map((t) => t.minutesAgo),
    [60, 45, 30, 15, 0],
  );
  assert.equal(g.xTicks.at(-1)?.x, g.plot.right);
  assert.equal(g.xTicks[0]?.x, g.plot.left);
  assert.deepEqual(g.lines, []);
  assert.equal(g.yMax, 1);
});

test("trafficSummary adds up requests and bytes in the line the page prints", () => {
  const s = trafficSummary([
    { at: 1, requests: 3, bytesOut: 1000, errors: 0, memoryBytes: null },
    { at: 2, requests: 4, bytesOut: 500, errors: 1, memoryBytes: null },
  ]);
  assert.equal(s.requests, 7);
  assert.equal(s.bytesOut, 1500);
  assert.match(s.text, /^7 requests in the last hour, 1\.5 kB out, 1 server errors$/);
  assert.match(trafficSummary([]).text, /^0 requests in the last hour, 0 B out$/);
});

test("memorySeries is undefined when no point has a reading", () => {
  const none = [{ at: 1, requests: 0, bytesOut: 0, errors: 0, memoryBytes: null }];
  assert.equal(memorySeries(none), undefined);
  assert.equal(latestMemory(none), undefined);
  const some = [...none, { at: 2, requests: 0, bytesOut: 0, errors: 0, memoryBytes: 64_000_000 }, { at: 3, requests: 0, bytesOut: 0, errors: 0, memoryBytes: null }];
  assert.deepEqual(memorySeries(some)?.map((p) => p.value), [null, 64_000_000, null]);
  assert.equal(latestMemory(some), "64 MB");
});
