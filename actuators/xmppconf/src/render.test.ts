import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  accountFile,
  decodeDataPathPart,
  DEFAULT_PROSODY_MODULES,
  encodeDataPathPart,
  luaString,
  parseHostFile,
  renderAccount,
  renderHostConfig,
  renderMainConfig,
  type MainConfigInput,
} from "./index.ts";
import { parseHostList } from "./prosodyctl.ts";
import { requireProgram } from "./test/prosody.ts";

const input: MainConfigInput = {
  configDir: "/etc/prosody",
  dataDir: "/var/lib/prosody",
  pidFile: "/run/prosody/prosody.pid",
  logFile: "/var/log/prosody/prosody.log",
  logLevel: "info",
  interfaces: ["*", "::"],
  c2sPorts: [5222],
  s2sPorts: [5269],
  modules: DEFAULT_PROSODY_MODULES,
  requireEncryption: true,
  runAsRoot: false,
};

test("renders the main configuration deterministically from the options", () => {
  const text = renderMainConfig(input);
  assert.equal(renderMainConfig({ ...input, interfaces: [...input.interfaces] }), text);
  for (const line of [
    'pidfile = "/run/prosody/prosody.pid"',
    'data_path = "/var/lib/prosody"',
    'log = { info = "/var/log/prosody/prosody.log" }',
    'interfaces = { "*"; "::" }',
    "c2s_ports = { 5222 }",
    "s2s_ports = { 5269 }",
    "c2s_direct_tls_ports = { }",
    'authentication = "internal_hashed"',
    "c2s_require_encryption = true",
    "s2s_require_encryption = true",
    "s2s_secure_auth = true",
    "allow_registration = false",
    'disable_sasl_mechanisms = { "DIGEST-MD5"; "LOGIN"; "PLAIN"; "X-OAUTH2" }',
    'Include "/etc/prosody/conf.d/*.cfg.lua"',
  ]) {
    assert.ok(text.split("\n").includes(line), `has ${line}`);
  }
  assert.doesNotMatch(text, /run_as_root|^VirtualHost|"register"/m);
  assert.ok(text.split("\n").includes("http_ports = { }"), "no HTTP port without one in the options");
  assert.ok(text.split("\n").includes("https_ports = { }"));
  assert.doesNotMatch(text, /http_interfaces/);
  const http = renderMainConfig({ ...input, httpPort: 5280 });
  assert.match(http, /^http_ports = \{ 5280 \}\nhttp_interfaces = \{ "127\.0\.0\.1" \}\nhttps_ports = \{ \}$/m, "HTTP on loopback only, no HTTPS");
  for (const bad of [0, 65536, 1.5, Number.NaN]) assert.throws(() => renderMainConfig({ ...input, httpPort: bad }), /httpPort is .*, not a port/);
  assert.ok(text.trimEnd().endsWith('Include "/etc/prosody/conf.d/*.cfg.lua"'), "hosts come after every global option");

  const test = renderMainConfig({ ...input, runAsRoot: true, requireEncryption: false, modules: ["saslauth"], logLevel: "debug", logFile: "*console" });
  assert.match(test, /^run_as_root = true$/m);
  assert.match(test, /^c2s_require_encryption = false$/m);
  assert.match(test, /^modules_enabled = \{ "saslauth"; "admin_shell" \}$/m, "admin_shell is always loaded: commit needs it");
  assert.match(test, /^log = \{ debug = /m);
  assert.match(test, /^s2s_secure_auth = false$/m);
  assert.match(test, /^log = \{ debug = "\*console" \}$/m, "prosody's log to its standard output");
  assert.match(test, /^disable_sasl_mechanisms = \{ "DIGEST-MD5"; "LOGIN"; "PLAIN"; "X-OAUTH2" \}$/m, "SCRAM only, even without TLS");
});

test("escapes Lua strings as prosody's serializer does", () => {
  assert.equal(luaString("plain"), '"plain"');
  assert.equal(luaString('a"b\\c\'d\n'), '"a\\"b\\\\c\\\'d\\n"');
  assert.equal(luaString(Buffer.from([0, 1, 0x7f, 0xff, 0x41])), '"\\000\\001\\127\\255A"');
  assert.equal(luaString("é"), '"\\195\\169"');
});

test("renders account files that Lua reads back exactly, whatever bytes the salt holds", async (t) => {
  if (!requireProgram(t, "lua5.4")) return;
  const salt = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const storedKey = Buffer.alloc(20, 0xab);
  const serverKey = Buffer.alloc(20, 0x01);
  const text = renderAccount({ hash: "SHA-1", iterations: 4096, salt, storedKey, serverKey });
  assert.equal(
    text.replace(/"salt"\] = ".*";/, '"salt"] = "…";'),
    'return {\n\t["iteration_count"] = 4096;\n\t["salt"] = "…";\n\t["server_key"] = "0101010101010101010101010101010101010101";\n\t["stored_key"] = "abababababababababababababababababababab";\n};\n',
  );
  const dir = await mkdtemp(join(tmpdir(), "coyote-xmpp-lua-"));
  try {
    const file = join(dir, "alice.dat");
    await writeFile(file, text);
    // What prosody's datamanager does: load the file in an empty environment and run it.
    const script = `local t = assert(loadfile(arg[1], "t", {}))()
      io.write(t.iteration_count, "\\n", (t.salt:gsub(".", function(c) return string.format("%02x", c:byte()) end)), "\\n", t.stored_key, "\\n", t.server_key)`;
    const wrapper = join(dir, "read.lua");
    await writeFile(wrapper, script);
    const read = spawnSync("lua5.4", [wrapper, file], { encoding: "utf8" });
    assert.equal(read.status, 0, read.stderr);
    assert.deepEqual(read.stdout.split("\n"), ["4096", salt.toString("hex"), storedKey.toString("hex"), serverKey.toString("hex")]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("encodes data paths as prosody's datamanager does", () => {
  assert.equal(encodeDataPathPart("example.org"), "example%2eorg");
  assert.equal(encodeDataPathPart("my-host.example.org"), "my%2dhost%2eexample%2eorg");
  assert.equal(encodeDataPathPart("a.b_c-d9"), "a%2eb%5fc%2dd9");
  assert.equal(decodeDataPathPart("a%2eb%5fc%2dd9"), "a.b_c-d9");
  assert.equal(decodeDataPathPart(encodeDataPathPart("élan")), "élan");
  assert.equal(accountFile("/var/lib/prosody", "example.org", "alice.smith"), "/var/lib/prosody/example%2eorg/accounts/alice%2esmith.dat");
});

test("records the owning service in each VirtualHost file", () => {
  const text = renderHostConfig("example.org", "blog");
  assert.deepEqual(parseHostFile(text), { owner: "blog", hosts: ["example.org"] });
  assert.doesNotMatch(text, /password_hash/, "a SHA-1 host's file is the one made before SHA-256 existed");
  const sha256 = renderHostConfig("example.org", "blog", { hash: "SHA-256" });
  assert.match(sha256, /^VirtualHost "example\.org"\npassword_hash = "SHA-256"\n$/m);
  assert.deepEqual(parseHostFile(sha256), { owner: "blog", hosts: ["example.org"] });
  assert.deepEqual(parseHostFile('VirtualHost "a.test"\nVirtualHost(\'b.test\')\n-- VirtualHost "c.test"\n'), { owner: undefined, hosts: ["a.test", "b.test"] });
  const chat = renderHostConfig("example.org", "blog", { groupChat: true });
  assert.match(chat, /^Component "conference\.example\.org" "muc"\nrestrict_room_creation = "local"$/m, "only the domain's users create rooms");
  assert.deepEqual(parseHostFile(chat), { owner: "blog", hosts: ["example.org", "conference.example.org"] });
  assert.doesNotMatch(text, /Component/, "no group chat unless the spec asks");
});

test("renders a file sharing service only when asked, with its size limit and expiry", () => {
  assert.doesNotMatch(renderHostConfig("example.org", "blog", { groupChat: true }), /http_file_share|upload\.|http_external_url/, "no file sharing unless the spec asks");
  const shared = renderHostConfig("example.org", "blog", { groupChat: true, fileSharing: {} });
  assert.match(
    shared,
    /^Component "upload\.example\.org" "http_file_share"\nhttp_file_share_size_limit = 10485760\nhttp_file_share_expires_after = 604800\nhttp_file_share_access = \{ "example\.org" \}\nhttp_external_url = "https:\/\/upload\.example\.org\/"\n$/m,
    "10 MB by default, a week, the domain's own users, reached through the proxy",
  );
  assert.ok(shared.indexOf('Component "conference.example.org"') < shared.indexOf('Component "upload.example.org"'));
  assert.deepEqual(parseHostFile(shared), { owner: "blog", hosts: ["example.org", "conference.example.org", "upload.example.org"] });
  assert.match(renderHostConfig("example.org", "blog", { fileSharing: { sizeLimitMb: 100 } }), /^http_file_share_size_limit = 104857600$/m);
  assert.match(renderHostConfig("example.org", "blog", { fileSharing: { sizeLimitMb: 1 } }), /^http_file_share_size_limit = 1048576$/m);
  for (const bad of [0, 101, 2.5, -1, Number.NaN, Number.POSITIVE_INFINITY, "10" as unknown as number]) {
    assert.throws(() => renderHostConfig("example.org", "blog", { fileSharing: { sizeLimitMb: bad } }), /the file size limit of example\.org is .* MB, not a whole number from 1 to 100/, `refuses ${String(bad)}`);
  }
  assert.throws(() => renderHostConfig('x.org"\nadmins = {"a@x.org"}', "blog", { fileSharing: {} }), /not a domain name/);
  // The files' address names snitch-proxy's HTTPS port unless it is the standard one.
  assert.match(renderHostConfig("example.org", "blog", { fileSharing: { httpsPort: 8443 } }), /^http_external_url = "https:\/\/upload\.example\.org:8443\/"$/m);
  assert.match(renderHostConfig("example.org", "blog", { fileSharing: { httpsPort: 443 } }), /^http_external_url = "https:\/\/upload\.example\.org\/"$/m);
  for (const bad of [0, 65536, 1.5]) assert.throws(() => renderHostConfig("example.org", "blog", { fileSharing: { httpsPort: bad } }), /the HTTPS port of example\.org's file sharing is .*, not a port/);
});

test("reads the hosts and components prosody's admin shell lists", () => {
  assert.deepEqual(parseHostList("example.org\nconference.example.org (muc component)\nOK: 2 hosts\n"), ["example.org", "conference.example.org"]);
});
