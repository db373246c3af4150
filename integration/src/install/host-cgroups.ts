// The host's cgroup v1 controllers, all mounted before a machine's systemd boots. A machine sees
// the host's /sys/fs/cgroup (read-write, --cgroupns=host); its systemd mounts every controller it
// finds unmounted there (net_cls,net_prio, perf_event, hugetlb on this host) inside its own mount
// namespace, which binds those controllers to new hierarchies the host cannot see. Every process
// the host starts then lands in them too, and containerd, finding no mount for them, reads no
// container's stats: `docker stats` says 0 B, and docker-activator cannot read its units' memory.
// Mounted on the host first, the machine's systemd uses the host's mounts instead.
import { existsSync } from "node:fs";
import { mkdir, readFile, symlink } from "node:fs/promises";
import { join } from "node:path";
import { runProgram } from "./engine.ts";

const ROOT = "/sys/fs/cgroup";

/** Controllers mounted together, as systemd mounts them. */
const JOINED = [["cpu", "cpuacct"], ["net_cls", "net_prio"]];

/** The cgroup v1 controllers the kernel has enabled, from /proc/cgroups. */
async function enabledControllers(): Promise<string[]> {
  const lines = (await readFile("/proc/cgroups", "utf8")).split("\n").filter((l) => l !== "" && !l.startsWith("#"));
  // Hierarchy 0 is cgroup v2's: those controllers have no v1 mount to make.
  return lines.map((l) => l.split(/\s+/)).filter((f) => f[3] === "1" && f[1] !== "0").map((f) => f[0] ?? "").filter((n) => n !== "");
}

/** The controllers some cgroup v1 mount of this mount namespace carries, from its super options. */
async function mountedControllers(): Promise<Set<string>> {
  const mounted = new Set<string>();
  for (const line of (await readFile("/proc/self/mountinfo", "utf8")).split("\n")) {
    const [, after] = line.split(" - ");
    const [type, , options] = (after ?? "").split(" ");
    if (type !== "cgroup") continue;
    for (const option of (options ?? "").split(",")) mounted.add(option);
  }
  return mounted;
}

/**
 * Mounts each enabled cgroup v1 controller that has no mount on the host, at
 * `/sys/fs/cgroup/<controllers>` (made, with its symlinks, when missing). Nothing to do on a
 * cgroup v2 host or one whose controllers are all mounted.
 * @returns the mount points it made.
 */
export async function mountHostCgroupControllers(): Promise<string[]> {
  if (!existsSync(join(ROOT, "memory"))) return [];
  const mounted = await mountedControllers();
  const missing = (await enabledControllers()).filter((c) => !mounted.has(c));
  const groups: string[][] = [];
  for (const name of missing) {
    if (groups.some((g) => g.includes(name))) continue;
    const joined = JOINED.find((j) => j.includes(name));
    groups.push(joined !== undefined && joined.every((c) => missing.includes(c)) ? joined : [name]);
  }
  const made: string[] = [];
  for (const group of groups) {
    const dir = join(ROOT, group.join(","));
    if (!existsSync(dir)) {
      // The host's /sys/fs/cgroup is a read-only tmpfs: writable only while the points are made.
      await runProgram("mount", ["-o", "remount,rw", ROOT], { timeoutMs: 10_000 });
      try {
        await mkdir(dir);
        if (group.length > 1) for (const name of group) if (!existsSync(join(ROOT, name))) await symlink(group.join(","), join(ROOT, name));
      } finally {
        await runProgram("mount", ["-o", "remount,ro", ROOT], { timeoutMs: 10_000 });
      }
    }
    await runProgram("mount", ["-t", "cgroup", "-o", group.join(","), "cgroup", dir], { timeoutMs: 10_000 });
    made.push(dir);
  }
  return made;
}
