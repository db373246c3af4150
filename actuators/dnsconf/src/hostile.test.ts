// Hostile values against the RFC 1035 zone files Knot reads: a TXT or CAA value must stay one
// character-string of one record, never a directive (`$ORIGIN`, `$INCLUDE`), a comment or a
// second record. Checked by Knot's own loader (`knotc zone-check`, offline) and byte for byte.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { renderKnotConf, renderZoneFile } from "./render.ts";
import { requireProgram, serverSpec, serviceSpec, skipWithout, tempDir } from "./test/support.ts";
import { zonesFor } from "./zone.ts";

const HOSTILE = ['"', "\\", "\n", "\r", "\0", ";", "(", ")", "\n$ORIGIN evil.example.", "\n$INCLUDE /etc/passwd", '" ; x\nwww 60 IN A 192.0.2.66 ; "', "--", "]]", ":", "é", "\\034"];

/** Reads the character-strings of a TXT or CAA presentation line back into bytes (RFC 1035 5.1). */
function characterStrings(rdata: string): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < rdata.length; i++) {
    if (rdata[i] !== '"') continue;
    const bytes: number[] = [];
    for (i++; rdata[i] !== '"'; i++) {
      if (i >= rdata.length) throw new Error(`unterminated string in ${rdata}`);
      if (rdata[i] === "\\") {
        const digits = rdata.slice(i + 1, i + 4);
        if (/^[0-9]{3}$/.test(digits)) {
          bytes.push(Number(digits));
          i += 3;
        } else {
          bytes.push(rdata.charCodeAt(i + 1));
          i += 1;
        }
      } else bytes.push(rdata.charCodeAt(i));
    }
    out.push(Buffer.from(bytes));
  }
  return out;
}

describe("hostile values in knot zone files", { skip: skipWithout("knotc") }, () => {
  test("every TXT and CAA value stays one record that knot loads, with its exact bytes", async () => {
    const knotc = requireProgram("knotc");
    const { dir, cleanup } = await tempDir("coyote-dnsconf-hostile-");
    try {
      const records = HOSTILE.flatMap((bad, i) => [
        { type: "TXT", name: `t${i}`, text: `v=x${bad}y` },
        { type: "CAA", name: `c${i}`, tag: "iodef", value: `mailto:a${bad}@example.org` },
      ]);
      const spec = serviceSpec("shop", { domains: [{ name: "example.org", records }] });
      const zone = zonesFor(spec, serverSpec()).find((z) => z.name === "example.org");
      assert.ok(zone !== undefined);
      const text = renderZoneFile(zone, "shop", 1);
      await writeFile(join(dir, "example.org.zone"), text);
      await writeFile(join(dir, "knot.conf"), renderKnotConf(["example.org"], { zonesDir: dir, listen: ["127.0.0.1:53"], controlSocket: join(dir, "knot.sock"), rundir: dir, databaseDir: dir }));
      const check = spawnSync(knotc, ["-c", join(dir, "knot.conf"), "zone-check", "example.org"], { encoding: "utf8", timeout: 30_000 });
      assert.equal(check.status, 0, `${check.stdout}${check.stderr}`);

      const lines = text.split("\n").filter((line) => line !== "");
      assert.equal(lines.length, 3 + 1 + zone.records.length, "three comment lines, the SOA and one line per record");
      for (const line of lines.slice(3)) assert.match(line, /^[a-z0-9.*_-]+\. \d+ IN [A-Z]+ /, line);
      HOSTILE.forEach((bad, i) => {
        const txt = lines.find((line) => line.startsWith(`t${i}.example.org. `));
        const caa = lines.find((line) => line.startsWith(`c${i}.example.org. `));
        assert.ok(txt !== undefined && caa !== undefined, JSON.stringify(bad));
        assert.equal(Buffer.concat(characterStrings(txt)).toString("utf8"), `v=x${bad}y`, JSON.stringify(bad));
        assert.equal(Buffer.concat(characterStrings(caa)).toString("utf8"), `mailto:a${bad}@example.org`, JSON.stringify(bad));
      });
    } finally {
      await cleanup();
    }
  });
});
