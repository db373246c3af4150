import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { test } from "node:test";
import { skipWithout } from "@coyote/testing";
import { effectiveCapabilities, holdsCapabilities } from "./privileges.ts";

test("reads the effective capabilities from a status text", () => {
  assert.deepEqual([...effectiveCapabilities("Name:\tnode\nCapEff:\t0000000000000000\n")], []);
  assert.deepEqual([...effectiveCapabilities("CapEff:\t00000000000000c1\n")].sort(), ["CAP_CHOWN", "CAP_SETGID", "CAP_SETUID"]);
  assert.ok(effectiveCapabilities("CapEff:\t000001ffffffffff\n").has("CAP_SYS_ADMIN"));
  assert.equal(effectiveCapabilities("no such line").size, 0);
  assert.equal(effectiveCapabilities("CapEff:\tnot-hex\n").size, 0);
});

const notRoot = process.getuid?.() !== 0 ? "needs root to start a process as another user with chosen capabilities" : false;

test("a process of another user holds exactly the ambient capabilities its unit gives it", { skip: notRoot || skipWithout(["setpriv"], "util-linux") }, () => {
  const probe = `import { holdsCapabilities, switchesToRoot } from ${JSON.stringify(new URL("./privileges.ts", import.meta.url).href)};
    console.log(JSON.stringify({ chown: holdsCapabilities("CAP_CHOWN"), setuid: holdsCapabilities("CAP_SETUID", "CAP_SETGID"), root: switchesToRoot() }));`;
  const run = (caps: string) => {
    const args = ["--reuid=nobody", "--regid=nogroup", "--clear-groups", ...(caps === "" ? [] : [`--inh-caps=${caps}`, `--ambient-caps=${caps}`]), process.execPath, "--import", "tsx", "--input-type=module", "-e", probe];
    const result = spawnSync("setpriv", args, { encoding: "utf8", timeout: 30_000, cwd: new URL(".", import.meta.url).pathname });
    assert.equal(result.status, 0, result.stderr);
    return JSON.parse(result.stdout.trim().split("\n").pop() ?? "{}") as { chown: boolean; setuid: boolean; root: boolean };
  };
  assert.deepEqual(run(""), { chown: false, setuid: false, root: false });
  assert.deepEqual(run("+chown"), { chown: true, setuid: false, root: false });
  assert.deepEqual(run("+chown,+setuid,+setgid"), { chown: true, setuid: true, root: true });
  assert.ok(holdsCapabilities("CAP_CHOWN"), "root holds it");
  assert.ok(execFileSync("id", ["-u"], { encoding: "utf8" }).trim() === "0");
});
