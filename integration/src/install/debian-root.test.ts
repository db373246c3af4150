// The Debian root's cache: keyed by what goes into the root, reused without a build when present.
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { tempDirs } from "@coyote/testing";
import { debianRoot, ROOT_PACKAGES, rootKey } from "./debian-root.ts";

const temp = tempDirs("coyote-root-cache-");

describe("the Debian root's cache", () => {
  it("keys the root by its package list, in any order", () => {
    assert.equal(rootKey(), rootKey([...ROOT_PACKAGES].reverse()));
    assert.notEqual(rootKey(), rootKey([...ROOT_PACKAGES, "hello"]));
    assert.match(rootKey(), /^[0-9a-f]{16}$/);
  });

  it("reuses a cached root without building", async () => {
    const cache = temp();
    await writeFile(join(cache, `debian-12-${rootKey()}.tar`), "a root");
    let builds = 0;
    const root = await debianRoot({ cache, onBuild: () => builds++ });
    assert.deepEqual({ built: root.built, builds, tarball: root.tarball }, { built: false, builds: 0, tarball: join(cache, `debian-12-${rootKey()}.tar`) });
  });

  it("refuses a package name that is not one", async () => {
    await assert.rejects(debianRoot({ cache: temp(), packages: ["curl", "--foreign"] }), /"--foreign" is not a Debian package name/);
  });
});
