// A test machine: a container of the Debian root on a network the test made, booted by systemd as
// its PID 1 (with the powers a VM's init needs: its cgroups, mounts and namespaces). The install phase reaches
// Debian's archive and the npm registry through the allowlist proxy only; the run phase reaches
// nothing outside its network.
import { randomBytes } from "node:crypto";
import { runProgram, type TestEngine, type TestNetwork } from "./engine.ts";
import { mountHostCgroupControllers } from "./host-cgroups.ts";
import { waitFor } from "@coyote/testing";

/** How a machine's PID 1 runs. */
export type Init = "systemd" | "none";

/** A running test machine. */
export interface Machine {
  /** The container's name. */
  readonly name: string;
  /** Its address on its network, where the host reaches its ports. */
  readonly address: string;
  /** Its network. */
  readonly network: TestNetwork;
  /** How its PID 1 runs: systemd, or a placeholder (units then started by the unit runner). */
  readonly init: Init;
  /** The host pid of its PID 1. */
  readonly pid: number;
  /**
   * Runs a command inside (as root unless `user`), with the machine's environment plus `env`.
   * @throws Error with the command's stderr when it exits non-zero or outlives `timeoutMs`.
   */
  exec(command: readonly string[], options?: { readonly user?: string; readonly env?: Readonly<Record<string, string>>; readonly timeoutMs?: number; readonly input?: string }): Promise<string>;
  /** Saves its file system as the image `name` (`docker commit`). */
  commit(image: string): Promise<void>;
  /** Removes the container, whatever state it is in. */
  remove(): Promise<void>;
}

/** What a machine is started with. */
export interface MachineOptions {
  readonly image: string;
  readonly network: TestNetwork;
  readonly init: Init;
  /** The box's hostname (a VM's `hostname`). */
  readonly hostname?: string;
  /** `http_proxy` and `https_proxy` for every command run in it with {@link Machine.exec} (the install phase). */
  readonly proxy?: string;
}

/**
 * The powers of a machine: every capability but those that reach past the container (loading
 * kernel modules, setting the host's clock) and CAP_SYS_RESOURCE, which this host's own bounding
 * set lacks: `--privileged` asks for every capability and fails here with "unable to apply caps".
 * No seccomp or AppArmor profile: systemd and the box's daemons mount, unshare and set up
 * namespaces as on a VM.
 */
const POWERS = [
  "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--cap-drop", "SYS_MODULE", "--cap-drop", "SYS_TIME",
  "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
];

/** The container options that let systemd boot as PID 1 on this host (cgroup v1 included). */
const SYSTEMD_OPTIONS = [
  // Docker's default for a cgroup v1 host, named so that the choice does not move with the engine:
  // systemd finds its own cgroup (/docker/<id>) in the host's hierarchies, which it needs to write
  // (the engine mounts them read-only), and stays inside it.
  "--cgroupns=host",
  "--volume", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
  "--tmpfs", "/run:rw,nosuid,nodev,mode=755",
  "--tmpfs", "/run/lock:rw,nosuid,nodev,noexec",
  "--env", "container=docker",
  "--stop-signal", "SIGRTMIN+3",
];

/** A fresh container name for this run. */
export function machineName(role: string): string {
  return `coyote-${role}-${randomBytes(4).toString("hex")}`;
}

/**
 * Starts a machine and waits until it is up: systemd reports `running` or `degraded` (a unit that
 * failed on a container is the box's business, not the harness's), or the placeholder runs.
 * Its default route is removed from inside: beyond its network there is nowhere to go.
 */
export async function startMachine(engine: TestEngine, options: MachineOptions): Promise<Machine> {
  const name = machineName(options.init === "systemd" ? "box" : "plain");
  // Given to each command run inside, not to the container: `docker commit` would keep it in the
  // image, and the run phase would then point at a proxy that is gone.
  const proxyEnv = options.proxy === undefined ? [] : ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"].flatMap((v) => ["--env", `${v}=${options.proxy ?? ""}`]);
  const command = options.init === "systemd" ? ["/sbin/init"] : ["/bin/sleep", "infinity"];
  if (options.init === "systemd") await mountHostCgroupControllers();
  await engine.docker([
    "run", "--detach", "--name", name, "--hostname", options.hostname ?? "debian",
    "--network", options.network.name,
    // Names are resolved on the machine's own loopback (the box's DNS), never by the engine upstream.
    "--dns", "127.0.0.1",
    ...POWERS,
    ...(options.init === "systemd" ? SYSTEMD_OPTIONS : []),
    options.image, ...command,
  ], { timeoutMs: 5 * 60_000 });
  const info = JSON.parse(await engine.docker(["inspect", "--format", "{{json .}}", name])) as { State: { Pid: number }; NetworkSettings: { Networks: Record<string, { IPAddress: string }> } };
  const address = info.NetworkSettings.Networks[options.network.name]?.IPAddress ?? "";
  const pid = info.State.Pid;
  if (address === "" || pid <= 0) throw new Error(`test machine ${name}: no address on ${options.network.name} or no pid`);
  await runProgram("nsenter", ["--target", String(pid), "--net", "ip", "route", "del", "default"]).catch(() => undefined);
  const machine: Machine = {
    name,
    address,
    network: options.network,
    init: options.init,
    pid,
    exec: (cmd, opts = {}) =>
      engine.docker([
        "exec", ...(opts.input === undefined ? [] : ["--interactive"]), ...(opts.user === undefined ? [] : ["--user", opts.user]), ...proxyEnv,
        ...Object.entries(opts.env ?? {}).flatMap(([k, v]) => ["--env", `${k}=${v}`]),
        name, ...cmd,
      ], { timeoutMs: opts.timeoutMs ?? 60_000, input: opts.input }),
    commit: async (image) => {
      await engine.docker(["commit", name, image], { timeoutMs: 10 * 60_000 });
    },
    remove: async () => {
      await engine.docker(["rm", "--force", "--volumes", name], { timeoutMs: 60_000 }).catch(() => undefined);
    },
  };
  if (options.init === "systemd") {
    try {
      await waitFor("systemd to finish booting", async () => {
        const state = (await machine.exec(["systemctl", "is-system-running"], { timeoutMs: 10_000 }).catch((error: unknown) => (error as Error).message)).trim();
        return /^(running|degraded)/m.test(state) ? state : false;
      }, { timeoutMs: 90_000, intervalMs: 250 });
    } catch (error) {
      const logs = await engine.docker(["logs", "--tail", "40", name]).catch(() => "");
      const failed = await machine.exec(["systemctl", "--failed", "--no-pager"]).catch(() => "");
      await machine.remove();
      throw new Error(`test machine ${name}: ${(error as Error).message}\n${logs}\n${failed}`, { cause: error });
    }
  }
  return machine;
}
