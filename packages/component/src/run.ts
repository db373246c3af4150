import { createLogger, logFileFor } from "@coyote/log";
import type { RunnableComponent } from "./component.ts";
import { startStatsHeartbeat } from "./stats.ts";

/**
 * Runs one component alone in the foreground until SIGINT or SIGTERM (`coyote run <name>`, and each
 * child of the supervisor's `processes` mode).
 * @returns the exit code: 0 after a clean stop, 1 when the component died or could not start.
 */
export async function runAlone(definition: RunnableComponent, options: { stateDir: string; logLevel?: "debug" | "info" | "warn" | "error" }): Promise<number> {
  const logger = createLogger({ component: definition.name, file: logFileFor(options.stateDir, definition.name), level: options.logLevel ?? "info" });
  const controller = new AbortController();
  try {
    const running = await definition.start({ name: definition.name, stateDir: options.stateDir, logger, signal: controller.signal });
    const stopStats = startStatsHeartbeat(options.stateDir, definition.name, running.stats ? { extra: running.stats } : {});
    const stop = () => {
      controller.abort();
      void running.stop();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    try {
      await running.done;
      return 0;
    } catch (error) {
      logger.event("ERROR", { err: error }, `${definition.name} died`);
      return 1;
    } finally {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      await stopStats();
    }
  } catch (error) {
    logger.event("ERROR", { err: error }, `${definition.name} could not start`);
    return 1;
  } finally {
    await logger.close();
  }
}
