/**
 * Holds a lock file until it is killed (or for the given time), for the lock tests. Prints
 * `locked` once it holds the lock.
 *
 * Usage: node lock-holder.ts <lock file> [hold milliseconds]
 */
import { setTimeout as sleep } from "node:timers/promises";
import { acquireFileLock } from "../lock.ts";

const [path, holdMs] = process.argv.slice(2);
if (path === undefined) throw new Error("usage: lock-holder.ts <lock file> [hold ms]");
const lock = await acquireFileLock(path, { timeoutMs: 30_000 });
process.stdout.write("locked\n");
await sleep(holdMs === undefined ? 600_000 : Number(holdMs));
await lock.release();
process.stdout.write("released\n");
