/**
 * The victim of the fault-injection test: applies specs (and now and then a two-file rollback) in
 * a tight loop until it is killed. Prints `loaded` once its modules are loaded and waits for `go`
 * on standard input (so that the test can start the next victim while it checks the last one),
 * prints `ready` once the store is open, then `ok <revision>` for every write the store
 * acknowledged.
 *
 * Usage: node store-writer.ts <state root> <rollback revision> <first variant>
 */
import { once } from "node:events";
import { StateStore } from "../store.ts";
import { AUTHOR, serviceSpec } from "./specs.ts";

const [root, rollbackTo, first] = process.argv.slice(2);
if (root === undefined || rollbackTo === undefined) throw new Error("usage: store-writer.ts <root> <revision> <first variant>");
process.stdout.write("loaded\n");
let input = "";
process.stdin.setEncoding("utf8");
while (!input.includes("go\n")) {
  const [chunk] = (await once(process.stdin, "data")) as [string];
  input += chunk;
}
const store = await StateStore.open(root, { lockTimeoutMs: 30_000 });
process.stdout.write("ready\n");
// Each spec alternates between its two variants, so that nearly every write is a real change.
let blog = Number(first ?? 0);
let shop = blog;
for (let i = 0; ; i++) {
  let revision: string;
  if (i % 7 === 6) revision = (await store.rollback(rollbackTo, { author: AUTHOR })).revision;
  else if (i % 3 === 2) revision = (await store.applySpec(serviceSpec("shop", shop++ % 2), { author: AUTHOR })).revision;
  else revision = (await store.applySpec(serviceSpec("blog", blog++ % 2), { author: AUTHOR })).revision;
  process.stdout.write(`ok ${revision}\n`);
}
