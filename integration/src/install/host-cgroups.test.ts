// The host's cgroup v1 controllers are all mounted before a machine's systemd boots (see
// host-cgroups.ts): else the host's own containers lose their stats while a machine runs.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";
import { mountHostCgroupControllers } from "./host-cgroups.ts";

const root = process.getuid?.() === 0 ? false : "mounting cgroup controllers needs root";

describe("the host's cgroup controllers", { skip: root }, () => {
  it("every enabled cgroup v1 controller has a mount on the host afterwards, and a second call mounts nothing", async () => {
    await mountHostCgroupControllers();
    const enabled = (await readFile("/proc/cgroups", "utf8")).split("\n").filter((l) => /^\w/.test(l)).map((l) => l.split(/\s+/)).filter((f) => f[3] === "1" && f[1] !== "0").map((f) => f[0] ?? "");
    const mounted = new Set((await readFile("/proc/self/mountinfo", "utf8")).split("\n").flatMap((line) => {
      const [type, , options] = (line.split(" - ")[1] ?? "").split(" ");
      return type === "cgroup" ? (options ?? "").split(",") : [];
    }));
    for (const controller of enabled) assert.ok(mounted.has(controller), `${controller} has a mount on the host`);
    assert.deepEqual(await mountHostCgroupControllers(), []);
  });
});
