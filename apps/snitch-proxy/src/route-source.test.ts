// proxy/routes.json as the proxy reads it: a bad or vanished file never takes the sites down, not
// even across a restart. Real files in a temp folder.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createLogger } from "@coyote/log";
import { RouteSource } from "./routes.ts";

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function box(): Promise<{ file: string; logger: ReturnType<typeof createLogger> }> {
  const dir = await mkdtemp(join(tmpdir(), "route-source-"));
  dirs.push(dir);
  await mkdir(join(dir, "proxy"));
  return { file: join(dir, "proxy", "routes.json"), logger: createLogger({ component: "snitch-proxy", file: join(dir, "logs", "snitch-proxy.log") }) };
}

const good = (host: string) => JSON.stringify({ schemaVersion: 1, generatedAt: new Date().toISOString(), routes: [{ host, pathPrefix: "/", serviceId: "s", upstream: { kind: "address", address: "127.0.0.1:1" } }] });

describe("the routes file", () => {
  it("serves the last good routes after a restart while the file is invalid", async () => {
    const { file, logger } = await box();
    await writeFile(file, good("kept.test"));
    const first = new RouteSource(file, logger);
    await first.reload();
    assert.ok(first.table.hasHost("kept.test"));
    await first.stop();
    await writeFile(file, '{"schemaVersion":1,"routes":[{"host":"bad host"}]}');
    const restarted = new RouteSource(file, logger);
    await restarted.reload();
    assert.ok(restarted.table.hasHost("kept.test"), "the restarted proxy still serves the last good routes");
    await writeFile(file, good("fixed.test"));
    await restarted.reload();
    assert.ok(restarted.table.hasHost("fixed.test") && !restarted.table.hasHost("kept.test"), "a valid file is taken");
    await restarted.stop();
    await logger.close();
  });

  it("keeps the routes when the file vanishes, and starts empty on a fresh box", async () => {
    const { file, logger } = await box();
    const fresh = new RouteSource(file, logger);
    await fresh.reload();
    assert.equal(fresh.table.hostCount, 0);
    await writeFile(file, good("stays.test"));
    await fresh.reload();
    await unlink(file);
    await fresh.reload();
    assert.ok(fresh.table.hasHost("stays.test"));
    await fresh.stop();
    await logger.close();
  });
});
