import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { skipWithout } from "@coyote/testing";
import { DAEMONS, daemonPaths, findDaemon, findDaemonProgram } from "./catalogue.ts";
import { renderSystemdUnit, systemdWord } from "./systemd.ts";

/** The programs every entry needs, so that the units can be rendered on this machine. */
const programs = [...new Set(DAEMONS.flatMap((d) => [d.program, ...d.tools]))];
const missing = programs.filter((name) => findDaemonProgram(name) === undefined);
const skip = skipWithout(["systemd-analyze"], "Debian package systemd") || (missing.length > 0 && process.env.CI !== "true" ? `missing ${missing.join(", ")}` : false);

/** What `systemd-analyze verify` says of a unit file (nothing when it is well formed). */
async function verify(name: string, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "coyote-units-"));
  try {
    await writeFile(join(dir, name), text);
    const result = spawnSync("systemd-analyze", ["verify", "--man=no", join(dir, name)], { encoding: "utf8", timeout: 30_000 });
    return `${result.status === 0 ? "" : `exit ${String(result.status)}: `}${result.stdout}${result.stderr}`.trim();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe("the daemons' systemd units", { skip }, () => {
  it("renders every daemon of the catalogue as a unit systemd accepts, even under a state folder with spaces, $ and %", async () => {
    const paths = daemonPaths("/var/lib/coyote box/100% $HOME");
    for (const definition of DAEMONS) {
      const unit = renderSystemdUnit(definition, paths);
      assert.equal(unit.name, `coyote-${definition.name}.service`);
      assert.equal(await verify(unit.name, unit.text), "", `${unit.name}:\n${unit.text}`);
      assert.match(unit.text, new RegExp(`^ExecStart="${findDaemonProgram(definition.program) ?? ""}"`, "m"));
      assert.match(unit.text, /^Restart=on-failure$/m);
      assert.ok(unit.text.includes(`StandardOutput=append:/var/lib/coyote box/100%% $HOME/logs/${definition.name}.log`), unit.text);
    }
  });

  it("takes the command line, reload, stop and user from the catalogue entry", () => {
    const paths = daemonPaths("/var/lib/coyote");
    const knot = findDaemon("knot");
    const prosody = findDaemon("prosody");
    const postfix = findDaemon("postfix");
    assert.ok(knot && prosody && postfix);
    const knotUnit = renderSystemdUnit(knot, paths, { program: (name) => `/usr/sbin/${name}` }).text;
    assert.match(knotUnit, /^ExecStart="\/usr\/sbin\/knotd" "-c" "\/var\/lib\/coyote\/dns\/knot\/knot.conf"$/m);
    assert.match(knotUnit, /^ExecReload="\/usr\/sbin\/knotc" "-c" "\/var\/lib\/coyote\/dns\/knot\/knot.conf" "reload"$/m);
    assert.match(knotUnit, /^ConditionPathExists=\/var\/lib\/coyote\/dns\/knot\/knot.conf$/m);
    assert.doesNotMatch(knotUnit, /^User=/m, "knot's entry names no user");
    const prosodyUnit = renderSystemdUnit(prosody, paths, { program: (name) => `/usr/bin/${name}` }).text;
    assert.match(prosodyUnit, /^User=prosody$/m);
    assert.match(prosodyUnit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    const postfixUnit = renderSystemdUnit(postfix, paths, { program: (name) => `/usr/sbin/${name}` }).text;
    assert.match(postfixUnit, /^ExecStartPre="\/usr\/sbin\/postfix" "-c" "\/var\/lib\/coyote\/mail\/postfix\/conf" "check"$/m);
    assert.match(postfixUnit, /^KillSignal=SIGTERM$/m);
    assert.match(postfixUnit, /^TimeoutStopSec=10$/m);
  });

  it("refuses a value that would end a line, and escapes what systemd would expand", () => {
    assert.throws(() => systemdWord("a\nExecStartPost=/bin/sh"), /control character/);
    const knot = findDaemon("knot");
    assert.ok(knot);
    assert.throws(() => renderSystemdUnit(knot, daemonPaths("/var/lib/coyote\nUser=root"), { program: (name) => `/usr/sbin/${name}` }), /control character/);
    assert.equal(systemdWord('a "b" \\ $HOME 100%'), '"a \\"b\\" \\\\ $$HOME 100%%"');
  });

  it("says which program is missing instead of rendering a unit that cannot start", () => {
    const knot = findDaemon("knot");
    assert.ok(knot);
    assert.throws(() => renderSystemdUnit(knot, daemonPaths("/var/lib/coyote"), { program: () => undefined }), /knotd is not installed \(Debian packages knot, knot-dnsutils\)/);
  });
});
