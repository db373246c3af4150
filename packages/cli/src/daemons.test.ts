// `coyote status` and `coyote doctor` on the box's daemons: what they say with no `coyote up`
// running, with a supervisor's published states, with stale or malformed ones, and with a real
// Knot run by the daemon supervisor on a loopback port.
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { DaemonSupervisor, daemonPaths, findDaemon } from "@coyote/component";
import { createLogger } from "@coyote/log";
import { freePort, requireProgram, skipWithout, tempDirs } from "@coyote/testing";
import { checkDaemons } from "./commands/doctor.ts";
import { gatherDaemons } from "./daemons.ts";
import { cli } from "./test/support.ts";

const tempDir = tempDirs("coyote-cli-daemons-");

function publish(stateDir: string, supervisorPid: number, daemons: unknown[]): void {
  mkdirSync(join(stateDir, "run"), { recursive: true });
  writeFileSync(join(stateDir, "run", "daemons.json"), JSON.stringify({ schemaVersion: 1, supervisorPid, writtenAt: new Date().toISOString(), daemons }));
}

function writeKnotConf(stateDir: string, port: number): string {
  const dir = join(stateDir, "dns", "knot");
  mkdirSync(join(dir, "db"), { recursive: true });
  const conf = join(dir, "knot.conf");
  writeFileSync(conf, `server:\n    rundir: "${dir}"\n    listen: 127.0.0.1@${port}\ndatabase:\n    storage: "${join(dir, "db")}"\ncontrol:\n    listen: "${join(dir, "knot.sock")}"\nlog:\n  - target: stdout\n    any: info\n`);
  return conf;
}

describe("the daemons in coyote status and coyote doctor", () => {
  test("without coyote up: a configured daemon is stopped, the others have no configuration yet", { skip: skipWithout(["knotd"], "Debian package knot") }, async () => {
    const state = tempDir();
    writeKnotConf(state, 1);
    const reports = await gatherDaemons(state);
    assert.deepEqual(reports.map((d) => [d.name, d.state]), [["knot", "stopped"], ["opendkim", "no configuration"], ["postfix", "no configuration"], ["dovecot", "no configuration"], ["prosody", "no configuration"]]);
    assert.match(reports[0]?.detail ?? "", /coyote up runs it/);
  });

  test("a published state is shown while its supervisor lives: a restarting daemon with its last exit fails the doctor", async () => {
    const state = tempDir();
    publish(state, process.pid, [
      { name: "postfix", state: "restarting", restarts: 2, reloads: 0, lastExit: "killed by SIGKILL", detail: "next start in 2000 ms" },
      { name: "prosody", state: "running", pid: process.pid, since: new Date(Date.now() - 90_000).toISOString(), restarts: 0, reloads: 1 },
      { name: "dovecot", state: "needs root", restarts: 0, reloads: 0, detail: "its master gives its sockets to its own users" },
    ]);
    const status = await cli(state, "status");
    assert.match(status.out, /postfix\s+restarting\s+next start in 2000 ms; last exit: killed by SIGKILL; 2 restarts/);
    assert.match(status.out, new RegExp(`prosody\\s+running\\s+pid ${process.pid}, up 1m 3[01]s \\(since `));
    const checks = await checkDaemons(state);
    assert.equal(checks.find((c) => c.name === "daemon postfix")?.result, "fail");
    assert.equal(checks.find((c) => c.name === "daemon prosody")?.result, "ok");
    const dovecot = checks.find((c) => c.name === "daemon dovecot");
    assert.equal(dovecot?.result, "warn");
    assert.match(dovecot.fix ?? "", /as root/);
  });

  test("a state published by a supervisor that is gone is not believed", async () => {
    const state = tempDir();
    // A pid past the kernel's pid_max: no process has it.
    publish(state, 2 ** 22 + 1, [{ name: "postfix", state: "running", pid: 1, restarts: 0, reloads: 0 }]);
    const postfix = (await gatherDaemons(state)).find((d) => d.name === "postfix");
    assert.notEqual(postfix?.state, "running");
  });

  test("a malformed run/daemons.json is named with its field, by status and by the doctor", async () => {
    const state = tempDir();
    publish(state, process.pid, [{ name: "postfix", state: "flying", restarts: 0, reloads: 0 }]);
    const status = await cli(state, "status");
    assert.notEqual(status.code, 0);
    assert.match(status.err, /daemons\.json: daemons\[0\]\.state must be one of running/);
    const [check] = await checkDaemons(state);
    assert.equal(check?.result, "fail");
    assert.match(check.detail, /daemons\[0\]\.state/);
  });

  test("a Knot run by the daemon supervisor is shown running with its pid", { skip: skipWithout(["knotd", "knotc"], "Debian package knot") }, async (t) => {
    requireProgram("knotd");
    const state = tempDir();
    chmodSync(state, 0o755);
    writeKnotConf(state, await freePort());
    const knot = findDaemon("knot");
    assert.ok(knot);
    const logger = createLogger({ component: "supervisor", file: join(state, "supervisor.log"), level: "silent" });
    const supervisor = new DaemonSupervisor({ stateDir: state, logger, daemons: [knot], pollMs: 100 });
    t.after(async () => {
      await supervisor.stop();
      await logger.close();
    });
    await supervisor.start();
    const pid = supervisor.states()[0]?.pid;
    assert.ok(pid !== undefined, JSON.stringify(supervisor.states()));
    const status = await cli(state, "status", "--json");
    const report = JSON.parse(status.out) as { daemons: { name: string; state: string; detail: string }[] };
    const shown = report.daemons.find((d) => d.name === "knot");
    assert.equal(shown?.state, "running");
    assert.match(shown.detail, new RegExp(`^pid ${pid}, up `));
    assert.equal(daemonPaths(state).knotConf, join(state, "dns", "knot", "knot.conf"));
  });
});
