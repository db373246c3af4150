import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { describe, test } from "node:test";
import { ComponentStats, type ServiceSpec } from "@coyote/spec";
import { countersByService, sampleStats, serviceSeries } from "./sampler.ts";
import { AUTHOR, sandboxes } from "../test/support.ts";

const box = sandboxes();

const host = (requests: number, bytesOut: number, errors = 0) => ({
  requests,
  bytesIn: requests * 10,
  bytesOut,
  status: { "1xx": 0, "2xx": requests - errors, "3xx": 0, "4xx": 0, "5xx": errors },
  latencyBucketsMs: [10],
  latencyCounts: [requests, 0],
  openConnections: 0,
});
const stats = (component: string, extra: Partial<ComponentStats>): ComponentStats => ({
  schemaVersion: 1,
  component,
  pid: 123,
  startedAt: "2026-11-23T00:00:00.000Z",
  writtenAt: "2026-11-23T00:00:05.000Z",
  process: { rssBytes: 1, heapUsedBytes: 1, uptimeSeconds: 5 },
  ...extra,
});
const service = (id: string, hostnames: string[]): ServiceSpec =>
  ({ schemaVersion: 1, kind: "Service", id, domains: [{ name: `${id}.example`, authoritative: true, records: [] }], web: { hostnames, backend: { kind: "upstream", address: "127.0.0.1:9" } } });

describe("the stats sampler", () => {
  test("adds up a service's hostnames (wildcards too) and takes its unit's memory; other hosts are not counted", () => {
    const counters = countersByService(
      [service("blog", ["blog.example", "*.blog.example"]), service("shop", ["shop.example"])],
      stats("snitch-proxy", { hosts: { "blog.example": host(10, 1000, 1), "*.blog.example": host(5, 500), "stranger.example": host(99, 9) } }),
      stats("docker-activator", { units: { shop: { state: "running", wakeCount: 1, memoryBytes: 4096, bytesIn: 0, bytesOut: 0 } } }),
    );
    assert.deepEqual(counters.get("blog"), { requests: 15, bytesIn: 150, bytesOut: 1500, errors: 1, memoryBytes: undefined });
    assert.deepEqual(counters.get("shop"), { requests: 0, bytesIn: 0, bytesOut: 0, errors: 0, memoryBytes: 4096 });
  });

  test("samples the stats files into a series of per-interval traffic; a proxy restart counts from zero", async () => {
    const b = await box();
    await b.store.applySpec(service("blog", ["blog.example"]), { author: AUTHOR });
    const write = (requests: number) => b.store.writeJson("stats/snitch-proxy.json", ComponentStats, stats("snitch-proxy", { hosts: { "blog.example": host(requests, requests * 100) } }));
    const t0 = 1_800_000_000_000;
    for (const [i, requests] of [0, 10, 25, 4].entries()) {
      await write(requests);
      await sampleStats(b.db, b.store, t0 + i * 5000);
    }
    // A torn proxy file makes a gap, not a sample of zeros (which would read as a restart).
    await writeFile(b.store.path("stats/snitch-proxy.json"), "{ torn");
    await sampleStats(b.db, b.store, t0 + 20_000);
    const series = serviceSeries(b.db, "blog", t0);
    assert.deepEqual(series.map((p) => p.requests), [10, 15, 4]);
    assert.deepEqual(series.map((p) => p.bytesOut), [1000, 1500, 400]);
    assert.deepEqual(serviceSeries(b.db, "blog", t0 + 10_000).map((p) => p.requests), [4], "since a time");
    // Samples older than a day are dropped by a later sampling.
    await write(1);
    await sampleStats(b.db, b.store, t0 + 25 * 60 * 60 * 1000);
    assert.equal(serviceSeries(b.db, "blog", 0).length, 0, "one sample left makes no interval");
  });

  test("counts a new service's first requests, made before its first sampling, and gives services older than the sampler no burst", async () => {
    const b = await box();
    await b.store.applySpec(service("blog", ["blog.example"]), { author: AUTHOR });
    const write = (hosts: Record<string, ReturnType<typeof host>>) => b.store.writeJson("stats/snitch-proxy.json", ComponentStats, stats("snitch-proxy", { hosts }));
    const t0 = 1_800_000_000_000;
    // The panel's first sampling: blog's 50 requests are of unknown age, not an interval.
    await write({ "blog.example": host(50, 5000) });
    await sampleStats(b.db, b.store, t0);
    // A customer signs up and opens the new site before the next sampling.
    await b.store.applySpec(service("shop", ["shop.example"]), { author: AUTHOR });
    await write({ "blog.example": host(52, 5200), "shop.example": host(2, 2568) });
    await sampleStats(b.db, b.store, t0 + 5000);
    assert.deepEqual(serviceSeries(b.db, "shop", t0).map((p) => p.requests), [2], "the new service's first requests are counted");
    assert.deepEqual(serviceSeries(b.db, "blog", 0).map((p) => p.requests), [2], "the older service's traffic is counted from the first sampling on");
  });
});
