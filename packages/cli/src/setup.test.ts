// `coyote setup`, as install.sh runs it: the server spec and the systemd units of a production
// box, written on the first run, unchanged by a second, and following only the flags given.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ServerSpec, StateStore, specPath } from "@coyote/spec";
import { installServerSpec } from "./install/server-spec.ts";
import { unitOf } from "./release/services.ts";
import { cli } from "./test/support.ts";

describe("coyote setup", () => {
  let root = "";
  let state = "";
  let units = "";
  const setup = (...args: string[]) => cli(state, "setup", "--units-dir", units, "--current", "/opt/coyote/current", "--node", process.execPath, ...args);
  const server = async () => (await StateStore.open(state)).readJson(specPath("server"), ServerSpec);

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "coyote-setup-"));
    state = join(root, "state");
    units = join(root, "units");
    await mkdir(units);
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("writes a production server spec on the first run: public ports, Knot on 53, mail and XMPP on every address, the box's own CA without an e-mail", async () => {
    const result = await setup("--default-hostname", "box.example.org", "--ipv4", "203.0.113.7");
    assert.equal(result.code, 0, result.err);
    assert.match(result.out, /^server spec: written$/m);
    const spec = await server();
    assert.ok(spec);
    assert.equal(spec.hostname, "box.example.org");
    assert.equal(spec.publicIPv4, "203.0.113.7");
    assert.deepEqual(spec.ports, { http: 80, https: 443, panel: 3000 });
    assert.deepEqual(spec.dns, { backend: "knot", listen: ["0.0.0.0:53", "[::]:53"] });
    assert.equal(spec.mail.smtpListen, "0.0.0.0:25");
    assert.equal(spec.certificates.mode, "local-ca");
    assert.equal(spec.activated, false);
  });

  it("writes the units, and a second run changes neither the spec nor a unit", async () => {
    const names = (await readdir(units)).sort();
    assert.ok(names.includes("coyote.target") && names.includes("coyote-minion.service") && names.includes("coyote-crm.service"), names.join());
    // coyote update restarts the very units setup writes.
    for (const name of ["minion", "docker-activator", "snitch-proxy", "coyote-crm"]) assert.ok(names.includes(unitOf(name)), `${unitOf(name)} in ${names.join()}`);
    const proxy = await readFile(join(units, "coyote-snitch-proxy.service"), "utf8");
    assert.match(proxy, /^AmbientCapabilities=CAP_NET_BIND_SERVICE$/m, "ports 80 and 443");
    // The same V8 flags as coyote up gives each component.
    assert.match(await readFile(join(units, "coyote-crm.service"), "utf8"), /^ExecStart="[^"]+" "--optimize-for-size" "\/opt\/coyote\/current\/dist\/component\.mjs" "coyote-crm"$/m);
    assert.match(proxy, /^ExecStart="[^"]+" "--max-semi-space-size=4" "\/opt\/coyote\/current\/dist\/component\.mjs" "snitch-proxy"$/m);
    const before = await Promise.all(names.map((n) => readFile(join(units, n), "utf8")));
    const generation = (await server())?.generation;
    const again = await setup("--default-hostname", "other.example.org", "--ipv4", "203.0.113.7");
    assert.equal(again.code, 0, again.err);
    assert.match(again.out, /^server spec: unchanged$/m);
    assert.match(again.out, /^units: 0 written, \d+ unchanged, 0 removed/m);
    assert.equal((await server())?.generation, generation);
    assert.equal((await server())?.hostname, "box.example.org", "a detected hostname does not replace the spec's");
    assert.deepEqual(await Promise.all(names.map((n) => readFile(join(units, n), "utf8"))), before);
  });

  it("follows --hostname and --email given later, keeps what the admin changed, and leaves out the daemons it is told to", async () => {
    const store = await StateStore.open(state, { author: { name: "Admin", email: "admin@example.org" } });
    const current = await server();
    assert.ok(current);
    const { generation: _g, ...rest } = current;
    await store.applySpec({ ...rest, alarms: { email: ["ops@example.org"], webhooks: [] } }, { author: { name: "Admin", email: "admin@example.org" } });
    const result = await setup("--hostname", "mail.example.org", "--email", "ops@example.org", "--no-xmpp");
    assert.equal(result.code, 0, result.err);
    assert.match(result.out, /^server spec: updated$/m);
    const spec = await server();
    assert.equal(spec?.hostname, "mail.example.org");
    assert.deepEqual(spec.alarms.email, ["ops@example.org"], "the admin's change is kept");
    assert.deepEqual(spec.certificates, { mode: "acme", directoryUrl: "https://acme-v02.api.letsencrypt.org/directory", email: "ops@example.org" });
    assert.doesNotMatch(result.out, /^daemons: .*prosody/m);
    assert.ok(!(await readdir(units)).includes("coyote-prosody.service"), "prosody's unit is removed");
  });

  it("removes only the units it rendered itself", async () => {
    await writeFile(join(units, "coyote-mine.service"), "[Service]\nExecStart=/bin/true\n");
    await writeFile(join(units, "coyote-old.service"), "# Rendered by Coyote from its catalogues: edits here are overwritten.\n[Service]\nExecStart=/bin/true\n");
    const result = await setup();
    assert.match(result.out, /removed: coyote-old\.service/);
    const names = await readdir(units);
    assert.ok(names.includes("coyote-mine.service"), "a file without Coyote's header is the admin's");
    assert.ok(!names.includes("coyote-old.service"));
  });

  it("splits in two for install.sh: the spec and token as the state folder's owner, the units as root from the spec on disk", async () => {
    const other = join(root, "units-2");
    await mkdir(other);
    const specOnly = await cli(state, "setup", "--no-units", "--units-dir", other);
    assert.equal(specOnly.code, 0, specOnly.err);
    assert.doesNotMatch(specOnly.out, /^units:/m);
    assert.deepEqual(await readdir(other), []);
    const unitsOnly = await cli(state, "setup", "--units-only", "--units-dir", other, "--current", "/opt/coyote/current", "--node", process.execPath);
    assert.equal(unitsOnly.code, 0, unitsOnly.err);
    assert.doesNotMatch(unitsOnly.out, /^server spec:/m);
    assert.ok((await readdir(other)).includes("coyote-minion.service"));
    const empty = await cli(join(root, "no-state"), "setup", "--units-only", "--units-dir", other);
    assert.equal(empty.code, 6);
    assert.match(empty.err, /no server spec in .*no-state\/specs\/server\.json: run coyote setup without --units-only first/);
  });

  it("refuses a hostname or address that is not one, naming the flag", async () => {
    const bad = await setup("--hostname", "not a name");
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--hostname "not a name" is not a fully qualified host name/);
    const single = await setup("--hostname", "localhost");
    assert.match(single.err, /--hostname "localhost" is not a fully qualified host name/);
    const ip = await setup("--ipv4", "2001:db8::1");
    assert.match(ip.err, /--ipv4 "2001:db8::1" is not an IPv4 address/);
  });

  it("says nothing changed for an existing spec with the same choices", () => {
    const spec = ServerSpec.parse({ schemaVersion: 1, kind: "Server", name: "b", hostname: "b.example.org", publicIPv4: "203.0.113.9" });
    assert.equal(installServerSpec(spec, { hostname: "x.example.org", hostnameGiven: false, publicIPv4: "203.0.113.9" }), undefined);
    assert.equal(installServerSpec(spec, { hostname: "b.example.org", hostnameGiven: true }), undefined);
    assert.equal(installServerSpec(spec, { hostname: "b.example.org", hostnameGiven: false, publicIPv4: "203.0.113.10" })?.publicIPv4, "203.0.113.10");
  });
});
