import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { acmeChallengesPath, publishAcmeChallenge, readAcmeChallenges, withdrawAcmeChallenge } from "./acme-challenges.ts";
import { ContractError } from "./errors.ts";

const here = dirname(fileURLToPath(import.meta.url));
const ROUNDS = 25;

/** Publishes `count` values for `domain` from a separate Node process, as a second minion would. */
function publishFromProcess(stateDir: string, domain: string, count: number): Promise<void> {
  const module = JSON.stringify(join(here, "acme-challenges.ts"));
  const script = `const m = await import(${module}); for (let i = 0; i < ${count}; i++) await m.publishAcmeChallenge(${JSON.stringify(stateDir)}, ${JSON.stringify(domain)}, "v" + i);`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`publishing process exited with ${String(code)}: ${stderr}`));
    });
  });
}

describe("dns/acme-challenges.json", () => {
  let root: string;
  let count = 0;
  const fresh = async (): Promise<string> => {
    const dir = join(root, String(count++));
    await mkdir(dir, { recursive: true });
    return dir;
  };

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "acme-challenges-"));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("publishes, deduplicates and withdraws values, several at one name", async () => {
    const stateDir = await fresh();
    assert.deepEqual(await readAcmeChallenges(acmeChallengesPath(stateDir)), []);
    await publishAcmeChallenge(stateDir, "wild.test", "one");
    await publishAcmeChallenge(stateDir, "wild.test", "two");
    await publishAcmeChallenge(stateDir, "wild.test", "one");
    await withdrawAcmeChallenge(stateDir, "wild.test", "absent");
    assert.deepEqual(await readAcmeChallenges(acmeChallengesPath(stateDir)), [
      { name: "_acme-challenge.wild.test", value: "two" },
      { name: "_acme-challenge.wild.test", value: "one" },
    ]);
    await withdrawAcmeChallenge(stateDir, "wild.test", "two");
    assert.deepEqual(await readAcmeChallenges(acmeChallengesPath(stateDir)), [{ name: "_acme-challenge.wild.test", value: "one" }]);
  });

  it("loses no record when two tasks of one process publish at once", async () => {
    const stateDir = await fresh();
    const writer = async (domain: string) => {
      for (let i = 0; i < ROUNDS; i++) await publishAcmeChallenge(stateDir, domain, `v${i}`);
    };
    await Promise.all([writer("a.test"), writer("b.test")]);
    const records = await readAcmeChallenges(acmeChallengesPath(stateDir));
    assert.equal(records.length, 2 * ROUNDS, `records lost: ${records.length} of ${2 * ROUNDS}`);
  });

  it("loses no record when two processes publish at once", async () => {
    const stateDir = await fresh();
    await Promise.all([publishFromProcess(stateDir, "a.test", ROUNDS), publishFromProcess(stateDir, "b.test", ROUNDS)]);
    const records = await readAcmeChallenges(acmeChallengesPath(stateDir));
    assert.equal(records.length, 2 * ROUNDS, `records lost: ${records.length} of ${2 * ROUNDS}`);
  });

  it("refuses a damaged file naming the file and the field, and leaves it as it is", async () => {
    const stateDir = await fresh();
    const file = acmeChallengesPath(stateDir);
    await mkdir(dirname(file), { recursive: true });
    const damaged = JSON.stringify({ schemaVersion: 1, records: [{ name: "_acme-challenge.ok.test", value: "ok" }, { name: "_acme-challenge.x.test", value: "not base64url!" }] });
    await writeFile(file, damaged);
    const names = (error: unknown): boolean => {
      assert.ok(error instanceof ContractError, `expected a ContractError, got ${String(error)}`);
      assert.equal(error.file, file);
      assert.ok(error.issues.some((i) => i.field === "records[1].value" && /base64url/.test(i.message)), error.message);
      assert.ok(error.message.startsWith(`${file}: records[1].value: `), error.message);
      return true;
    };
    await assert.rejects(readAcmeChallenges(file), names);
    await assert.rejects(publishAcmeChallenge(stateDir, "ok.test", "more"), names);
    assert.equal(await readFile(file, "utf8"), damaged);
    await writeFile(file, "{\"schemaVersion\": 1, \"records\": [");
    await assert.rejects(readAcmeChallenges(file), (error: unknown) => error instanceof ContractError && error.code === "SPEC_ERR_PARSE" && error.message.includes(file));
  });

  it("refuses a malformed value or domain, naming the field, and writes nothing", async () => {
    const stateDir = await fresh();
    await assert.rejects(publishAcmeChallenge(stateDir, "wild.test", "bad value with spaces"), /records\[0\]\.value: a challenge value is base64url/);
    await assert.rejects(publishAcmeChallenge(stateDir, "Bad Domain", "ok"), /records\[0\]\.name: a challenge record is named/);
    assert.deepEqual(await readAcmeChallenges(acmeChallengesPath(stateDir)), []);
  });
});
