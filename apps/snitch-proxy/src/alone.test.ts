import assert from "node:assert/strict";
import { mkdir, readdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { freePorts, waitFor as until } from "@coyote/testing";
import { defaultWorkers, startSnitchProxy } from "./component.ts";
import { backend, get1, sandbox } from "./test/support.ts";

/** The pids of this process's children, from /proc (every thread's list). */
async function childPids(): Promise<number[]> {
  const tasks = await readdir(`/proc/${String(process.pid)}/task`);
  const lists = await Promise.all(tasks.map((task) => readFile(`/proc/${String(process.pid)}/task/${task}/children`, "utf8").catch(() => "")));
  return lists.flatMap((list) => list.trim().split(/\s+/).filter((pid) => pid !== "").map(Number));
}

describe("snitch-proxy in one process", () => {
  it("runs in the component's own process on a machine of one or two cores, and as a cluster beyond", () => {
    assert.equal(defaultWorkers(1), 1);
    assert.equal(defaultWorkers(2), 1);
    assert.equal(defaultWorkers(4), 4);
  });

  it("serves, moves and reports its stats with one worker, and starts no process of its own", async () => {
    const box = await sandbox();
    const site = await backend("site");
    try {
      await box.certify("shop.test");
      const route = { host: "shop.test", pathPrefix: "/", serviceId: "shop", upstream: { kind: "address", address: site.address } };
      const [https, http, nextHttps] = await freePorts(3);
      assert.ok(https !== undefined && http !== undefined && nextHttps !== undefined);
      const writeRoutes = async (port: number) => {
        await mkdir(join(box.stateDir, "proxy"), { recursive: true });
        await writeFile(join(box.stateDir, "proxy", "routes.json.tmp"), JSON.stringify({ schemaVersion: 1, generatedAt: new Date().toISOString(), listen: { host: "127.0.0.1", https: port, http }, routes: [route] }));
        await rename(join(box.stateDir, "proxy", "routes.json.tmp"), join(box.stateDir, "proxy", "routes.json"));
      };
      await writeRoutes(https);
      const before = await childPids();
      const running = await startSnitchProxy({ name: "snitch-proxy", stateDir: box.stateDir, logger: box.logger, signal: new AbortController().signal }, { workers: 1, listenCheckMs: 50 });
      try {
        assert.deepEqual(await childPids(), before, "no worker process, no cluster");
        assert.equal((await get1(https, "shop.test", box.ca.certificatePem)).status, 200);
        await writeRoutes(nextHttps);
        await until("the new port", async () => get1(nextHttps, "shop.test", box.ca.certificatePem).then((answer) => answer, () => undefined));
        await assert.rejects(get1(https, "shop.test", box.ca.certificatePem), /ECONNREFUSED/);
        await until("the stats of both requests", () => {
          const requests = running.stats?.().hosts?.["shop.test"]?.requests ?? 0;
          return requests >= 2 ? requests : undefined;
        });
        assert.equal(running.stats?.().counters?.workers, 1);
      } finally {
        await running.stop();
      }
      await running.done;
    } finally {
      await site.close();
      await box.cleanup();
    }
  });
});
