// install.sh's checks of the machine, run for real (`--check` stops after them), and shellcheck
// over every shell script of the checkout.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { join, resolve } from "node:path";
import { describe, it } from "node:test";
import { skipWithout } from "@coyote/testing";

const HOME = resolve(import.meta.dirname, "..", "..");
const INSTALL = join(HOME, "install.sh");

function install(args: string[], options: { env?: Record<string, string>; asNobody?: boolean } = {}): { code: number | null; err: string } {
  const command = options.asNobody === true ? "setpriv" : INSTALL;
  const argv = options.asNobody === true ? ["--reuid=nobody", "--regid=nogroup", "--clear-groups", INSTALL, ...args] : args;
  const result = spawnSync(command, argv, { encoding: "utf8", timeout: 60_000, env: { ...process.env, ...options.env } });
  return { code: result.status, err: `${result.stdout}${result.stderr}` };
}

const notRoot = process.getuid?.() !== 0 ? "install.sh checks a machine as root" : false;

describe("install.sh --check", { skip: notRoot || skipWithout(["ss", "setpriv"], "Debian packages iproute2, util-linux") }, () => {
  it("passes on this machine as a private box that starts nothing", () => {
    const result = install(["--check", "--private", "--no-start"]);
    assert.equal(result.code, 0, result.err);
    assert.match(result.err, /this machine can become a Coyote box/);
  });

  it("refuses to run as another user than root, with the command to run instead", () => {
    const result = install(["--check", "--private"], { asNobody: true });
    assert.equal(result.code, 1);
    assert.match(result.err, /- not running as root\n {4}fix: sudo .*install\.sh --check --private/);
  });

  it("names every blocker at once, each with its fix: memory, disk, no public address, no systemd", () => {
    const result = install(["--check"], { env: { COYOTE_MIN_MEMORY_MB: "99999999", COYOTE_MIN_DISK_MB: "999999999" } });
    assert.equal(result.code, 1);
    assert.match(result.err, /- only \d+ MB of memory; the box needs 1 GB\n {4}fix: give the machine at least 1 GB of memory/);
    assert.match(result.err, /- only \d+ MB free on \/opt; the box needs 999999999 MB\n {4}fix: /);
    assert.match(result.err, /- no public address on this machine.*\n {4}fix: behind NAT, give --ipv4 <public address>; on a LAN or for a test, install with --private/);
    // This machine's PID 1 is not systemd.
    if (spawnSync("test", ["-d", "/run/systemd/system"]).status !== 0) assert.match(result.err, /- systemd is not running this machine \(a container\?\)\n {4}fix: .*--no-start/);
  });

  it("names the program that holds one of the box's ports, unless it is the box's own", async () => {
    // A listener on XMPP's server port, run by another user, as another program of the machine would be.
    const holder = spawn("setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups", process.execPath, "-e", "require('node:net').createServer().listen(5269, '127.0.0.1', () => console.log('listening'))"], { stdio: ["ignore", "pipe", "ignore"], detached: true });
    try {
      await new Promise<void>((ready, failed) => {
        holder.stdout.once("data", () => ready());
        holder.once("exit", (code) => failed(new Error(`the listener exited with ${String(code)}`)));
      });
      const result = install(["--check", "--private", "--no-start"]);
      assert.equal(result.code, 1);
      assert.match(result.err, new RegExp(`- port 5269 is taken by node \\(pid ${String(holder.pid)}\\)\n {4}fix: stop and disable node`));
    } finally {
      if (holder.pid !== undefined) process.kill(-holder.pid, "SIGKILL");
    }
  });

  it("refuses Let's Encrypt for a box without a public address, and an unknown option", () => {
    const both = install(["--check", "--private", "--no-start", "--email", "admin@example.org"]);
    assert.equal(both.code, 1);
    assert.match(both.err, /--email asks for Let's Encrypt certificates, which a box without a public address cannot obtain/);
    const unknown = install(["--bogus"]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.err, /unknown option: --bogus/);
    assert.match(unknown.err, /^Usage: \.\/install\.sh/m);
  });
});

describe("shell scripts", { skip: skipWithout(["shellcheck", "git"], "Debian packages shellcheck, git") }, () => {
  it("pass shellcheck, every one of them", () => {
    const files = spawnSync("git", ["ls-files"], { cwd: HOME, encoding: "utf8" }).stdout.split("\n").filter(Boolean);
    const scripts = files.filter((file) => {
      if (file.endsWith(".sh")) return true;
      const head = spawnSync("head", ["-c", "64", join(HOME, file)], { encoding: "utf8" }).stdout;
      return /^#!.*\b(ba|da)?sh\b/.test(head);
    });
    assert.ok(scripts.includes("install.sh") && scripts.includes("coyote"), scripts.join());
    const result = spawnSync("shellcheck", scripts, { cwd: HOME, encoding: "utf8", timeout: 120_000 });
    assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
  });
});
