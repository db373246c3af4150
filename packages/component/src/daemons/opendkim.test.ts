// OpenDKIM's entry: where its milter listens, the milter probe against the real signer and against
// things that are not a milter, and the supervisor running it (ready, reloaded by SIGUSR1 with the
// same pid, restarted when killed, stopped with nothing left of its group).
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { describe, test } from "node:test";
import { createLogger } from "@coyote/log";
import { freePort, IN_CI, skipWithout, stopPid, tempDirs, waitFor } from "@coyote/testing";
import { daemonPaths, type DaemonPaths } from "./catalogue.ts";
import { milterProbe, openDkimConf, openDkimSocket, opendkim } from "./opendkim.ts";
import { DaemonSupervisor } from "./supervisor.ts";
import { renderSystemdUnit } from "./systemd.ts";
import { daemonState, groupMembers } from "../test/daemons.ts";

const tempDir = tempDirs("coyote-opendkim-");
const skipNoOpenDkim = IN_CI ? false : skipWithout(["opendkim"], "Debian package opendkim");

/** A minimal signer configuration (one domain, its own key) on a unix socket in the state folder. */
async function writeOpenDkimConf(paths: DaemonPaths, domains: readonly string[]): Promise<string> {
  const root = join(paths.stateDir, "mail", "opendkim");
  await mkdir(join(root, "keys"), { recursive: true, mode: 0o700 });
  await mkdir(join(root, "run"), { recursive: true });
  const socket = join(root, "run", "opendkim.sock");
  for (const domain of domains) {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    await writeFile(join(root, "keys", `${domain}.private`), privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  }
  await writeFile(join(root, "KeyTable"), domains.map((d) => `coyote._domainkey.${d} ${d}:coyote:${join(root, "keys", `${d}.private`)}\n`).join(""));
  await writeFile(join(root, "SigningTable"), domains.map((d) => `*@${d} coyote._domainkey.${d}\n`).join(""));
  await writeFile(join(root, "InternalHosts"), "127.0.0.1\n::1\n");
  await writeFile(openDkimConf(paths), [
    "Mode s",
    "Background no",
    `KeyTable file:${join(root, "KeyTable")}`,
    `SigningTable refile:${join(root, "SigningTable")}`,
    `InternalHosts file:${join(root, "InternalHosts")}`,
    `Socket local:${socket}`,
    "UMask 007",
    "",
  ].join("\n"));
  return socket;
}

describe("opendkim's entry", () => {
  test("finds the milter's address in the Socket line", () => {
    assert.deepEqual(openDkimSocket("# Socket inet:1@[127.0.0.1]\nMode s\nSocket   local:/var/lib/coyote/mail/opendkim/run/opendkim.sock\n"), { path: "/var/lib/coyote/mail/opendkim/run/opendkim.sock" });
    assert.deepEqual(openDkimSocket("Socket inet:8891@[127.0.0.1]"), { host: "127.0.0.1", port: 8891 });
    assert.deepEqual(openDkimSocket("Socket inet:8891@localhost"), { host: "127.0.0.1", port: 8891 });
    assert.deepEqual(openDkimSocket("Socket inet:8891"), { host: "127.0.0.1", port: 8891 }, "every interface is probed on loopback");
    assert.deepEqual(openDkimSocket("Socket inet6:8891@[::1]"), { host: "::1", port: 8891 });
    for (const bad of ["", "Mode s", "Socket local:relative.sock", "Socket inet:99999@[127.0.0.1]", "Socket inet:x"]) assert.equal(openDkimSocket(bad), undefined, bad);
  });

  test("its systemd unit comes from the same entry: foreground, the configuration checked first, SIGUSR1 to reload", { skip: skipNoOpenDkim }, () => {
    const conf = "/var/lib/coyote/mail/opendkim/opendkim.conf";
    const unit = renderSystemdUnit(opendkim, daemonPaths("/var/lib/coyote")).text.split("\n");
    assert.ok(unit.includes(`ExecStart="/usr/sbin/opendkim" "-f" "-x" "${conf}"`), unit.join("\n"));
    assert.ok(unit.includes(`ExecStartPre="/usr/sbin/opendkim" "-n" "-x" "${conf}"`));
    assert.ok(unit.includes("ExecReload=/bin/kill -USR1 $MAINPID"));
    assert.ok(unit.includes(`ConditionPathExists=${conf}`));
  });

  test("the milter probe fails on nothing listening, on an SMTP greeting and on silence, within its deadline", async () => {
    const port = await freePort();
    const refused = await milterProbe({ host: "127.0.0.1", port }, 2000);
    assert.equal(refused.ok, false);
    const servers: Server[] = [];
    const sockets: Socket[] = [];
    try {
      const smtp = createServer((socket) => socket.end("220 not a milter\r\n"));
      const silent = createServer((socket) => sockets.push(socket));
      servers.push(smtp, silent);
      const listen = (server: Server) => new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)));
      const greeted = await milterProbe({ host: "127.0.0.1", port: await listen(smtp) }, 2000);
      assert.equal(greeted.ok, false);
      const started = performance.now();
      const quiet = await milterProbe({ host: "127.0.0.1", port: await listen(silent) }, 300);
      assert.deepEqual(quiet, { ok: false, why: `no milter negotiation from 127.0.0.1:${(silent.address() as { port: number }).port} within 300 ms` });
      assert.ok(performance.now() - started < 2000);
    } finally {
      for (const socket of sockets) socket.destroy();
      for (const server of servers) server.close();
    }
  });

  test("under the supervisor: ready when it negotiates, reloaded by SIGUSR1 with the same pid, restarted when killed", { skip: skipNoOpenDkim }, async (t) => {
    const paths = await daemonState(tempDir());
    const socket = await writeOpenDkimConf(paths, ["one.example"]);
    const logger = createLogger({ component: "supervisor", file: join(paths.stateDir, "supervisor.log"), level: "silent" });
    // Typed as a catalogue entry by hand until the catalogue's names include it.
    const supervisor = new DaemonSupervisor({ stateDir: paths.stateDir, logger, daemons: [opendkim], backoff: { initialMs: 200, maxMs: 400, resetAfterMs: 60_000 }, pollMs: 100, readyTimeoutMs: 20_000 });
    const pids = new Set<number>();
    t.after(async () => {
      await supervisor.stop();
      await logger.close();
      for (const p of pids) for (const member of await groupMembers(p)) await stopPid(member);
    });
    await supervisor.start();
    const running = () => {
      const state = supervisor.states()[0];
      assert.equal(state?.state, "running", JSON.stringify(state));
      assert.ok(state.pid !== undefined);
      pids.add(state.pid);
      return state.pid;
    };
    const first = running();
    assert.deepEqual(await milterProbe({ path: socket }, 2000), { ok: true });
    assert.deepEqual(opendkim.args(daemonPaths(paths.stateDir)), ["-f", "-x", openDkimConf(paths)]);

    await writeOpenDkimConf(paths, ["one.example", "two.example"]);
    await waitFor("a reload", () => (supervisor.states()[0]?.reloads === 1 ? true : undefined), 5000);
    assert.equal(running(), first, "reloaded, not restarted");
    assert.deepEqual(await milterProbe({ path: socket }, 2000), { ok: true }, "still serving after SIGUSR1");

    process.kill(first, "SIGKILL");
    const second = await waitFor("a restarted opendkim", () => {
      const state = supervisor.states()[0];
      return state?.state === "running" && state.pid !== undefined && state.pid !== first ? state.pid : undefined;
    }, 15_000);
    pids.add(second);
    assert.equal(supervisor.states()[0]?.restarts, 1);
    assert.deepEqual(await milterProbe({ path: socket }, 2000), { ok: true });
    await supervisor.stop();
    assert.deepEqual(await groupMembers(second), [], "nothing of opendkim's group is left");
  });
});
