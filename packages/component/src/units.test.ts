import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { skipWithout } from "@coyote/testing";
import { COMPONENT_NAMES, type ComponentName } from "./component.ts";
import { DAEMONS, findDaemonProgram } from "./daemons/catalogue.ts";
import { componentUnitName, renderBoxUnits, renderComponentUnit, type InstallLayout } from "./units.ts";

const programs = [...new Set([...DAEMONS.flatMap((d) => [d.program, ...d.tools]), "setfacl"])];
const missing = programs.filter((name) => findDaemonProgram(name) === undefined);
const skip = skipWithout(["systemd-analyze"], "Debian package systemd") || (missing.length > 0 && process.env.CI !== "true" ? `missing ${missing.join(", ")}` : false);

const layout: InstallLayout = { stateDir: "/var/lib/coyote", currentDir: "/opt/coyote/current", node: process.execPath };
const lowPorts = (name: ComponentName) => name === "snitch-proxy";
const everyGroup = () => true;
// The users the daemons' passages name, as Debian's packages make them.
const uidOf = (name: string) => ({ postfix: 101, dovecot: 102, opendkim: 103, prosody: 104 })[name];

/** Every unit written into one folder, as `coyote units` writes them, for systemd-analyze to read. */
let dir = "";
let units: { name: string; text: string }[] = [];

function analyze(args: string[]): { status: number | null; output: string } {
  const result = spawnSync("systemd-analyze", args, { encoding: "utf8", timeout: 60_000, cwd: dir });
  return { status: result.status, output: `${result.stdout}${result.stderr}`.trim() };
}

describe("the box's systemd units", { skip }, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "coyote-box-units-"));
    units = renderBoxUnits(layout, { components: [...COMPONENT_NAMES], daemons: DAEMONS, bindsLowPorts: lowPorts, groupExists: everyGroup, uidOf });
    for (const unit of units) await writeFile(join(dir, unit.name), unit.text);
  });
  after(async () => {
    if (dir !== "") await rm(dir, { recursive: true, force: true });
  });

  it("renders a target, one unit per component and a service and two path units per daemon, all accepted by systemd-analyze verify", () => {
    const names = units.map((u) => u.name);
    assert.ok(names.includes("coyote.target"));
    for (const name of COMPONENT_NAMES) assert.ok(names.includes(componentUnitName(name)), name);
    for (const daemon of DAEMONS) {
      for (const suffix of [".service", ".path", "-reload.path", "-reload.service"]) assert.ok(names.includes(`coyote-${daemon.name}${suffix}`), `${daemon.name}${suffix}`);
    }
    const result = analyze(["verify", "--man=no", ...units.map((u) => join(dir, u.name))]);
    assert.equal(result.output, "", result.output);
    assert.equal(result.status, 0);
  });

  it("runs every component as the coyote user; keeps CAP_NET_BIND_SERVICE only where ports below 1024 are bound, and capabilities only on the minion and the activator", () => {
    for (const name of COMPONENT_NAMES) {
      const text = units.find((u) => u.name === componentUnitName(name))?.text ?? "";
      assert.equal(/^AmbientCapabilities=.*CAP_NET_BIND_SERVICE/m.test(text), name === "snitch-proxy", `${name}:\n${text}`);
      if (name === "snitch-proxy") assert.match(text, /^CapabilityBoundingSet=CAP_NET_BIND_SERVICE$/m);
      if (name === "coyote-crm" || name === "coyote-listener") assert.match(text, /^CapabilityBoundingSet=$/m, name);
      assert.equal(/CAP_SYS_ADMIN/.test(text), name === "docker-activator", `${name}: only the activator makes namespaces`);
      assert.match(text, /^User=coyote$/m);
      assert.match(text, name === "docker-activator" ? /^RestrictNamespaces=net$/m : /^RestrictNamespaces=yes$/m, name);
      assert.match(text, /^ProtectSystem=strict$/m);
      assert.match(text, /^ReadWritePaths="\/var\/lib\/coyote"$/m);
      assert.match(text, /^NoNewPrivileges=yes$/m);
      assert.match(text, /^Restart=on-failure$/m);
    }
    const proxyWithoutLowPorts = renderComponentUnit("snitch-proxy", layout, { bindsLowPorts: () => false, groupExists: everyGroup }).text;
    assert.doesNotMatch(proxyWithoutLowPorts, /CAP_NET_BIND_SERVICE/, "a proxy on high ports keeps nothing");
    const minion = units.find((u) => u.name === "coyote-minion.service")?.text ?? "";
    assert.match(minion, /^AmbientCapabilities=CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER CAP_KILL CAP_SETUID CAP_SETGID$/m);
  });

  it("joins the docker group only where it exists, and runs the built JavaScript of the current release", () => {
    const activator = renderComponentUnit("docker-activator", layout, { bindsLowPorts: () => false, groupExists: (g) => g === "docker", nodeFlags: (n) => (n === "docker-activator" ? ["--optimize-for-size"] : []) }).text;
    assert.match(activator, /^SupplementaryGroups=docker$/m);
    const noDocker = renderComponentUnit("docker-activator", layout, { bindsLowPorts: () => false, groupExists: () => false }).text;
    assert.doesNotMatch(noDocker, /SupplementaryGroups/);
    assert.match(activator, new RegExp(`^ExecStart="${process.execPath}" "--optimize-for-size" "/opt/coyote/current/dist/component.mjs" "docker-activator"$`, "m"));
    assert.match(activator, /^Environment="COYOTE_STATE=\/var\/lib\/coyote" "COYOTE_HOME=\/opt\/coyote\/current" "NODE_ENV=production"$/m);
  });

  it("gives each daemon its passage through the state folder before it starts, with full privileges", () => {
    const postfix = units.find((u) => u.name === "coyote-postfix.service")?.text ?? "";
    assert.match(postfix, /^ExecStartPre=\+"\/usr\/bin\/setfacl" "-m" "u:101:--x,u:5000:--x" "--" "\/var\/lib\/coyote"$/m);
    const knot = units.find((u) => u.name === "coyote-knot.service")?.text ?? "";
    assert.doesNotMatch(knot, /setfacl/, "knot names no passage");
    assert.throws(() => renderBoxUnits(layout, { components: [], daemons: DAEMONS, bindsLowPorts: lowPorts, groupExists: everyGroup, uidOf: () => undefined }), /the system user opendkim does not exist/);
  });

  it("starts a daemon once its configuration is written and reloads it when a watched file changes", () => {
    const start = units.find((u) => u.name === "coyote-postfix.path")?.text ?? "";
    assert.match(start, /^PathExists=\/var\/lib\/coyote\/mail\/postfix\/conf\/main\.cf$/m);
    assert.match(start, /^Unit=coyote-postfix\.service$/m);
    const reload = units.find((u) => u.name === "coyote-postfix-reload.path")?.text ?? "";
    assert.match(reload, /^PathChanged=\/var\/lib\/coyote\/mail\/postfix\/conf$/m);
    assert.match(reload, /^PathChanged=\/var\/lib\/coyote\/proxy\/certs$/m);
    assert.match(units.find((u) => u.name === "coyote-postfix-reload.service")?.text ?? "", /^ExecStart=\/bin\/systemctl --no-block try-reload-or-restart coyote-postfix\.service$/m);
    // A burst of written files must not trip systemd's start limit, which would end reloads for good.
    assert.match(units.find((u) => u.name === "coyote-postfix-reload.service")?.text ?? "", /^StartLimitIntervalSec=0$/m);
  });

  it("records each unit's exposure as systemd-analyze security rates it: every coyote-user component is rated below 5 (MEDIUM or better)", () => {
    const rated = new Map<string, number>();
    for (const unit of units.filter((u) => u.name.endsWith(".service") && !u.name.endsWith("-reload.service"))) {
      const result = analyze(["security", "--offline=true", "--no-pager", join(dir, unit.name)]);
      const match = /Overall exposure level for \S+: ([0-9.]+)/.exec(result.output);
      assert.ok(match?.[1] !== undefined, result.output);
      rated.set(unit.name, Number(match[1]));
    }
    // Printed so a run shows the figures docs/PRODUCTION.md records.
    console.log(`exposure: ${[...rated].map(([name, level]) => `${name} ${level.toFixed(1)}`).join(", ")}`);
    for (const name of COMPONENT_NAMES.filter((n) => n !== "minion")) assert.ok((rated.get(componentUnitName(name)) ?? 10) < 5, `${name}: ${String(rated.get(componentUnitName(name)))}`);
  });
});
