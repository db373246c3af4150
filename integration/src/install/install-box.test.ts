// install.sh on a fresh Debian 12 machine (the installer harness): the install makes the user,
// the state folder, the release and units systemd accepts; the machine booted from it runs the box
// under systemd and answers the activation page over HTTPS on its hostname, with the token
// `coyote activation` prints and a certificate of the box's own CA.
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { request } from "node:https";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { IN_CI, skipWithout } from "@coyote/testing";
import { CHECKOUT_IN_MACHINE, installerHarnessForFile, type InstallResult } from "./harness.ts";
import type { Machine } from "./machine.ts";

const REPO = new URL("../../..", import.meta.url).pathname;
const HOST = "box.coyote.test";

const notRoot = process.getuid?.() !== 0 && !IN_CI ? "SKIPPED: the installer harness runs as root (debootstrap, a Docker engine, network namespaces)" : false;
const skip = notRoot !== false ? notRoot : skipWithout(["debootstrap", "dockerd", "containerd", "runc", "docker", "nsenter", "ip", "busybox"], "Debian packages debootstrap, docker.io, iproute2 and busybox-static");

/** What the install phase runs: install.sh, then what the test reads back, each after a marker. */
const INSTALL = `set -u
bash ${CHECKOUT_IN_MACHINE}/install.sh --private --no-docker --no-start --hostname ${HOST} 2>&1
echo "== exit $?"
echo "== user $(id -u coyote) $(id -gn coyote)"
echo "== state $(stat -c '%U %a' /var/lib/coyote)"
echo "== current $(readlink /opt/coyote/current)"
echo "== verify"; systemd-analyze verify --man=no /etc/systemd/system/coyote*.service /etc/systemd/system/coyote*.path /etc/systemd/system/coyote.target 2>&1; echo "== verified $?"
echo "== enabled $(systemctl is-enabled coyote.target coyote-minion.service coyote-snitch-proxy.service coyote-crm.service | tr '\\n' ' ')"
`;

/** The text after `== <name> ` in the install phase's output. */
function marker(output: string, name: string): string | undefined {
  return new RegExp(`^== ${name} (.*)$`, "m").exec(output)?.[1]?.trim();
}

/** A GET of `path` from the box, over HTTPS with the box's hostname as SNI and Host, trusting only `ca`. */
function getHttps(address: string, path: string, ca: string): Promise<{ status: number; location: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port: 443, path, servername: HOST, headers: { host: HOST }, ca, timeout: 10_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (chunk: string) => {
        if (body.length < 200_000) body += chunk;
      });
      res.on("end", () => {
        resolve({ status: res.statusCode ?? 0, location: res.headers.location, body });
      });
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end();
  });
}

function getHttp(address: string, path: string): Promise<{ status: number; location: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: address, port: 80, path, headers: { host: HOST }, timeout: 10_000 }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, location: res.headers.location });
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end();
  });
}

describe("install.sh on a fresh Debian 12 machine", { skip }, () => {
  const harness = installerHarnessForFile("install-box", skip);
  let installed: InstallResult | undefined;
  let box: Machine | undefined;

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

  it("boots into the box, which answers the activation page over HTTPS on its hostname with the printed token", { timeout: 10 * 60_000 }, async () => {
    assert.ok(installed, "the install phase ran");
    box = await harness().run({ image: installed.image, hostname: HOST });
    const machine = box;
    // What the admin reads on the console: the URL, the one-time token, the CA's fingerprint.
    let printed: { url: string; token: string | null; caFingerprint: string | null } | undefined;
    for (let i = 0; i < 120 && printed?.caFingerprint == null; i++) {
      const text = await machine.exec(["coyote", "activation", "--json"], { timeoutMs: 30_000 }).catch(() => "");
      if (text.trim().startsWith("{")) printed = JSON.parse(text) as typeof printed;
      if (printed?.caFingerprint == null) await sleep(1000);
    }
    assert.ok(printed !== undefined, "coyote activation answers on the box");
    assert.equal(printed.url, `https://${HOST}/`);
    assert.match(printed.token ?? "", /^[0-9A-Z]{4}(-[0-9A-Z]{4}){4}$/);
    assert.match(printed.caFingerprint ?? "", /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    const ca = await machine.exec(["cat", "/var/lib/coyote/proxy/ca/ca.pem"]);
    let page: Awaited<ReturnType<typeof getHttps>> | undefined;
    for (let i = 0; i < 120 && page?.status !== 200; i++) {
      page = await getHttps(machine.address, "/activate", ca).catch(() => undefined);
      if (page?.status !== 200) await sleep(1000);
    }
    assert.equal(page?.status, 200, `https://${HOST}/activate at ${machine.address}: ${JSON.stringify(page ?? null).slice(0, 500)}`);
    assert.match(page.body, /Activate this box/);
    const plain = await getHttp(machine.address, "/activate");
    assert.equal(plain.status, 308);
    assert.equal(plain.location, `https://${HOST}/activate`);
    const units = await machine.exec(["systemctl", "is-active", "coyote-minion.service", "coyote-docker-activator.service", "coyote-snitch-proxy.service", "coyote-crm.service"]).catch((e: unknown) => String(e));
    assert.deepEqual(units.trim().split("\n"), ["active", "active", "active", "active"]);
    // Node names its main thread "MainThread": the components are found by their command line.
    const users = await machine.exec(["bash", "-c", "ps -eo user=,args= | grep '[d]ist/component.mjs' | awk '{ print $1 }' | sort | uniq -c"]);
    assert.match(users.trim(), /^4 coyote$/, `every component runs as the coyote user: ${users}`);
  });
});
