// The daemon supervisor with the real daemons (Knot, Postfix, Dovecot, Prosody) on loopback ports
// of their own, under a temp state folder: started, checked ready, restarted with backoff when
// killed, reloaded (same pid, new configuration in effect) when their configuration changes, and
// stopped with nothing left of their process groups.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { createLogger } from "@coyote/log";
import { freePort, IN_CI, requireProgram, skipWithout, stopPid, tempDirs, waitFor } from "@coyote/testing";
import { bannerProbe, commandProbe, runBounded } from "./probes.ts";
import { findDaemon, type DaemonDefinition, type DaemonPaths } from "./catalogue.ts";
import { readDaemonStates } from "./state-file.ts";
import { DaemonSupervisor } from "./supervisor.ts";
import { daemonState, groupMembers, writeDovecotConf, writeKnotConf, writePostfixConf, writeProsodyConf } from "../test/daemons.ts";

const tempDir = tempDirs("coyote-daemons-");
const FAST = { initialMs: 200, maxMs: 400, resetAfterMs: 60_000 };
const asRoot = process.getuid?.() === 0;

function entry(name: string): DaemonDefinition {
  const found = findDaemon(name);
  assert.ok(found, `${name} is in the catalogue`);
  return found;
}

/** A supervisor of one daemon in a fresh state folder, stopped (and its group checked) after the test. */
async function supervise(t: TestContext, name: string, write: (paths: DaemonPaths) => Promise<void>): Promise<{ supervisor: DaemonSupervisor; paths: DaemonPaths; pid: () => number }> {
  const paths = await daemonState(tempDir());
  await write(paths);
  const logger = createLogger({ component: "supervisor", file: `${paths.stateDir}/supervisor.log`, level: "silent" });
  const supervisor = new DaemonSupervisor({ stateDir: paths.stateDir, logger, daemons: [entry(name)], backoff: FAST, pollMs: 100, readyTimeoutMs: 20_000 });
  const pids = new Set<number>();
  const pid = () => {
    const state = supervisor.states()[0];
    assert.equal(state?.state, "running", `${name}: ${JSON.stringify(state)}\n${log(paths, name)}`);
    assert.ok(state.pid !== undefined);
    pids.add(state.pid);
    return state.pid;
  };
  t.after(async () => {
    await supervisor.stop();
    await logger.close();
    // Belt and braces: whatever the supervisor left is stopped by its group, never by name.
    for (const p of pids) for (const member of await groupMembers(p)) await stopPid(member);
  });
  await supervisor.start();
  return { supervisor, paths, pid };
}

function log(paths: DaemonPaths, name: string): string {
  try {
    return readFileSync(`${paths.logsDir}/${name}.log`, "utf8").slice(-3000);
  } catch {
    return "(no log)";
  }
}

function kdigIdentity(port: number): Promise<string> {
  const kdig = requireProgram("kdig");
  return runBounded(kdig, ["@127.0.0.1", "-p", String(port), "+short", "+time=2", "+retry=0", "CH", "TXT", "id.server"], 5000).then((r) => r.output.trim());
}

describe("the daemon catalogue's daemons under the supervisor", { concurrency: false }, () => {
  test("knot: starts ready, reloads a changed identity with the same pid, and stops with nothing left", { skip: skipWithout(["knotd", "knotc", "kdig"], "Debian packages knot, knot-dnsutils") }, async (t) => {
    requireProgram("knotd");
    const port = await freePort();
    const { supervisor, paths, pid } = await supervise(t, "knot", (p) => writeKnotConf(p, port, "coyote-one"));
    const first = pid();
    assert.equal(await kdigIdentity(port), '"coyote-one"');
    await writeKnotConf(paths, port, "coyote-two");
    await waitFor("knot to answer with its new identity", async () => ((await kdigIdentity(port)) === '"coyote-two"' ? true : undefined), 10_000);
    assert.equal(pid(), first, "reloaded, not restarted");
    // Knot may answer anew before knotc returns and the supervisor counts the reload.
    await waitFor("the reload to be counted", () => Promise.resolve(supervisor.states()[0]?.reloads === 1 ? true : undefined), 10_000);
    assert.equal(supervisor.states()[0]?.reloads, 1);
    await supervisor.stop();
    assert.deepEqual(await groupMembers(first), [], "no process of knot's group is left");
  });

  test("postfix: a killed master is restarted with a doubling, capped backoff; a new banner is reloaded, not restarted", { skip: skipWithout(["postfix"], "Debian package postfix") }, async (t) => {
    requireProgram("postfix");
    if (!asRoot) {
      // Postfix's master refuses any other user: "fatal: the master command is reserved for the superuser".
      if (IN_CI) assert.fail("the Postfix test needs root");
      t.skip("postfix's master runs only as root");
      return;
    }
    const port = await freePort();
    const { supervisor, paths, pid } = await supervise(t, "postfix", (p) => writePostfixConf(p, port, "$myhostname ESMTP first"));
    const first = pid();
    assert.deepEqual(await bannerProbe("127.0.0.1", port, /^220 box\.test ESMTP first$/, 5000), { ok: true });

    // Killed twice: restarted after 200 ms, then 400 ms, then 400 ms again (the cap).
    const delays: string[] = [];
    let previous = first;
    for (let kill = 0; kill < 3; kill++) {
      process.kill(previous, "SIGKILL");
      const restarting = await waitFor("postfix to be seen dead", () => {
        const s = supervisor.states()[0];
        return s?.state === "restarting" ? s : undefined;
      }, { timeoutMs: 5000, intervalMs: 5 });
      assert.equal(restarting.lastExit, "killed by SIGKILL");
      delays.push(restarting.detail ?? "");
      previous = await waitFor("postfix to run again", () => {
        const s = supervisor.states()[0];
        return s?.state === "running" && s.pid !== undefined && s.pid !== previous ? s.pid : undefined;
      }, 20_000);
      assert.deepEqual(await bannerProbe("127.0.0.1", port, /^220 /, 5000), { ok: true }, log(paths, "postfix"));
    }
    assert.deepEqual(delays, ["next start in 200 ms", "next start in 400 ms", "next start in 400 ms"]);
    assert.equal(supervisor.states()[0]?.restarts, 3);
    const published = await readDaemonStates(paths.stateDir);
    assert.equal(published?.daemons[0]?.pid, previous, "run/daemons.json names the running pid");

    await writePostfixConf(paths, port, "$myhostname ESMTP second");
    await waitFor("postfix to greet with its new banner", async () => ((await bannerProbe("127.0.0.1", port, /^220 box\.test ESMTP second$/, 2000)).ok ? true : undefined), 15_000);
    assert.equal(pid(), previous, "reloaded, not restarted");
    assert.equal(supervisor.states()[0]?.reloads, 1);
    await supervisor.stop();
    assert.deepEqual(await groupMembers(previous), [], "no process of postfix's group is left");
  });

  test("dovecot: starts ready, reloads a changed process limit with the same pid, and stops with nothing left", { skip: skipWithout(["dovecot", "doveadm"], "Debian package dovecot-core") }, async (t) => {
    const doveadm = requireProgram("doveadm");
    if (!asRoot) {
      // As another user Dovecot stops at "Fatal: fchown() failed for .../login: Operation not permitted".
      if (IN_CI) assert.fail("the Dovecot test needs root");
      t.skip("dovecot's master needs root without default_internal_user and friends set to the running user");
      return;
    }
    const { supervisor, paths, pid } = await supervise(t, "dovecot", (p) => writeDovecotConf(p, 71));
    const first = pid();
    const limit = async () => {
      const out = (await runBounded(doveadm, ["-c", paths.dovecotConf, "-f", "tab", "service", "status"], 5000)).output;
      return out.split("\n").find((line) => line.startsWith("tcpwrap\t"))?.split("\t")[3];
    };
    assert.equal(await limit(), "71");
    await writeDovecotConf(paths, 72);
    await waitFor("dovecot to run with its new process limit", async () => ((await limit()) === "72" ? true : undefined), 10_000);
    assert.equal(pid(), first, "reloaded, not restarted");
    // A renewed certificate (snickers' folder) reaches it by a reload as well.
    const reloads = supervisor.states()[0]?.reloads ?? 0;
    mkdirSync(join(paths.stateDir, "proxy", "certs"), { recursive: true });
    writeFileSync(join(paths.stateDir, "proxy", "certs", "mx.test.example.pem"), "renewed\n");
    await waitFor("dovecot to be reloaded for the new certificate", () => Promise.resolve((supervisor.states()[0]?.reloads ?? 0) > reloads ? true : undefined), 10_000);
    assert.equal(pid(), first, "reloaded, not restarted");
    await supervisor.stop();
    assert.deepEqual(await groupMembers(first), [], "no process of dovecot's group is left");
  });

  test("prosody: starts ready (as the prosody user under root), reloads a changed option with the same pid", { skip: skipWithout(["prosody", "prosodyctl"], "Debian package prosody") }, async (t) => {
    const prosodyctl = requireProgram("prosodyctl");
    const port = await freePort();
    const { supervisor, paths, pid } = await supervise(t, "prosody", (p) => writeProsodyConf(p, port, "one"));
    const first = pid();
    const marker = async () => {
      return (await runBounded(prosodyctl, ["--config", paths.prosodyConf, "shell", 'config:get("*", "coyote_marker")'], 10_000)).output;
    };
    assert.match(await marker(), /one/);
    await writeProsodyConf(paths, port, "two");
    await waitFor("prosody to run with its new option", async () => (/two/.test(await marker()) ? true : undefined), 10_000);
    assert.equal(pid(), first, "reloaded, not restarted");
    await supervisor.stop();
    assert.deepEqual(await groupMembers(first), [], "no process of prosody's group is left");
  });
});

describe("the daemon supervisor's states", () => {
  test("a daemon whose program is missing is not installed; one without configuration waits for it and starts when it appears", { skip: skipWithout(["knotd", "knotc"], "Debian package knot") }, async (t) => {
    const paths = await daemonState(tempDir());
    const logger = createLogger({ component: "supervisor", file: `${paths.stateDir}/supervisor.log`, level: "silent" });
    const missing = new DaemonSupervisor({ stateDir: paths.stateDir, logger, daemons: [entry("knot")], programDirs: [paths.stateDir], pollMs: 100 });
    await missing.start();
    assert.equal(missing.states()[0]?.state, "not installed");
    assert.match(missing.states()[0]?.detail ?? "", /knotd not found; Debian package knot/);
    await missing.stop();

    await logger.close();

    const { supervisor, paths: own } = await supervise(t, "knot", () => Promise.resolve());
    assert.equal(supervisor.states()[0]?.state, "no configuration");
    assert.equal((await readDaemonStates(own.stateDir))?.daemons[0]?.state, "no configuration");
    await writeKnotConf(own, await freePort(), "late");
    await waitFor("knot to start once its configuration is there", () => (supervisor.states()[0]?.state === "running" ? true : undefined), 20_000);
    assert.deepEqual(await commandProbe(requireProgram("knotc"), ["-c", own.knotConf, "status"], 5000), { ok: true });
  });

  test("a daemon that needs root is not started without it, and says why", { skip: skipWithout(["postfix"], "Debian package postfix") }, async () => {
    const paths = await daemonState(tempDir());
    await writePostfixConf(paths, await freePort(), "$myhostname ESMTP");
    const logger = createLogger({ component: "supervisor", file: `${paths.stateDir}/supervisor.log`, level: "silent" });
    const supervisor = new DaemonSupervisor({ stateDir: paths.stateDir, logger, daemons: [entry("postfix")], asRoot: false, pollMs: 100 });
    try {
      await supervisor.start();
      const [state] = supervisor.states();
      assert.equal(state?.state, "needs root");
      assert.equal(state.pid, undefined);
      assert.match(state.detail ?? "", /the master command is reserved for the superuser/);
    } finally {
      await supervisor.stop();
      await logger.close();
    }
  });

  /**
   * A daemon-shaped shell: its main process (`sleep`, exec'd) has a second `sleep` beside it in its
   * process group, standing for a daemon's worker that outlives its master.
   */
  function fakeDaemon(paths: DaemonPaths, ready: () => boolean): DaemonDefinition {
    const childPidFile = join(paths.stateDir, "worker.pid");
    return {
      ...entry("knot"),
      program: "sh",
      configFile: () => join(paths.stateDir, "fake.conf"),
      watch: () => [join(paths.stateDir, "fake.conf")],
      args: () => ["-c", `sleep 600 & echo $! > '${childPidFile}'; exec sleep 600`],
      ready: () => Promise.resolve(ready() ? { ok: true } : { ok: false, why: "never ready" }),
      stop: { signal: "SIGTERM", graceMs: 2000 },
    };
  }

  async function fake(t: TestContext, ready: () => boolean, readyTimeoutMs = 5000, before: (paths: DaemonPaths) => void = () => undefined) {
    const paths = await daemonState(tempDir());
    writeFileSync(join(paths.stateDir, "fake.conf"), "");
    before(paths);
    const logger = createLogger({ component: "supervisor", file: `${paths.stateDir}/supervisor.log`, level: "silent" });
    const supervisor = new DaemonSupervisor({ stateDir: paths.stateDir, logger, daemons: [fakeDaemon(paths, ready)], programDirs: ["/bin", "/usr/bin"], backoff: FAST, pollMs: 100, readyTimeoutMs });
    const worker = async () => Number(await waitFor("the worker's pid", () => readFileSync(join(paths.stateDir, "worker.pid"), "utf8").trim() || undefined, { retryErrors: true }));
    t.after(async () => {
      await supervisor.stop();
      await logger.close();
    });
    await supervisor.start();
    return { supervisor, worker };
  }

  test("what a killed daemon leaves in its process group is killed before it is started again", async (t) => {
    const { supervisor, worker } = await fake(t, () => true);
    const first = supervisor.states()[0]?.pid;
    assert.ok(first !== undefined);
    const orphan = await worker();
    process.kill(first, "SIGKILL");
    // Gone or a zombie: an orphan reparented to a pid 1 that does not reap stays one.
    await waitFor("the orphaned worker to be gone", async () => !(await groupMembers(first)).includes(orphan) || undefined, 5000);
    await waitFor("the daemon to run again", () => (supervisor.states()[0]?.state === "running" && supervisor.states()[0]?.pid !== first) || undefined, 5000);
  });

  test("stopping reaches the whole process group, not only the main process", async (t) => {
    const { supervisor, worker } = await fake(t, () => true);
    const pid = supervisor.states()[0]?.pid;
    assert.ok(pid !== undefined);
    const orphan = await worker();
    await supervisor.stop();
    assert.deepEqual(await groupMembers(pid), [], `the worker ${orphan} was stopped with its group`);
  });

  test("a daemon that never passes its readiness check is stopped and started again, with the reason", async (t) => {
    const began = performance.now();
    const { supervisor } = await fake(t, () => false, 600);
    const failed = await waitFor("the daemon to be given up on", () => {
      const s = supervisor.states()[0];
      return s?.state === "restarting" ? s : undefined;
    }, 5000);
    assert.equal(failed.lastExit, "not ready within 1 s: never ready");
    assert.ok(performance.now() - began < 5000, "given up on at its readiness deadline, not later");
  });

  /** Starts the fake daemon after a dead supervisor's `run/daemons.json` that names `pid` as it. */
  function afterDeadSupervisor(t: TestContext, pid: number) {
    return fake(t, () => true, 5000, (paths) => {
      mkdirSync(paths.runDir, { recursive: true });
      // Written by a supervisor whose pid is past the kernel's pid_max: it is gone.
      const daemons = [{ name: "knot", state: "running", pid, restarts: 0, reloads: 0 }];
      writeFileSync(join(paths.runDir, "daemons.json"), JSON.stringify({ schemaVersion: 1, supervisorPid: 2 ** 22 + 1, writtenAt: new Date().toISOString(), daemons }));
    });
  }

  function detached(t: TestContext, program: string, args: string[]): number {
    const pid = spawn(program, args, { detached: true, stdio: "ignore" }).pid;
    assert.ok(pid !== undefined);
    t.after(async () => {
      for (const member of await groupMembers(pid)) await stopPid(member);
    });
    return pid;
  }

  test("what a supervisor that died left running is stopped before the daemon starts again", async (t) => {
    const leftover = detached(t, "/bin/sh", ["-c", "sleep 600; true"]);
    await waitFor("the leftover's sleep", async () => (await groupMembers(leftover)).length === 2 || undefined);
    const { supervisor } = await afterDeadSupervisor(t, leftover);
    assert.deepEqual(await groupMembers(leftover), [], "the leftover daemon's group was stopped");
    assert.equal(supervisor.states()[0]?.state, "running");
  });

  test("a pid of a dead supervisor's file that now runs another program is left alone", async (t) => {
    const stranger = detached(t, "sleep", ["600"]);
    const { supervisor } = await afterDeadSupervisor(t, stranger);
    assert.equal(supervisor.states()[0]?.state, "running");
    assert.deepEqual(await groupMembers(stranger), [stranger], "a process that is not the daemon's program is not touched");
  });
});
