import type { ComponentContext, RunningComponent } from "@coyote/component";
import { bundledActuators } from "./bundled.ts";
import { Minion } from "./minion.ts";

/**
 * Starts the minion as a component of `coyote up` / `coyote run minion`: the bundled actuators
 * for the server spec, the plugin folder `<state>/actuators`, and the reconcile loop.
 */
export async function startMinion(context: ComponentContext): Promise<RunningComponent> {
  const minion = new Minion({ stateDir: context.stateDir, logger: context.logger, actuators: (server) => bundledActuators(server, context.stateDir) });
  await minion.start();
  let stopped: Promise<void> | undefined;
  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => (finish = resolve));
  const stop = () => {
    stopped ??= minion.stop().finally(finish);
    return stopped;
  };
  context.signal.addEventListener("abort", () => void stop(), { once: true });
  return { done, stop };
}
