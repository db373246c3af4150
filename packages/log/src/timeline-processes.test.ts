// The timeline's reason to exist: three real processes, each with its own log file and its own
// clock reading, merged back into the order in which things truly happened.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { formatTimeline, mergeTimeline, readLogFile } from "./index.ts";
import type { EventName, LogRecord } from "./index.ts";
import { INDEX_URL, startScript, tempDir, writeScript } from "./test/support.ts";

// Each child logs exactly what the parent tells it, one command per stdin line, and answers "ok"
// once the record is written; the parent waits for that answer before telling the next child,
// so the true global order of the records is the order of the commands.
const CHILD = `import { createInterface } from "node:readline";
import { createLogger } from ${JSON.stringify(INDEX_URL)};
const [component, file] = process.argv.slice(2);
const log = createLogger({ component, file });
process.stdout.write("ready\\n");
for await (const line of createInterface({ input: process.stdin })) {
  const { event, fields, msg } = JSON.parse(line);
  log.event(event, fields, msg);
  process.stdout.write("ok\\n");
}
await log.close();
`;

interface Child {
  component: string;
  file: string;
  process: ChildProcessWithoutNullStreams;
  replies: AsyncIterator<string>;
}

async function reply(child: Child): Promise<string> {
  const next = await child.replies.next();
  if (next.done === true) throw new Error(`${child.component} ended early`);
  return next.value;
}

describe("timeline across three real processes", () => {
  let dir = "";
  let cleanup: () => Promise<void> = () => Promise.resolve();
  const children: Child[] = [];
  before(async () => {
    ({ dir, cleanup } = await tempDir());
    const script = await writeScript(dir, "child", CHILD);
    for (const component of ["snitch-proxy", "docker-activator", "minion"]) {
      const file = join(dir, "logs", `${component}.log`);
      const child = startScript(script, [component, file]);
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
      child.on("exit", (code) => {
        if (code !== 0) process.stderr.write(`${component} exited with ${String(code)}: ${stderr}\n`);
      });
      children.push({ component, file, process: child, replies: createInterface({ input: child.stdout })[Symbol.asyncIterator]() });
    }
    for (const child of children) assert.equal(await reply(child), "ready");
  });
  after(async () => {
    for (const child of children) {
      if (child.process.exitCode === null) {
        child.process.stdin.end();
        await once(child.process, "exit");
      }
    }
    await cleanup();
  });

  test("mergeTimeline returns interleaved events of three processes in their true order", async () => {
    const [proxy, activator, minion] = children;
    assert.ok(proxy && activator && minion);
    // A request woken through the activator while the minion reconciles, then a second request:
    // every component's turns are interleaved with the others', often several in a row.
    const script: [Child, EventName, Record<string, unknown>][] = [
      [minion, "RECONCILE_STARTED", { serviceId: "alice-blog" }],
      [proxy, "REQUEST_RECEIVED", { requestId: "req-aaaaaaaa", serviceId: "alice-blog" }],
      [proxy, "REQUEST_SENT", { requestId: "req-aaaaaaaa", serviceId: "alice-blog" }],
      [activator, "REQUEST_RECEIVED", { requestId: "req-aaaaaaaa", serviceId: "alice-blog" }],
      [minion, "RESULT_PRODUCED", { serviceId: "alice-blog" }],
      [activator, "BACKEND_WOKEN", { requestId: "req-aaaaaaaa", serviceId: "alice-blog" }],
      [minion, "RECONCILE_DONE", { serviceId: "alice-blog" }],
      [activator, "SERVICE_UP", { serviceId: "alice-blog" }],
      [activator, "RESPONSE_SENT", { requestId: "req-aaaaaaaa", serviceId: "alice-blog" }],
      [proxy, "RESPONSE_RECEIVED", { requestId: "req-aaaaaaaa", serviceId: "alice-blog" }],
      [minion, "RECONCILE_STARTED", { serviceId: "bob-shop" }],
      [proxy, "RESPONSE_SENT", { requestId: "req-aaaaaaaa", serviceId: "alice-blog" }],
      [proxy, "REQUEST_RECEIVED", { requestId: "req-bbbbbbbb", serviceId: "bob-shop" }],
      [minion, "RECONCILE_FAILED", { serviceId: "bob-shop" }],
      [activator, "ERROR", { requestId: "req-bbbbbbbb", serviceId: "bob-shop" }],
      [minion, "ALARM_RAISED", { serviceId: "bob-shop" }],
      [proxy, "RESPONSE_SENT", { requestId: "req-bbbbbbbb", serviceId: "bob-shop", status: 502 }],
      [activator, "SERVICE_DOWN", { serviceId: "bob-shop" }],
    ];
    for (const [step, [child, event, fields]] of script.entries()) {
      child.process.stdin.write(JSON.stringify({ event, fields: { ...fields, step }, msg: `step ${step}` }) + "\n");
      assert.equal(await reply(child), "ok");
    }
    for (const child of children) {
      child.process.stdin.end();
      await once(child.process, "exit");
      assert.equal(child.process.exitCode, 0);
    }

    // Each file alone holds only its own component's steps, so the order below is the merge's work.
    const perFile: number[][] = [];
    for (const child of children) {
      const steps: number[] = [];
      for await (const record of readLogFile(child.file)) steps.push(record.step as number);
      perFile.push(steps);
    }
    assert.deepEqual(perFile, [
      [1, 2, 9, 11, 12, 16],
      [3, 5, 7, 8, 14, 17],
      [0, 4, 6, 10, 13, 15],
    ]);

    const { records, warnings } = await mergeTimeline(children.map((child) => child.file));
    assert.deepEqual(warnings, []);
    assert.deepEqual(
      records.map((r) => r.step),
      script.map((_, step) => step),
      "the merged timeline is the true global order",
    );
    assert.deepEqual(
      records.map((r) => [r.component, r.event]),
      script.map(([child, event]) => [child.component, event]),
    );
    assert.equal(new Set(records.map((r) => r.pid)).size, 3, "three processes wrote them");
    assert.ok(records.every((r, i) => i === 0 || r.time > (records[i - 1] as LogRecord).time), "times strictly increase");

    const oneRequest = await mergeTimeline(
      children.map((child) => child.file),
      { requestId: "req-aaaaaaaa" },
    );
    assert.deepEqual(
      oneRequest.records.map((r) => r.step),
      [1, 2, 3, 5, 8, 9, 11],
    );
    const printed = formatTimeline(oneRequest.records).split("\n");
    assert.equal(printed.length, 7);
    assert.match(printed[0] ?? "", /^\S+Z {2}snitch-proxy {5}REQUEST_RECEIVED {2}svc=alice-blog req=req-aaaaaaaa {2}step 1 {2}step=1$/);
  });
});
