// The server image (image/build.sh) in the installer harness: built from the cached Debian root
// with install.sh --no-start through the allowlist proxy, exported as a tarball, imported as an
// image and converted to a qcow2 disk; then booted with systemd, given its first boot as cloud-init
// would run the rendered user-data, and asked for the activation page over HTTPS on its hostname.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { IN_CI, skipWithout } from "@coyote/testing";
import { getHttp, getHttps } from "./box-http.ts";
import { createNetwork, runProgram } from "./engine.ts";
import { hostAuthorityFiles, installerHarnessForFile } from "./harness.ts";
import type { Machine } from "./machine.ts";
import { startAllowlistProxy } from "./proxy.ts";

const REPO = new URL("../../..", import.meta.url).pathname;
const BUILD = join(REPO, "image", "build.sh");
const RENDER = join(REPO, "image", "render-user-data.sh");
/** The hostname the image is built with, and the one its first boot gives it. */
const BUILT_AS = "build.coyote.test";
const HOST = "box.coyote.test";
const JOIN_TOKEN = "join.Token_1-2";

const notRoot = process.getuid?.() !== 0 && !IN_CI ? "SKIPPED: the image is built as root (a Docker engine, mke2fs -d of a root-owned tree)" : false;
const skip = notRoot !== false ? notRoot : skipWithout(
  ["debootstrap", "dockerd", "containerd", "runc", "docker", "nsenter", "ip", "busybox", "qemu-img", "mke2fs", "sfdisk", "grub-mkimage"],
  "Debian packages debootstrap, docker.io, iproute2, busybox-static, qemu-utils, e2fsprogs, fdisk and grub-pc-bin",
);

/**
 * The commands of a cloud-config's `runcmd`, each a YAML flow sequence on one line of plain,
 * single-quoted and double-quoted scalars (what the template writes).
 */
function runcmd(userData: string): string[][] {
  const lines = userData.split("\n");
  const start = lines.indexOf("runcmd:");
  assert.ok(start >= 0, "the user-data has a runcmd");
  const commands: string[][] = [];
  for (const line of lines.slice(start + 1)) {
    if (/^\s*#/.test(line) || line.trim() === "") continue;
    const match = /^ {2}- \[(.*)\]$/.exec(line);
    if (match === null) break;
    commands.push(flowItems(match[1] ?? ""));
  }
  return commands;
}

function flowItems(text: string): string[] {
  const items: string[] = [];
  let rest = text.trim();
  while (rest !== "") {
    let item: string;
    if (rest.startsWith("'")) {
      const end = /^'((?:[^']|'')*)'/.exec(rest);
      assert.ok(end, `an unterminated single-quoted item in ${text}`);
      item = (end[1] ?? "").replaceAll("''", "'");
      rest = rest.slice(end[0].length);
    } else if (rest.startsWith('"')) {
      const end = /^"((?:[^"\\]|\\.)*)"/.exec(rest);
      assert.ok(end, `an unterminated double-quoted item in ${text}`);
      item = JSON.parse(end[0]) as string;
      rest = rest.slice(end[0].length);
    } else {
      const end = rest.indexOf(",");
      item = (end < 0 ? rest : rest.slice(0, end)).trim();
      rest = end < 0 ? "" : rest.slice(end);
    }
    items.push(item);
    rest = rest.trim().replace(/^,\s*/, "");
  }
  return items;
}

describe("image/render-user-data.sh", () => {
  it("renders the cloud-config with the hostname and the join token, and refuses what is not one", async () => {
    const text = await runProgram("bash", [RENDER, "Box.Coyote.Test.", JOIN_TOKEN]);
    assert.match(text, /^#cloud-config\n/);
    assert.match(text, /^hostname: box$/m);
    assert.match(text, /^fqdn: box\.coyote\.test$/m);
    assert.doesNotMatch(text, /@[A-Z_]+@/);
    const commands = runcmd(text);
    assert.ok(commands.some((c) => c.includes("setup") && c.includes("--no-units") && c.at(-1) === HOST), JSON.stringify(commands));
    assert.ok(commands.some((c) => c.at(-1) === JOIN_TOKEN));
    assert.deepEqual(commands.at(-1), ["systemctl", "enable", "--now", "--no-block", "coyote.target"]);
    for (const [args, error] of [
      [["box"], /not a fully qualified host name/],
      [["box.example.org;reboot"], /not a fully qualified host name/],
      [["-x.example.org"], /not a fully qualified host name/],
      [["1.2.3.4"], /last label is a number/],
      [[HOST, "a b"], /join token/],
      [[HOST, "a'b"], /join token/],
      [[HOST, ""], /join token/],
      [[], /usage/],
    ] as const) {
      await assert.rejects(runProgram("bash", [RENDER, ...args]), error, `render-user-data.sh ${args.join(" ")}`);
    }
  });
});

describe("the server image", { skip }, () => {
  const harness = installerHarnessForFile("image", skip);
  let out: string | undefined;
  let release: string | undefined;
  let box: Machine | undefined;
  after(async () => {
    if (out !== undefined) await rm(out, { recursive: true, force: true });
  });

  it("builds: the tarball of the release, the image coyote/server:<release> and a bootable qcow2 disk", { timeout: 45 * 60_000 }, async () => {
    const h = harness();
    const network = await createNetwork(h.engine, "coyote-image-build");
    const proxy = await startAllowlistProxy(network.gateway);
    out = await mkdtemp(join(tmpdir(), "coyote-image-"));
    try {
      const authorities = (await hostAuthorityFiles()).flatMap((file) => ["--ca-file", file]);
      const printed = await runProgram("bash", [
        BUILD, "--root-tarball", h.root.tarball, "--out", out, "--network", network.name, "--proxy", proxy.url, ...authorities, "--qcow2",
        "--", "--private", "--no-docker", "--hostname", BUILT_AS,
      ], { timeoutMs: 40 * 60_000, env: { ...process.env, DOCKER_HOST: `unix://${h.engine.dockerd.socketPath}` } });
      release = printed.trim().split("\n").at(-1);
    } finally {
      await proxy.close();
    }
    assert.match(release ?? "", /^0\.\d+\.\d+-[0-9a-f]{12}$/);
    for (const origin of ["deb.debian.org", "registry.npmjs.org"]) {
      assert.ok(proxy.records.some((r) => r.allowed && r.target.includes(origin)), `the install reached ${origin} through the proxy`);
    }
    const tarball = join(out, `coyote-${release ?? ""}.tar`);
    const disk = join(out, `coyote-${release ?? ""}.qcow2`);
    const info = async (file: string) => JSON.parse(await runProgram("qemu-img", ["info", "--output=json", file])) as { format: string; "virtual-size": number };
    assert.equal((await info(tarball)).format, "raw");
    const diskInfo = await info(disk);
    assert.equal(diskInfo.format, "qcow2");
    assert.ok(diskInfo["virtual-size"] > (await stat(tarball)).size, `the disk (${String(diskInfo["virtual-size"])} bytes) holds the tree`);
    // The disk's first sector: GRUB's boot code and an MBR with a bootable Linux partition at 1 MiB.
    const mbrFile = join(out, "mbr.raw");
    await runProgram("qemu-img", ["dd", "-f", "qcow2", "-O", "raw", "bs=512", "count=1", `if=${disk}`, `of=${mbrFile}`]);
    const mbr = await readFile(mbrFile);
    assert.equal(mbr.readUInt16LE(510), 0xaa55, "a boot signature");
    assert.ok(mbr.subarray(0, 440).includes("GRUB"), "GRUB's boot code");
    assert.equal(mbr[446], 0x80, "the first partition is bootable");
    assert.equal(mbr[446 + 4], 0x83, "the first partition is Linux's");
    assert.equal(mbr.readUInt32LE(446 + 8), 2048, "the first partition starts at 1 MiB");
    // What is each machine's own and the build's only is not in the tarball.
    const leftovers = await runProgram("bash", ["-c", 'tar -tf "$1" | grep -E "(^|/)(etc/ssh/ssh_host_|usr/local/share/ca-certificates/coyote-build-|var/lib/coyote/secrets/activation-token|root/coyote/)" || true', "bash", tarball], { timeoutMs: 300_000 });
    assert.equal(leftovers.trim(), "", "no SSH host keys, build authorities, activation token or checkout copy in the image");
    const images = await h.engine.docker(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert.match(images, new RegExp(`^coyote/server:${(release ?? "").replaceAll(".", "\\.")}$`, "m"));
    const containers = await h.engine.docker(["ps", "--all", "--format", "{{.Names}}"]);
    assert.doesNotMatch(containers, /coyote-image-build/, "the build container is removed");
  });

  it("boots stopped, and its first boot (the rendered user-data's commands) makes it the box on its hostname", { timeout: 15 * 60_000 }, async () => {
    assert.ok(release !== undefined, "the image was built");
    box = await harness().run({ image: `coyote/server:${release}`, hostname: HOST });
    const machine = box;
    // Nothing of the box runs before its first boot, and no activation token came with the image.
    // systemctl says "disabled" and "inactive" with a non-zero exit.
    assert.equal((await machine.exec(["bash", "-c", "systemctl is-enabled coyote.target || true"])).trim(), "disabled");
    assert.equal((await machine.exec(["bash", "-c", "systemctl is-active coyote-crm.service coyote-minion.service || true"])).trim(), "inactive\ninactive");
    assert.equal((await machine.exec(["bash", "-c", "test -e /var/lib/coyote/secrets/activation-token && echo present || echo absent"])).trim(), "absent");
    // The SSH host keys the image left out were made by this machine when sshd started.
    assert.equal((await machine.exec(["bash", "-c", "systemctl is-active ssh.service || true"])).trim(), "active");

    const userData = await runProgram("bash", [RENDER, HOST, JOIN_TOKEN]);
    for (const command of runcmd(userData)) await machine.exec(command, { timeoutMs: 120_000 });
    assert.equal((await machine.exec(["stat", "-c", "%U %a", "/var/lib/coyote/secrets/join-token"])).trim(), "coyote 600");
    assert.equal((await machine.exec(["cat", "/var/lib/coyote/secrets/join-token"])).trim(), JOIN_TOKEN);
    assert.equal((await machine.exec(["systemctl", "is-enabled", "coyote.target"])).trim(), "enabled");

    let printed: { url: string; token: string | null; caFingerprint: string | null } | undefined;
    for (let i = 0; i < 180 && printed?.caFingerprint == null; i++) {
      const text = await machine.exec(["coyote", "activation", "--json"], { timeoutMs: 30_000 }).catch(() => "");
      if (text.trim().startsWith("{")) printed = JSON.parse(text) as typeof printed;
      if (printed?.caFingerprint == null) await sleep(1000);
    }
    assert.ok(printed !== undefined, "coyote activation answers on the box");
    assert.equal(printed.url, `https://${HOST}/`);
    assert.match(printed.token ?? "", /^[0-9A-Z]{4}(-[0-9A-Z]{4}){4}$/);
    const ca = await machine.exec(["cat", "/var/lib/coyote/proxy/ca/ca.pem"]);
    let page: Awaited<ReturnType<typeof getHttps>> | undefined;
    for (let i = 0; i < 120 && page?.status !== 200; i++) {
      page = await getHttps(machine.address, HOST, "/activate", ca).catch(() => undefined);
      if (page?.status !== 200) await sleep(1000);
    }
    assert.equal(page?.status, 200, `https://${HOST}/activate at ${machine.address}: ${JSON.stringify(page ?? null).slice(0, 500)}`);
    assert.match(page.body, /Activate this box/);
    const plain = await getHttp(machine.address, HOST, "/activate");
    assert.equal(plain.status, 308);
    assert.equal(plain.location, `https://${HOST}/activate`);
  });
});
