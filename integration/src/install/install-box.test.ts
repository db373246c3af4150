// install.sh on a fresh Debian 12 machine (the installer harness), through the box's whole life:
// the install makes the user, the state folder, the release and units systemd accepts; the machine
// booted from it runs the box under systemd and answers the activation page over HTTPS on its
// hostname, where an admin activates it in a real browser; install.sh run again changes nothing;
// run from a newer checkout it upgrades the box, which stays activated; a release whose panel
// cannot start is rolled back by itself; --uninstall keeps the data and --purge does not.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Browser } from "playwright-core";
import { IN_CI, skipWithout } from "@coyote/testing";
import { activationOf, getHttp, marker, pageOf, servedKeyPin } from "./box-http.ts";
import { activate, browserFor, CHROMIUM, signIn } from "./browser.ts";
import { CHECKOUT_IN_MACHINE, installerHarnessForFile, type InstallResult } from "./harness.ts";
import { BROKEN_CHECKOUT, componentPids, installFingerprint, makeNewerCheckouts, NEXT_CHECKOUT, releaseLink } from "./lifecycle.ts";
import type { Machine } from "./machine.ts";

const REPO = new URL("../../..", import.meta.url).pathname;
const HOST = "box.coyote.test";
const FLAGS = `--private --no-docker --hostname ${HOST}`;

const notRoot = process.getuid?.() !== 0 && !IN_CI ? "SKIPPED: the installer harness runs as root (debootstrap, a Docker engine, network namespaces)" : false;
const skip = notRoot !== false ? notRoot : skipWithout(["debootstrap", "dockerd", "containerd", "runc", "docker", "nsenter", "ip", "busybox", CHROMIUM], "Debian packages debootstrap, docker.io, iproute2, busybox-static and chromium");

/** What the install phase runs: install.sh, then what the test reads back, each after a marker. */
const INSTALL = `set -u
bash ${CHECKOUT_IN_MACHINE}/install.sh ${FLAGS} --no-start 2>&1
echo "== exit $?"
echo "== user $(id -u coyote) $(id -gn coyote)"
echo "== state $(stat -c '%U %a' /var/lib/coyote)"
echo "== current $(readlink /opt/coyote/current)"
echo "== verify"; systemd-analyze verify --man=no /etc/systemd/system/coyote*.service /etc/systemd/system/coyote*.path /etc/systemd/system/coyote.target 2>&1; echo "== verified $?"
echo "== enabled $(systemctl is-enabled coyote.target coyote-minion.service coyote-snitch-proxy.service coyote-crm.service | tr '\\n' ' ')"
`;

/** Runs install.sh from `checkout` in the booted machine; its output with "== exit N" and "== seconds N" at the end. */
async function runInstaller(machine: Machine, checkout: string, args = ""): Promise<{ output: string; exit: string | undefined; seconds: number }> {
  const output = await machine.exec(["bash", "-c", `start=$SECONDS; bash ${checkout}/install.sh ${args} 2>&1; echo "== exit $?"; echo "== seconds $((SECONDS - start))"`], { timeoutMs: 25 * 60_000 });
  return { output, exit: marker(output, "exit"), seconds: Number(marker(output, "seconds")) };
}

describe("install.sh on a fresh Debian 12 machine, through the box's life", { skip }, () => {
  const harness = installerHarnessForFile("install-box", skip);
  let installed: InstallResult | undefined;
  let box: Machine | undefined;
  let ca = "";
  let browser: Browser | undefined;
  const booted = (): Machine => {
    assert.ok(box, "the machine booted");
    return box;
  };

  it("installs the box: the coyote user, its state folder, the built release, and units systemd accepts, enabled", { timeout: 30 * 60_000 }, async () => {
    installed = await harness().install({ command: ["bash", "-c", INSTALL], checkout: REPO, hostname: HOST, timeoutMs: 30 * 60_000 });
    const { output } = installed;
    assert.equal(marker(output, "exit"), "0", output.slice(-4000));
    assert.match(output, /installed and enabled; nothing started \(--no-start\)/);
    assert.match(marker(output, "user") ?? "", /^\d+ coyote$/);
    assert.equal(marker(output, "state"), "coyote 700");
    assert.match(marker(output, "current") ?? "", /^releases\/0\.\d+\.\d+-[0-9a-f]{12}$/);
    assert.equal(marker(output, "verified"), "0", `systemd-analyze verify: ${output.slice(output.indexOf("== verify"), output.indexOf("== verified"))}`);
    assert.equal(marker(output, "enabled"), "enabled enabled enabled enabled");
  });

  it("boots into the box, which answers the activation page over HTTPS on its hostname; an admin activates it with the printed token in a real browser", { timeout: 10 * 60_000 }, async () => {
    assert.ok(installed, "the install phase ran");
    box = await harness().run({ image: installed.image, hostname: HOST });
    const machine = box;
    // What the admin reads on the console: the URL, the one-time token, the CA's fingerprint.
    const printed = await activationOf(machine);
    assert.ok(printed !== undefined, "coyote activation answers on the box");
    assert.equal(printed.url, `https://${HOST}/`);
    assert.match(printed.token ?? "", /^[0-9A-Z]{4}(-[0-9A-Z]{4}){4}$/);
    assert.match(printed.caFingerprint ?? "", /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    ca = await machine.exec(["cat", "/var/lib/coyote/proxy/ca/ca.pem"]);
    const page = await pageOf(machine, HOST, "/activate", ca);
    assert.equal(page?.status, 200, `https://${HOST}/activate at ${machine.address}: ${JSON.stringify(page ?? null).slice(0, 500)}`);
    assert.match(page.body, /Activate this box/);
    const plain = await getHttp(machine.address, HOST, "/activate");
    assert.equal(plain.status, 308);
    assert.equal(plain.location, `https://${HOST}/activate`);
    const units = await machine.exec(["systemctl", "is-active", "coyote-minion.service", "coyote-docker-activator.service", "coyote-snitch-proxy.service", "coyote-crm.service"]).catch((e: unknown) => String(e));
    assert.deepEqual(units.trim().split("\n"), ["active", "active", "active", "active"]);
    // Node names its main thread "MainThread": the components are found by their command line.
    const users = await machine.exec(["bash", "-c", "ps -eo user=,args= | grep '[d]ist/component.mjs' | awk '{ print $1 }' | sort | uniq -c"]);
    assert.match(users.trim(), /^4 coyote$/, `every component runs as the coyote user: ${users}`);
    // The browser accepts only the key of the certificate Node verified against the box's CA.
    browser = await browserFor(HOST, machine.address, await servedKeyPin(machine.address, HOST, ca));
    const steps = await activate(await browser.newPage(), HOST, printed.token ?? "");
    assert.deepEqual(steps.slice(0, 2), ["Activate this box", "Alarms"], steps.join(" → "));
    assert.equal(steps.at(-1), "Overview", `the wizard ends on the admin's overview: ${steps.join(" → ")}`);
    assert.equal((await activationOf(machine))?.token, null, "the one-time token is spent");
  });

  it("install.sh run again changes nothing and is quick: same files, same release, the components not restarted", { timeout: 10 * 60_000 }, async () => {
    const machine = booted();
    // The machine booted on another network than the one it was installed on: the first run here
    // takes its new address into the server spec (a private box's address follows the machine).
    const moved = await runInstaller(machine, CHECKOUT_IN_MACHINE, FLAGS);
    assert.equal(moved.exit, "0", moved.output.slice(-4000));
    assert.equal(await machine.exec(["bash", "-c", `grep -c '"publicIPv4": "${machine.address}"' /var/lib/coyote/specs/server.json`]).then((n) => n.trim()), "1", "the spec has the machine's new address");
    await machine.exec(["bash", "-c", "touch /run/coyote-test.stamp && sleep 1.1"]);
    const before = await installFingerprint(machine, "/run/coyote-test.stamp");
    const pids = await componentPids(machine);
    const again = await runInstaller(machine, CHECKOUT_IN_MACHINE, FLAGS);
    assert.equal(again.exit, "0", again.output.slice(-4000));
    assert.match(again.output, /is already the current one; nothing to do/);
    const after = await installFingerprint(machine, "/run/coyote-test.stamp");
    assert.equal(after.sums, before.sums);
    assert.equal(after.changed, "", `files install.sh wrote again: ${after.changed}`);
    assert.deepEqual(await componentPids(machine), pids, "no component was restarted");
    assert.ok(again.seconds < 120, `a second run took ${String(again.seconds)} s`);
    process.stderr.write(`install.sh run again on an installed box: ${String(again.seconds)} s\n`);
  });

  it("install.sh from a newer checkout upgrades the box: a new release, every component restarted on it, the state and the activated box kept", { timeout: 30 * 60_000 }, async () => {
    const machine = booted();
    const old = await releaseLink(machine, "current");
    const pids = await componentPids(machine);
    await makeNewerCheckouts(machine);
    const upgrade = await runInstaller(machine, NEXT_CHECKOUT);
    assert.equal(upgrade.exit, "0", upgrade.output.slice(-6000));
    const current = await releaseLink(machine, "current");
    assert.notEqual(current, old);
    assert.match(current, /^releases\/0\.\d+\.\d+-[0-9a-f]{12}$/);
    assert.equal(await releaseLink(machine, "previous"), old);
    const restarted = await componentPids(machine);
    for (const [i, pid] of restarted.entries()) assert.ok(pid > 0 && pid !== pids[i], `component ${String(i)} restarted: ${String(pids[i])} then ${String(pid)}`);
    assert.equal((await activationOf(machine))?.token, null, "still activated: no new token");
    assert.ok(browser);
    assert.notEqual(await signIn(await browser.newPage(), HOST), "Sign in", "the admin signs in on the upgraded box");
    process.stderr.write(`install.sh upgrade to a newer checkout: ${String(upgrade.seconds)} s\n`);
  });

  it("a new release whose panel cannot start is rolled back by itself: the box keeps running the release before it", { timeout: 30 * 60_000 }, async () => {
    const machine = booted();
    const good = await releaseLink(machine, "current");
    const broken = await runInstaller(machine, BROKEN_CHECKOUT);
    assert.notEqual(broken.exit, "0", broken.output.slice(-4000));
    assert.match(broken.output, /coyote-crm did not come up healthy on release /);
    assert.match(broken.output, new RegExp(`rolled back to release ${good.replace("releases/", "").replace(/\./g, "\\.")}`));
    assert.equal(await releaseLink(machine, "current"), good);
    const units = await machine.exec(["systemctl", "is-active", "coyote-minion.service", "coyote-docker-activator.service", "coyote-snitch-proxy.service", "coyote-crm.service"]).catch((e: unknown) => String(e));
    assert.deepEqual(units.trim().split("\n"), ["active", "active", "active", "active"]);
    const page = await pageOf(machine, HOST, "/login", ca, 60);
    assert.equal(page?.status, 200, "the panel answers on the release rolled back to");
    assert.ok(browser);
    assert.notEqual(await signIn(await browser.newPage(), HOST), "Sign in");
  });

  it("--uninstall removes the appliance and its units and keeps the data; --purge removes the data and the user", { timeout: 10 * 60_000 }, async () => {
    const machine = booted();
    await browser?.close();
    browser = undefined;
    const uninstall = await runInstaller(machine, CHECKOUT_IN_MACHINE, "--uninstall");
    assert.equal(uninstall.exit, "0", uninstall.output);
    const left = await machine.exec(["bash", "-c", `ls -d /opt/coyote /etc/coyote /usr/local/bin/coyote /etc/systemd/system/coyote* 2>/dev/null; echo "== data $(ls /var/lib/coyote/specs | tr '\\n' ' ')"; echo "== user $(id -un coyote)"; echo "== running $(pgrep -c -u coyote || true)"`]);
    assert.ok(left.startsWith("== data "), `nothing of the appliance left: ${left}`);
    assert.match(marker(left, "data") ?? "", /\S/, "the specs are kept");
    assert.equal(marker(left, "user"), "coyote");
    assert.equal(marker(left, "running"), "0", "nothing of the box runs");
    const purge = await runInstaller(machine, CHECKOUT_IN_MACHINE, "--purge");
    assert.equal(purge.exit, "0", purge.output);
    const gone = await machine.exec(["bash", "-c", `echo "== state $(ls -d /var/lib/coyote 2>/dev/null)"; echo "== user $(id -un coyote 2>/dev/null)"`]);
    assert.equal(marker(gone, "state"), "");
    assert.equal(marker(gone, "user"), "");
  });
});
