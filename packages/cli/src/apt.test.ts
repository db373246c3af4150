// The Debian installs of `coyote up` and `coyote test`, with stand-ins for apt-get and
// debconf-set-selections on PATH that record what they were asked (a real install would change
// this machine).
import assert from "node:assert/strict";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { tempDirs } from "@coyote/testing";
import { aptInstall, onPath } from "./apt.ts";
import { installDaemons } from "./commands/up.ts";
import { readEnv } from "./env.ts";
import type { Io } from "./io.ts";
import { HOME } from "./test/support.ts";

const tempDir = tempDirs("coyote-apt-");
const asRoot = process.getuid?.() === 0;

/** A PATH whose apt-get and debconf-set-selections write what they get into `record`. */
async function standIns(dir: string, policy: string): Promise<{ path: string; record: string }> {
  const bin = join(dir, "bin");
  const record = join(dir, "record");
  await mkdir(bin, { recursive: true });
  // apt-get notes its arguments and what the policy script answers while it runs (101: refused).
  await writeFile(join(bin, "apt-get"), `#!/bin/sh\nif [ -x ${policy} ]; then ${policy} postfix start; p=$?; else p=none; fi\necho "apt-get $* policy=$p" >> ${record}\n`);
  await writeFile(join(bin, "debconf-set-selections"), `#!/bin/sh\nsed 's/^/debconf /' >> ${record}\n`);
  await chmod(join(bin, "apt-get"), 0o755);
  await chmod(join(bin, "debconf-set-selections"), 0o755);
  return { path: `${bin}:/usr/bin:/bin`, record };
}

function quietIo(): Io & { errors: string[] } {
  const errors: string[] = [];
  return { out: () => undefined, err: (line: string) => void errors.push(line), errors };
}

describe("Debian installs", () => {
  it("finds a program by absolute path as well as on PATH (Dovecot's imap is not on PATH)", async () => {
    assert.equal(await onPath("/bin/sh", ""), true);
    assert.equal(await onPath("/usr/lib/coyote-no-such/imap", "/usr/bin:/bin"), false);
    assert.equal(await onPath("sh", "/usr/bin:/bin"), true);
  });

  it("installs with the packages' answers, and keeps their services from starting only while it installs", async () => {
    const dir = tempDir();
    const policy = join(dir, "policy-rc.d");
    const { path, record } = await standIns(dir, policy);
    const env = readEnv({ PATH: path, COYOTE_HOME: HOME }, false);
    assert.equal(await aptInstall(env, quietIo(), ["postfix", "knot", "postfix"], { startServices: false, policyRcD: policy }), true);
    const lines = (await readFile(record, "utf8")).trim().split("\n");
    assert.deepEqual(lines, [
      "debconf postfix postfix/main_mailer_type select No configuration",
      "apt-get update -q policy=101",
      "apt-get install -y -q --no-install-recommends postfix knot policy=101",
    ]);
    assert.equal(existsSync(policy), false, "the policy script is gone after the install");
  });

  it("leaves a policy script the machine already has as it is", async () => {
    const dir = tempDir();
    const policy = join(dir, "policy-rc.d");
    await writeFile(policy, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    const { path, record } = await standIns(dir, policy);
    await aptInstall(readEnv({ PATH: path, COYOTE_HOME: HOME }, false), quietIo(), ["knot"], { startServices: false, policyRcD: policy });
    assert.match(await readFile(record, "utf8"), /install .* knot policy=0/);
    assert.equal(await readFile(policy, "utf8"), "#!/bin/sh\nexit 0\n");
  });

  it("coyote up installs the packages of the daemons whose programs are missing, and only those", { skip: asRoot ? false : "needs root: coyote up installs only as root" }, async () => {
    const dir = tempDir();
    const policy = join(dir, "policy-rc.d");
    const { path, record } = await standIns(dir, policy);
    const env = readEnv({ PATH: path, COYOTE_HOME: HOME }, false);
    const io = quietIo();
    await installDaemons(env, io, { policyRcD: policy, findProgram: (name) => (name === "knotd" || name === "prosody" ? undefined : `/usr/sbin/${name}`) });
    assert.match(await readFile(record, "utf8"), /^apt-get install -y -q --no-install-recommends knot knot-dnsutils prosody policy=101$/m);
    assert.ok(io.errors.some((line) => line.includes("installing the Debian packages of the box's daemons: knot knot-dnsutils prosody")), io.errors.join("\n"));

    const none = tempDir();
    const quiet = await standIns(none, policy);
    await installDaemons(readEnv({ PATH: quiet.path, COYOTE_HOME: HOME }, false), quietIo(), { policyRcD: policy, findProgram: (name) => `/usr/sbin/${name}` });
    assert.equal(existsSync(quiet.record), false, "nothing missing: apt-get is not run");

    // setfacl, which gives the daemons' users their passage through the state folder, comes with acl.
    const noAcl = await standIns(tempDir(), policy);
    await installDaemons(readEnv({ PATH: noAcl.path, COYOTE_HOME: HOME }, false), quietIo(), { policyRcD: policy, findProgram: (name) => (name === "setfacl" ? undefined : `/usr/sbin/${name}`) });
    assert.match(await readFile(noAcl.record, "utf8"), /^apt-get install -y -q --no-install-recommends acl policy=101$/m);
  });
});
