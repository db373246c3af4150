// The installer's test harness proves itself: a package installed from Debian's archive in the
// install phase, a unit enabled there running under systemd in the run phase, the machine's HTTP
// servers answering the host at its address, and no way out of the machine but the allowlist.
import assert from "node:assert/strict";
import { lookup } from "node:dns/promises";
import { before, describe, it } from "node:test";
import { IN_CI, skipWithout } from "@coyote/testing";
import { CHECKOUT_IN_MACHINE, installerHarnessForFile, type InstallResult } from "./harness.ts";
import type { Machine } from "./machine.ts";
import { startOutside } from "./outside.ts";

const REPO = new URL("../../..", import.meta.url).pathname;

const notRoot = process.getuid?.() !== 0 && !IN_CI ? "SKIPPED: the installer harness runs as root (debootstrap, a Docker engine, network namespaces)" : false;
const skip = notRoot !== false ? notRoot : skipWithout(["debootstrap", "dockerd", "containerd", "runc", "docker", "nsenter", "ip", "busybox"], "Debian packages debootstrap, docker.io, iproute2 and busybox-static");

/** The probe's unit: what the box's units are, a service enabled at install, run as its `User=`. */
const PROBE_UNIT = `[Unit]
Description=Coyote harness probe: a web server enabled at install time
After=network.target

[Service]
User=nobody
ExecStartPre=/bin/sh -c 'test -r /srv/probe/index.html'
ExecStart=/bin/busybox httpd -f -p 8080 -h /srv/probe

[Install]
WantedBy=multi-user.target
`;

/** The install phase's script: a package from the archive, a unit enabled, the way out tried. */
function installScript(debianAddress: string): string {
  return `set -eu
test -f ${CHECKOUT_IN_MACHINE}/install.sh
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends hello busybox >/dev/null
mkdir -p /srv/probe
echo "probe answers from $(hostname)" > /srv/probe/index.html
cat > /etc/systemd/system/coyote-probe.service <<'UNIT'
${PROBE_UNIT}UNIT
systemctl enable coyote-probe.service 2>/dev/null
echo "hello: $(hello)"
echo "direct: $(curl --noproxy '*' -s -m 5 -o /dev/null http://${debianAddress}/; echo $?)"
echo "refused: $(curl -sS -m 10 -o /dev/null -w '%{http_code}' http://example.com/ || true)"
`;
}

/** curl's exit code when it is told no route leads to the address: nothing was sent. */
const NO_ROUTE = "7";

/** `curl` from inside a machine straight to an address, past any proxy: its exit code (0: reached). */
async function direct(machine: Machine, address: string): Promise<string> {
  return machine.exec(["sh", "-c", `curl --noproxy '*' -s -m 3 -o /dev/null http://${address}/; echo $?`]).then((s) => s.trim());
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const answer = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: answer.status, body: (await answer.text()).slice(0, 10_000) };
}

describe("the installer harness: a fresh Debian 12 machine", { skip }, () => {
  const harness = installerHarnessForFile("install-harness", skip);
  let debianAddress = "";
  let installed: InstallResult | undefined;
  let box: Machine | undefined;

  before(async () => {
    if (skip !== false) return;
    debianAddress = (await lookup("deb.debian.org", { family: 4 })).address;
  });

  it("installs a package from Debian's archive through the allowlist, and reaches nothing else", { timeout: 15 * 60_000 }, async () => {
    installed = await harness().install({ command: ["bash", "-c", installScript(debianAddress)], checkout: REPO, hostname: "box.harness.test" });
    assert.match(installed.output, /^hello: Hello, world!$/m);
    assert.match(installed.output, new RegExp(`^direct: ${NO_ROUTE}$`, "m"), "a program that ignores the proxy has no route out");
    assert.match(installed.output, /^refused: 403$/m, "the proxy refuses a host outside the allowlist");
    const through = installed.proxied.filter((r) => r.allowed).map((r) => r.target.replace(/:\d+$/, ""));
    assert.ok(through.includes("deb.debian.org"), `apt went through the proxy: ${JSON.stringify(installed.proxied)}`);
    assert.deepEqual(installed.proxied.filter((r) => !r.allowed).map((r) => r.target), ["example.com:80"]);
  });

  it("boots the committed machine under systemd on its own network, its servers answering the host at its address", { timeout: 5 * 60_000 }, async () => {
    assert.ok(installed, "the install phase did not finish");
    box = await harness().run({ image: installed.image, hostname: "box.harness.test" });
    assert.equal(box.init, "systemd");
    assert.equal((await box.exec(["systemctl", "is-active", "coyote-probe.service"])).trim(), "active");
    assert.equal((await box.exec(["ps", "-o", "user=", "-C", "busybox"])).trim(), "nobody");
    assert.deepEqual(await get(`http://${box.address}:8080/`), { status: 200, body: "probe answers from box.harness.test\n" });
    // A server started by hand on a port below 1024, as the box's proxy and mail servers listen.
    await box.exec(["sh", "-c", "mkdir -p /srv/www && echo 'port 80 answers' > /srv/www/index.html && busybox httpd -p 80 -h /srv/www"]);
    assert.deepEqual(await get(`http://${box.address}/`), { status: 200, body: "port 80 answers\n" });
    assert.equal((await box.exec(["hello"])).trim(), "Hello, world!");
  });

  it("gives the running machine no way out: no default route, no proxy, the archive unreachable", async () => {
    assert.ok(box, "the run phase did not boot");
    assert.doesNotMatch(await box.exec(["ip", "route"]), /^default/m);
    assert.equal(await direct(box, debianAddress), NO_ROUTE);
    assert.doesNotMatch(await box.exec(["env"]), /proxy/i);
  });

  it("forwards nothing from the machine's network, even when the machine makes itself a default route", { timeout: 60_000 }, async () => {
    assert.ok(box, "the run phase did not boot");
    const outside = await startOutside();
    try {
      assert.equal((await get(`http://${outside.address}/`)).body, "outside\n", "the host itself reaches the outside");
      await box.exec(["ip", "route", "add", "default", "via", box.network.gateway]);
      assert.notEqual(await direct(box, outside.address), "0", "the host routed the machine's packets beyond its network");
    } finally {
      await box.exec(["ip", "route", "del", "default"]).catch(() => undefined);
      await outside.stop();
    }
  });
});
