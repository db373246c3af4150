import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { describe, test } from "node:test";
import { readWebhooks } from "@coyote/spec";
import { addBuddy, AlarmsInput, BuddyInput, keyMasks, KeysInput, maskSecret, removeBuddy, saveAlarms, saveKeys, saveShop, SettingsError, ShopInput } from "./settings.ts";
import { readServer } from "./state.ts";
import { sandboxes } from "../test/support.ts";

const box = sandboxes();
const FP = `sha256:${"ab".repeat(32)}`;
const errorsOf = (result: { success: boolean; error?: { issues: Array<{ path: PropertyKey[]; message: string }> } }) =>
  Object.fromEntries((result.error?.issues ?? []).map((i) => [String(i.path[0] ?? "form"), i.message]));

describe("settings", () => {
  test("alarm destinations: each bad line is named, at least one destination, stored in the server spec", async () => {
    assert.deepEqual(errorsOf(AlarmsInput.safeParse({ emails: "ops@example.org\nnot-an-address", webhooks: "ftp://x.example" })), {
      emails: "not an e-mail address: not-an-address",
      webhooks: "not an http(s) URL: ftp://x.example",
    });
    assert.match(errorsOf(AlarmsInput.safeParse({ emails: "", webhooks: " \n" })).emails ?? "", /at least one/);
    const b = await box();
    const input = AlarmsInput.parse({ emails: "Ops@Example.org, ops@example.org\nnight@example.org", webhooks: "https://hooks.example/coyote" });
    await saveAlarms(b.store, "admin@example.org", input);
    const server = await readServer(b.store);
    assert.deepEqual(server.alarms.email, ["ops@example.org", "night@example.org"]);
    // The URLs (which often hold a token) are in secrets/, named from the spec.
    assert.deepEqual(server.alarms.webhooks, []);
    assert.deepEqual(await readWebhooks(server, (name) => b.store.readSecret(name)), ["https://hooks.example/coyote"]);
    const [last] = await b.store.history("server", 1);
    assert.equal(last?.author.email, "admin@example.org");
  });

  test("provider keys: checked, kept 0600 in secrets, named in the spec, shown masked only, removable", async () => {
    assert.match(errorsOf(KeysInput.safeParse({ vultr: "short", namecheapUser: "", namecheapKey: "" })).vultr ?? "", /36 capital letters/);
    assert.match(errorsOf(KeysInput.safeParse({ vultr: "", namecheapUser: "me", namecheapKey: "" })).namecheapKey ?? "", /both/);
    assert.match(errorsOf(KeysInput.safeParse({ vultr: "", namecheapUser: "me", namecheapKey: "xyz" })).namecheapKey ?? "", /32 hexadecimal/);
    const b = await box();
    const vultr = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const namecheap = "0123456789abcdef0123456789abcdef";
    await saveKeys(b.store, "admin@example.org", KeysInput.parse({ vultr, namecheapUser: "me", namecheapKey: namecheap }));
    assert.equal(statSync(b.store.path("secrets/vultr-api-key")).mode & 0o777, 0o600);
    assert.deepEqual((await readServer(b.store)).providers, { vultr: "vultr-api-key", namecheap: "namecheap-api" });
    const masks = await keyMasks(b.store);
    assert.deepEqual(masks, { vultr: "••••6789", namecheap: "me / ••••cdef" });
    assert.ok(!JSON.stringify(masks).includes(vultr.slice(0, 8)));
    // The specs history never holds a key.
    const revisions = (await b.store.history()).map((h) => h.revision);
    assert.ok(!(await b.store.diff(revisions.at(-1) ?? "", revisions[0])).includes(vultr));
    // Empty fields keep the stored keys; remove drops them.
    await saveKeys(b.store, "admin@example.org", KeysInput.parse({ vultr: "", namecheapUser: "", namecheapKey: "" }));
    assert.deepEqual(await keyMasks(b.store), masks);
    await saveKeys(b.store, "admin@example.org", KeysInput.parse({ vultr: "", namecheapUser: "", namecheapKey: "", removeVultr: "on" }));
    assert.deepEqual(await keyMasks(b.store), { namecheap: "me / ••••cdef" });
    assert.deepEqual((await readServer(b.store)).providers, { namecheap: "namecheap-api" });
    assert.equal(maskSecret("1234"), "••••");
  });

  test("buddies: validated, no two with one fingerprint or name, removable", async () => {
    assert.deepEqual(Object.keys(errorsOf(BuddyInput.safeParse({ name: "", address: "http://x.example", fingerprint: "abc" }))).sort(), ["address", "fingerprint", "name"]);
    const b = await box();
    const west = BuddyInput.parse({ name: "west", address: "https://west.example:8443", fingerprint: FP.toUpperCase().replace("SHA256", "sha256") });
    await addBuddy(b.store, "admin@example.org", west);
    await assert.rejects(addBuddy(b.store, "admin@example.org", { ...west, name: "east" }), (e: unknown) => e instanceof SettingsError && e.field === "fingerprint");
    await assert.rejects(addBuddy(b.store, "admin@example.org", { ...west, fingerprint: `sha256:${"cd".repeat(32)}` }), (e: unknown) => e instanceof SettingsError && e.field === "name");
    assert.deepEqual((await readServer(b.store)).buddies, [{ name: "west", address: "https://west.example:8443", fingerprint: FP }]);
    await removeBuddy(b.store, "admin@example.org", FP);
    assert.deepEqual((await readServer(b.store)).buddies, []);
  });

  test("the shop: a customer domain is checked; signups open only on an activated box", async () => {
    assert.match(errorsOf(ShopInput.safeParse({ customerDomain: "not a domain" })).customerDomain ?? "", /not a valid domain name/);
    const b = await box();
    await assert.rejects(saveShop(b.store, "admin@example.org", ShopInput.parse({ customerDomain: "", signupsOpen: "on" })), /signups cannot open before the server is activated/);
    await saveShop(b.store, "admin@example.org", ShopInput.parse({ customerDomain: "Box.Example", signupsOpen: "on" }), true);
    const server = await readServer(b.store);
    assert.equal(server.activated, true);
    assert.equal(server.signupsOpen, true);
    assert.equal(server.customerDomain, "box.example");
    await saveShop(b.store, "admin@example.org", ShopInput.parse({ customerDomain: "" }));
    const closed = await readServer(b.store);
    assert.equal(closed.signupsOpen, false);
    assert.equal(closed.customerDomain, undefined);
    assert.equal(closed.activated, true, "closing the shop does not deactivate the box");
  });
});
