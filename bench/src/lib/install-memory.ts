// bench/install's memory part: every process of an installed box, read inside its machine from
// /proc/PID/smaps_rollup, grouped by the systemd unit it runs in (from /proc/PID/cgroup): Coyote's
// components (`dist/component.mjs <name>`), the daemons' units, and a bare Node process as the
// floor; also what the box's units are doing, and why a daemon's unit is not running.
import type { Machine } from "../../../integration/src/install/machine.ts";

/** One process of the machine. */
export interface BoxProcess {
  readonly pid: number;
  /** The systemd service it runs in, `-` when none. */
  readonly unit: string;
  /** Proportional and resident set sizes, kB. */
  readonly pss: number;
  readonly rss: number;
  /** CPU time so far, in clock ticks (utime + stime). */
  readonly ticks: number;
  readonly exe: string;
  readonly args: string;
}

/** One line per process: pid, unit, PSS, RSS, ticks, executable, command line (tab-separated). */
const SNAPSHOT = `for d in /proc/[0-9]*; do
  pid=\${d#/proc/}
  args=$(tr '\\0' ' ' < "$d/cmdline" 2>/dev/null) || continue
  [ -n "$args" ] || continue
  mem=$(awk '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 } END { printf "%s\\t%s", p, r }' "$d/smaps_rollup" 2>/dev/null) || continue
  ticks=$(sed 's/.*) //' "$d/stat" 2>/dev/null | awk '{ print $12 + $13 }') || continue
  unit=$(grep -o '[^/]*\\.service$' "$d/cgroup" 2>/dev/null | tail -n 1)
  exe=$(readlink "$d/exe" 2>/dev/null || true)
  printf '%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n' "$pid" "\${unit:--}" "$mem" "$ticks" "\${exe:--}" "$args"
done`;

/** Every process of the machine, now. */
export async function snapshot(machine: Machine): Promise<BoxProcess[]> {
  const text = await machine.exec(["bash", "-c", SNAPSHOT], { timeoutMs: 60_000 });
  const rows: BoxProcess[] = [];
  for (const line of text.split("\n")) {
    const [pid, unit, pss, rss, ticks, exe, ...args] = line.split("\t");
    if (pid === undefined || !/^\d+$/.test(pid) || pss === undefined || pss === "") continue;
    rows.push({ pid: Number(pid), unit: unit ?? "-", pss: Number(pss), rss: Number(rss), ticks: Number(ticks), exe: exe ?? "-", args: args.join("\t").trim() });
  }
  return rows;
}

/** What a process is: a component by its name, a daemon by its unit, or the machine's own. */
export function roleOf(row: BoxProcess): { kind: "component" | "daemon" | "other"; group: string; name: string } {
  const args = row.args.split(" ");
  const entry = args.findIndex((arg) => arg.endsWith("dist/component.mjs"));
  if (entry !== -1) return { kind: "component", group: args[entry + 1] ?? "?", name: args[entry + 1] ?? "?" };
  const program = (row.exe === "-" ? args[0] ?? "?" : row.exe).split("/").pop() ?? "?";
  if (/^coyote-.+\.service$/.test(row.unit)) return { kind: "daemon", group: row.unit.replace(/^coyote-/, "").replace(/\.service$/, ""), name: program };
  // The Docker engine the box's apps run in (when installed with Docker) is the box's daemon too.
  if (row.unit === "docker.service" || row.unit === "containerd.service") return { kind: "daemon", group: `${row.unit.replace(/\.service$/, "")} (Debian's unit)`, name: program };
  return { kind: "other", group: row.unit, name: program };
}

/** The box's units and their states (`systemctl list-units --all 'coyote*'`). */
export async function unitStates(machine: Machine): Promise<{ unit: string; active: string; sub: string }[]> {
  const text = await machine.exec(["systemctl", "list-units", "--all", "--no-legend", "--plain", "--no-pager", "coyote*"], { timeoutMs: 30_000 });
  return text.split("\n").map((line) => line.trim().split(/\s+/)).filter((f) => f.length >= 4).map(([unit = "", , active = "", sub = ""]) => ({ unit, active, sub }));
}

/**
 * For each daemon whose service is not running: its service's state, what its path unit waits
 * for, and the end of its journal.
 */
export async function daemonFindings(machine: Machine, states: readonly { unit: string; active: string; sub: string }[]): Promise<string[]> {
  const findings: string[] = [];
  const daemons = states.filter((s) => /^coyote-.+\.service$/.test(s.unit) && !/-reload\.service$/.test(s.unit) && !COMPONENT_UNITS.has(s.unit));
  const paths = states.filter((s) => s.unit.endsWith(".path") && !s.unit.endsWith("-reload.path"));
  for (const path of paths) {
    const service = path.unit.replace(/\.path$/, ".service");
    if (!daemons.some((d) => d.unit === service)) daemons.push({ unit: service, active: "(not loaded)", sub: "" });
  }
  for (const daemon of daemons) {
    if (daemon.active === "active" && daemon.sub === "running") continue;
    const path = paths.find((p) => p.unit === daemon.unit.replace(/\.service$/, ".path"));
    const condition = path === undefined ? "" : (await machine.exec(["bash", "-c", `systemctl cat ${path.unit} | grep -E '^(PathExists|PathChanged|PathModified|DirectoryNotEmpty)='`]).catch(() => "")).trim().replace(/\n/g, ", ");
    const journal = (await machine.exec(["journalctl", "-u", daemon.unit, "-n", "12", "--no-pager", "-o", "cat"], { timeoutMs: 30_000 }).catch((e: unknown) => String(e))).trim();
    findings.push(`${daemon.unit}: ${daemon.active} ${daemon.sub}${path === undefined ? "" : `; ${path.unit}: ${path.active} ${path.sub} (${condition || "no condition found"})`}\n${journal.split("\n").map((l) => `      ${l}`).join("\n")}`);
  }
  for (const state of states) {
    if (state.active !== "failed" || daemons.some((d) => d.unit === state.unit)) continue;
    const journal = (await machine.exec(["journalctl", "-u", state.unit, "-n", "8", "--no-pager", "-o", "cat"], { timeoutMs: 30_000 }).catch((e: unknown) => String(e))).trim();
    findings.push(`${state.unit}: failed\n${journal.split("\n").map((l) => `      ${l}`).join("\n")}`);
  }
  return findings;
}

/** A customer's service, as bench/memory gives its box: a domain with a mailbox and an XMPP user. */
const SERVICE = {
  schemaVersion: 1, kind: "Service", id: "shop", domains: [{ name: "shop.test" }],
  mail: { mailboxes: [{ address: "anna@shop.test", passwordHash: "{SCRAM-SHA-256}4096,c2FsdA==,c3RvcmVk,c2VydmVy" }] },
  xmpp: { users: [{ username: "anna", domain: "shop.test", passwordHash: "{SCRAM-SHA-256}4096,c2FsdA==,c3RvcmVk,c2VydmVy" }] },
};

/**
 * Activates the box through its CLI, as the state folder's owner (`coyote spec get server`, then
 * `coyote spec apply -` with `activated: true`), and gives it one customer's service.
 */
export async function activate(machine: Machine): Promise<void> {
  const as = { user: "coyote", env: { HOME: "/var/lib/coyote" }, timeoutMs: 60_000 };
  const server = JSON.parse(await machine.exec(["coyote", "spec", "get", "server"], as)) as Record<string, unknown>;
  await machine.exec(["coyote", "spec", "apply", "-"], { ...as, input: JSON.stringify({ ...server, activated: true }) });
  await machine.exec(["coyote", "spec", "apply", "-"], { ...as, input: JSON.stringify(SERVICE) });
}

/** The components' units, as `coyote setup` names them. */
const COMPONENT_UNITS = new Set(["coyote-minion.service", "coyote-snitch-proxy.service", "coyote-crm.service", "coyote-docker-activator.service"]);

/** The floor's unit, started with systemd-run like any service of the machine (not a `coyote-*` name). */
export const FLOOR_UNIT = "bench-floor-node.service";

/**
 * Starts the floor: a bare `node -e 'setInterval(()=>{},1e3)'` with the box's own Node binary
 * (the one its minion runs), as a transient unit.
 * @returns its pid.
 */
export async function startFloor(machine: Machine): Promise<number> {
  const script = `set -eu
minion=$(systemctl show -p MainPID --value coyote-minion.service)
node=$(readlink /proc/$minion/exe)
systemd-run --quiet --unit=${FLOOR_UNIT} "$node" -e 'setInterval(()=>{},1e3)'
sleep 1
systemctl show -p MainPID --value ${FLOOR_UNIT}`;
  const pid = Number((await machine.exec(["bash", "-c", script], { timeoutMs: 30_000 })).trim());
  if (!Number.isSafeInteger(pid) || pid <= 0) throw new Error("bench/install: the bare Node process did not start");
  return pid;
}

const mb = (kb: number) => (kb / 1024).toFixed(1);

/**
 * Prints the memory table of a snapshot and the CPU each group used since an earlier one.
 * @returns the components' total PSS and the floor's, in kB.
 */
export function printMemory(out: (line: string) => void, before: readonly BoxProcess[], now: readonly BoxProcess[], floorPid: number, seconds: number, goalMb: number): { componentsPss: number; floorPss: number } {
  const ticksPerSecond = 100;
  const earlier = new Map(before.map((row) => [row.pid, row.ticks]));
  const floor = now.find((row) => row.pid === floorPid);
  if (floor === undefined) throw new Error("bench/install: the bare Node process is gone");
  const groups = new Map<string, { kind: string; names: Set<string>; count: number; pss: number; rss: number; ticks: number }>();
  for (const row of now) {
    if (row.pid === floorPid) continue;
    const role = roleOf(row);
    if (role.kind === "other") continue;
    const key = `${role.kind}\0${role.group}`;
    const group = groups.get(key) ?? { kind: role.kind, names: new Set<string>(), count: 0, pss: 0, rss: 0, ticks: 0 };
    group.names.add(role.name);
    group.count++;
    group.pss += row.pss;
    group.rss += row.rss;
    group.ticks += row.ticks - (earlier.get(row.pid) ?? row.ticks);
    groups.set(key, group);
  }
  const line = (name: string, count: string, pss: number, rss: number, cpu: string, ratio: string) =>
    out(`  ${name.padEnd(44)} ${count.padStart(5)} ${mb(pss).padStart(9)} ${mb(rss).padStart(9)} ${cpu.padStart(7)} ${ratio.padStart(8)}`);
  out(`  ${"unit (programs)".padEnd(44)} ${"procs".padStart(5)} ${"PSS MB".padStart(9)} ${"RSS MB".padStart(9)} ${"CPU %".padStart(7)} ${"/ floor".padStart(8)}`);
  const totals = { componentsPss: 0, floorPss: floor.pss };
  for (const kind of ["component", "daemon"]) {
    out(kind === "component" ? "Coyote's components:" : "daemons:");
    let pss = 0, rss = 0, count = 0;
    for (const [key, group] of [...groups].filter(([, g]) => g.kind === kind).sort(([a], [b]) => a.localeCompare(b))) {
      const name = `${key.split("\0")[1] ?? ""} (${[...group.names].join(", ")})`;
      line(name.slice(0, 44), String(group.count), group.pss, group.rss, (group.ticks / ticksPerSecond / seconds * 100).toFixed(1), `${(group.pss / floor.pss).toFixed(1)}x`);
      pss += group.pss;
      rss += group.rss;
      count += group.count;
    }
    line("total", String(count), pss, rss, "", `${(pss / floor.pss).toFixed(1)}x`);
    if (kind === "component") totals.componentsPss = pss;
  }
  out("floor:");
  line("node -e 'setInterval(()=>{},1e3)'", "1", floor.pss, floor.rss, "", "1.0x");
  out(`Coyote's components: ${mb(totals.componentsPss)} MB PSS, ${(totals.componentsPss / 1024 / goalMb).toFixed(2)}x the ${String(goalMb)} MB goal, ${(totals.componentsPss / floor.pss).toFixed(1)}x the bare Node process`);
  return totals;
}
