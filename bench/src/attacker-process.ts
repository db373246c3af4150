// The attacker of bench/attack in a process of its own, so that its work (thousands of TLS
// handshakes) does not slow the well-behaved client's own event loop and so its measurements.
// Runs the attack for the given seconds, then prints one line `REPORT {...}` and exits.
//
//   node --import tsx src/attacker-process.ts '{"target":{...},"seconds":60,"perShape":200,"openRate":50,"signIns":8}'
import { holdShapes, signInBursts, type AttackTarget } from "./lib/attacker.ts";

const [, , arg] = process.argv;
if (arg === undefined) {
  process.stderr.write("usage: attacker-process.ts JSON\n");
  process.exit(2);
}
const { target, seconds, perShape, openRate, signIns } = JSON.parse(arg) as { target: AttackTarget; seconds: number; perShape: number; openRate: number; signIns: number };
const stop = new AbortController();
setTimeout(() => stop.abort(), seconds * 1000);
// The benchmark died: stop at once rather than attack on unattended.
process.stdin.on("close", () => process.exit(1));
process.stdin.resume();
const [shapes, answers] = await Promise.all([holdShapes(target, perShape, openRate, stop.signal), signInBursts(target, signIns, stop.signal)]);
const report = { shapes: shapes.map((s) => ({ ...s, answers: [...s.answers] })), signIns: [...answers] };
process.stdout.write(`REPORT ${JSON.stringify(report)}\n`);
process.exit(0);
