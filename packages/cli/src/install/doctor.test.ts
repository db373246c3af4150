// `coyote doctor`'s checks of an installed box, on files laid out as install.sh lays them out.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { chmod, chown, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ServerSpec, certificateFileName, proxyRuntimePaths } from "@coyote/spec";
import { skipWithout } from "@coyote/testing";
import { checkInstallFiles, checkNameAndCertificate, checkPortHolders, checkUnits, type InstalledPaths } from "./doctor.ts";

const server = ServerSpec.parse({ schemaVersion: 1, kind: "Server", name: "box", hostname: "box.example.org", publicIPv4: "203.0.113.7", ports: { http: 80, https: 443, panel: 3000 } });

/** A DNS server on loopback that answers every A question with one address (and nothing else). */
async function answeringDns(address: string): Promise<{ port: number; close: () => void }> {
  const socket = createSocket("udp4");
  socket.on("message", (query, peer) => {
    // Header: same id, a response with recursion available; the question copied; one answer.
    const questionEnd = query.indexOf(0, 12) + 5;
    const question = query.subarray(12, questionEnd);
    const isA = question.readUInt16BE(question.length - 4) === 1;
    const header = Buffer.from([query[0] ?? 0, query[1] ?? 0, 0x81, 0x80, 0, 1, 0, isA ? 1 : 0, 0, 0, 0, 0]);
    const answer = isA ? Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ...address.split(".").map(Number)]) : Buffer.alloc(0);
    socket.send(Buffer.concat([header, question, answer]), peer.port, peer.address);
  });
  await new Promise<void>((ready) => socket.bind(0, "127.0.0.1", ready));
  return { port: socket.address().port, close: () => socket.close() };
}

describe("coyote doctor on an installed box", () => {
  let root = "";
  let paths: InstalledPaths;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "coyote-doctor-"));
    paths = { confDir: join(root, "etc"), prefix: join(root, "opt"), unitsDir: join(root, "units"), stateDir: join(root, "state") };
    await mkdir(paths.unitsDir, { recursive: true });
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("names a missing state folder and release, a state folder of the wrong owner or mode, and passes once they are right", { skip: process.getuid?.() !== 0 ? "giving a folder to another user needs root" : false }, async () => {
    const missing = await checkInstallFiles(paths, "nobody");
    assert.match(missing.find((c) => c.name === "state folder")?.detail ?? "", /state is missing/);
    assert.match(missing.find((c) => c.name === "release")?.detail ?? "", /current is not a link to a release/);
    await mkdir(paths.stateDir, { mode: 0o755 });
    await chmod(paths.stateDir, 0o755);
    const open = await checkInstallFiles(paths, "nobody");
    const state = open.find((c) => c.name === "state folder");
    assert.equal(state?.result, "fail");
    assert.match(state.detail, /mode 755 \(want coyote, 0700\)/);
    assert.match(state.fix ?? "", /chown coyote:coyote .* && chmod 0700/);
    const nobody = Number(execFileSync("id", ["-u", "nobody"], { encoding: "utf8" }).trim());
    await chown(paths.stateDir, nobody, nobody);
    await chmod(paths.stateDir, 0o700);
    await mkdir(join(paths.prefix, "releases", "1.0.0-abc", "dist"), { recursive: true });
    await symlink("releases/1.0.0-abc", join(paths.prefix, "current"));
    const unbuilt = await checkInstallFiles(paths, "nobody");
    assert.match(unbuilt.find((c) => c.name === "release")?.detail ?? "", /not a complete release/);
    await writeFile(join(paths.prefix, "releases", "1.0.0-abc", ".coyote-release.json"), "{}\n");
    await writeFile(join(paths.prefix, "releases", "1.0.0-abc", "dist", "coyote.mjs"), "");
    const good = await checkInstallFiles(paths, "nobody");
    assert.deepEqual(good.map((c) => c.result), ["ok", "ok", "ok"], JSON.stringify(good));
  });

  it("names each unit that is missing or differs from what coyote setup renders; without systemd it says nothing runs them", async () => {
    const rendered = [{ name: "coyote.target", text: "A\n" }, { name: "coyote-minion.service", text: "B\n" }, { name: "coyote-crm.service", text: "C\n" }];
    await writeFile(join(paths.unitsDir, "coyote.target"), "A\n");
    await writeFile(join(paths.unitsDir, "coyote-minion.service"), "edited\n");
    const checks = await checkUnits(paths, rendered, false);
    assert.equal(checks[0]?.result, "fail");
    assert.equal(checks[0].detail, "not as coyote setup renders them: coyote-minion.service (changed), coyote-crm.service (missing)");
    assert.equal(checks[1]?.name, "systemd");
    assert.equal(checks[1].result, "warn");
    await writeFile(join(paths.unitsDir, "coyote-minion.service"), "B\n");
    await writeFile(join(paths.unitsDir, "coyote-crm.service"), "C\n");
    assert.equal((await checkUnits(paths, rendered, false))[0]?.result, "ok");
  });

  it("says which of the box's ports nobody serves and which another program holds", () => {
    const ss = [
      'tcp LISTEN 0 511 0.0.0.0:443 0.0.0.0:* users:(("node",pid=100,fd=20))',
      'tcp LISTEN 0 511 0.0.0.0:80 0.0.0.0:* users:(("nginx",pid=200,fd=6))',
      'tcp LISTEN 0 100 [::]:5222 [::]:* users:(("lua5.4",pid=300,fd=7))',
    ].join("\n");
    const checks = checkPortHolders([{ port: 443, what: "HTTPS" }, { port: 80, what: "HTTP" }, { port: 25, what: "SMTP" }, { port: 5222, what: "XMPP" }], ss, (pid) => pid === 100 || pid === 300);
    assert.deepEqual(checks.map((c) => [c.name, c.result]), [["port 443", "ok"], ["port 80", "fail"], ["port 25", "fail"], ["port 5222", "ok"]]);
    assert.match(checks[1]?.detail ?? "", /HTTP: held by nginx \(pid 200\), not by the box/);
    assert.match(checks[2]?.detail ?? "", /nothing listens for SMTP/);
  });

  it("checks the hostname resolves to the box and its certificate names it for more than two weeks", { skip: skipWithout(["openssl"], "Debian package openssl") }, async () => {
    const certs = proxyRuntimePaths(paths.stateDir).certs;
    await mkdir(certs, { recursive: true });
    const none = await checkNameAndCertificate(server, paths.stateDir, { resolver: "127.0.0.1:9" });
    assert.match(none.find((c) => c.name === "certificate")?.detail ?? "", /no certificate for box\.example\.org/);
    const make = (name: string) => execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30", "-subj", `/CN=${name}`, "-addext", `subjectAltName=DNS:${name}`, "-keyout", "/dev/null"], { encoding: "utf8" });
    await writeFile(join(certs, certificateFileName("box.example.org")), make("box.example.org"));
    const dns = await answeringDns("203.0.113.7");
    try {
      const good = await checkNameAndCertificate(server, paths.stateDir, { resolver: `127.0.0.1:${String(dns.port)}` });
      assert.deepEqual(good.map((c) => c.result), ["ok", "ok"], JSON.stringify(good));
      assert.match(good[1]?.detail ?? "", /box\.example\.org: from box\.example\.org, (29|30) days left/);
      const soon = await checkNameAndCertificate(server, paths.stateDir, { resolver: `127.0.0.1:${String(dns.port)}`, now: Date.now() + 20 * 86_400_000 });
      assert.match(soon[1]?.detail ?? "", /expires in \d days/);
      const elsewhere = await checkNameAndCertificate({ ...server, publicIPv4: "198.51.100.1" }, paths.stateDir, { resolver: `127.0.0.1:${String(dns.port)}` });
      assert.equal(elsewhere[0]?.result, "fail");
      assert.match(elsewhere[0].detail, /box\.example\.org resolves to 203\.0\.113\.7, not to 198\.51\.100\.1/);
      assert.match(elsewhere[0].fix ?? "", /an A \(and AAAA\) record for box\.example\.org/);
    } finally {
      dns.close();
    }
    await writeFile(join(certs, certificateFileName("box.example.org")), make("other.example.org"));
    const wrong = await checkNameAndCertificate(server, paths.stateDir, { resolver: "127.0.0.1:9" });
    assert.match(wrong.find((c) => c.name === "certificate")?.detail ?? "", /does not name box\.example\.org/);
  });
});
