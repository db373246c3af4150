// Hostile values against Prosody's rendered Lua: no value may end its string or comment and add
// code. Checked with Lua itself (luac5.4 -p, and a sandboxed run that reads every value back).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { DEFAULT_PROSODY_MODULES, renderHostConfig, renderMainConfig, type MainConfigInput } from "./index.ts";
import { requireProgram } from "./test/prosody.ts";

const HOSTILE = ['"', "'", "\\", "\n", "\r", "\0", "]]", "]==]", "--", "--[[", "[[", "\"); os.exit(1) --", "\\\n", "$ORIGIN", ";", ":", "é"];

// Runs a rendered config in an empty environment with Prosody's config functions stubbed, and
// prints every value it assigned, hex-encoded, so that the test can compare bytes exactly.
const READER = `
local env = {}
local seen = {}
function env.Include(path) seen.Include = path end
function env.VirtualHost(name) seen.VirtualHost = name end
local components = {}
function env.Component(name) table.insert(components, name); return function() end end
setmetatable(env, { __newindex = function(t, k, v) rawset(t, k, v); seen[k] = v end })
local chunk = assert(loadfile(arg[1], "t", env))
chunk()
local function hex(s) return (tostring(s):gsub(".", function(c) return string.format("%02x", c:byte()) end)) end
for _, key in ipairs({ "pidfile", "data_path", "Include", "VirtualHost" }) do io.write(key, "=", hex(seen[key] or ""), "\\n") end
for _, name in ipairs(components) do io.write("Component=", hex(name), "\\n") end
if seen.ssl then io.write("certificate=", hex(seen.ssl.certificate), "\\n", "key=", hex(seen.ssl.key), "\\n") end
for i, v in ipairs(seen.interfaces or {}) do io.write("interface", i, "=", hex(v), "\\n") end
for k, v in pairs(seen) do if type(v) ~= "table" and type(v) ~= "boolean" and k ~= "pidfile" and k ~= "data_path" and k ~= "Include" and k ~= "VirtualHost" and k ~= "Component" then io.write("other:", k, "\\n") end end
`;

test("every hostile value stays inside its Lua string: luac accepts the file and Lua reads the exact bytes back", async (t) => {
  if (!requireProgram(t, "lua5.4") || !requireProgram(t, "luac5.4")) return;
  const dir = await mkdtemp(join(tmpdir(), "coyote-xmpp-hostile-"));
  try {
    const reader = join(dir, "read.lua");
    await writeFile(reader, READER);
    for (const bad of HOSTILE) {
      const value = `/srv/a${bad}b`;
      const input: MainConfigInput = {
        configDir: `/etc/prosody${bad}`,
        dataDir: value,
        pidFile: value,
        logFile: value,
        logLevel: "info",
        interfaces: [`127.0.0.1${bad}`],
        c2sPorts: [5222],
        s2sPorts: [5269],
        modules: DEFAULT_PROSODY_MODULES,
        requireEncryption: true,
        runAsRoot: false,
      };
      const file = join(dir, "prosody.cfg.lua");
      await writeFile(file, renderMainConfig(input));
      const syntax = spawnSync("luac5.4", ["-p", file], { encoding: "utf8" });
      assert.equal(syntax.status, 0, `${JSON.stringify(bad)}: ${syntax.stderr}`);
      const run = spawnSync("lua5.4", [reader, file], { encoding: "utf8" });
      assert.equal(run.status, 0, `${JSON.stringify(bad)}: ${run.stderr}`);
      const hex = (text: string) => Buffer.from(text, "utf8").toString("hex");
      const lines = run.stdout.split("\n");
      assert.ok(lines.includes(`pidfile=${hex(value)}`), `${JSON.stringify(bad)}: ${run.stdout}`);
      assert.ok(lines.includes(`data_path=${hex(value)}`));
      assert.ok(lines.includes(`interface1=${hex(`127.0.0.1${bad}`)}`));
      assert.ok(lines.includes(`Include=${hex(`/etc/prosody${bad}/conf.d/*.cfg.lua`)}`));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a hostile certificate path stays inside the host file's ssl strings, and the file assigns nothing else", async (t) => {
  if (!requireProgram(t, "lua5.4") || !requireProgram(t, "luac5.4")) return;
  const dir = await mkdtemp(join(tmpdir(), "coyote-xmpp-hostile-"));
  try {
    const reader = join(dir, "read.lua");
    await writeFile(reader, READER);
    const hex = (text: string) => Buffer.from(text, "utf8").toString("hex");
    for (const bad of HOSTILE) {
      const path = `/srv/certs${bad}/example.org.pem`;
      const file = join(dir, "example.org.cfg.lua");
      await writeFile(file, renderHostConfig("example.org", "blog", { hash: "SHA-256", certificate: path, groupChat: true, fileSharing: { sizeLimitMb: 100 } }));
      const syntax = spawnSync("luac5.4", ["-p", file], { encoding: "utf8" });
      assert.equal(syntax.status, 0, `${JSON.stringify(bad)}: ${syntax.stderr}`);
      const run = spawnSync("lua5.4", [reader, file], { encoding: "utf8" });
      assert.equal(run.status, 0, `${JSON.stringify(bad)}: ${run.stderr}`);
      const lines = run.stdout.split("\n").filter((line) => line !== "");
      assert.ok(lines.includes(`VirtualHost=${hex("example.org")}`), run.stdout);
      assert.ok(lines.includes(`Component=${hex("conference.example.org")}`), run.stdout);
      assert.ok(lines.includes(`Component=${hex("upload.example.org")}`), run.stdout);
      assert.ok(lines.includes(`certificate=${hex(path)}`), `${JSON.stringify(bad)}: ${run.stdout}`);
      assert.ok(lines.includes(`key=${hex(path)}`));
      const others = lines.filter((line) => line.startsWith("other:")).sort();
      assert.deepEqual(others, ["other:http_external_url", "other:http_file_share_expires_after", "other:http_file_share_size_limit", "other:password_hash", "other:restrict_room_creation"], `${JSON.stringify(bad)}: no other assignment`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a host file refuses a service id or domain that could leave its comment or string", () => {
  for (const bad of HOSTILE) {
    assert.throws(() => renderHostConfig("example.org", `blog${bad}`), /not a service id/, JSON.stringify(bad));
    assert.throws(() => renderHostConfig(`example.org${bad}`, "blog"), /not a domain name/, JSON.stringify(bad));
  }
  assert.throws(() => renderHostConfig("example.org", "blog\nos.exit(1)"), /not a service id/);
});
