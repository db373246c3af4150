// Runs a minion with the test file actuator until SIGTERM, for the crash tests: the parent kills
// it with SIGKILL at random moments and checks that a restarted minion always converges.
import { join } from "node:path";
import { createLogger, logFileFor } from "@coyote/log";
import { Minion } from "../minion.ts";
import { createFileActuator } from "./file-actuator.ts";

const stateDir = process.argv[2];
if (!stateDir) throw new Error("usage: minion-child.ts STATE_DIR");
const logger = createLogger({ component: "minion", file: logFileFor(stateDir, "minion") });
const files = createFileActuator({ dir: join(stateDir, "files-daemon"), slowMs: 3 });
const minion = new Minion({ stateDir, logger, actuators: () => [files], debounceMs: 5, backoffInitialMs: 20, backoffMaxMs: 200, batchSize: 8 });
await minion.start();
process.stdout.write("started\n");
process.once("SIGTERM", () => {
  void minion.stop().then(() => logger.close()).then(() => process.exit(0));
});
