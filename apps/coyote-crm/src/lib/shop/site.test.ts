import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { removeStarterSite, siteDir, starterSiteHtml, writeStarterSite } from "./site.ts";

describe("starter site", () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it("welcomes visitors to the domain and names Coyote", () => {
    const html = starterSiteHtml("example.org");
    assert.match(html, /^<!doctype html>/);
    assert.match(html, /<h1>Welcome to example\.org<\/h1>/);
    assert.match(html, /<title>Welcome to example\.org<\/title>/);
    assert.match(html, /Hosted by Coyote/);
    // A page without an icon makes browsers ask for /favicon.ico, which the site does not have.
    assert.match(html, /<link rel="icon" href="data:,">/);
    assert.match(starterSiteHtml("<x>"), /Welcome to &#60;x&#62;/);
  });

  it("writes index.html into sites/<id>, refuses an existing folder, and removes it", async () => {
    const state = await mkdtemp(join(tmpdir(), "coyote-site-"));
    dirs.push(state);
    const dir = await writeStarterSite(state, "example-org", "example.org");
    assert.equal(dir, siteDir(state, "example-org"));
    assert.equal(dir, join(state, "sites", "example-org"));
    assert.match(await readFile(join(dir, "index.html"), "utf8"), /Welcome to example\.org/);
    await assert.rejects(writeStarterSite(state, "example-org", "example.org"), /writing the starter site of example-org: cannot create/);
    await removeStarterSite(dir);
    await assert.rejects(stat(dir), { code: "ENOENT" });
  });
});
