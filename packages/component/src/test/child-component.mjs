// A stand-in daemon for the supervisor's processes mode: the first run of each name dies at once
// (exit code 3), every later run writes its pid and waits for SIGTERM.
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.argv[2];
const name = process.argv[3];
const crashed = join(dir, `${name}.crashed`);
if (!existsSync(crashed)) {
  writeFileSync(crashed, "");
  process.exit(3);
}
writeFileSync(join(dir, `${name}.pid`), String(process.pid));
process.on("SIGTERM", () => {
  writeFileSync(join(dir, `${name}.stopped`), String(process.pid));
  process.exit(0);
});
setInterval(() => {}, 1000);
