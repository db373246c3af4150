import type { ComponentDefinition } from "@coyote/component";
import { readActivatorEnv } from "./env.ts";
import { startActivator } from "./start.ts";

export { ActivatorClient } from "@coyote/spec";
export { Activator, type ActivatorOptions, type AlarmSink, type DownReason } from "./activator.ts";
export { DockerRuntime, LABELS, pingEngine, type DockerRuntimeOptions } from "./docker-runtime.ts";
export { DEFAULT_DOCKER_SOCKET, readActivatorEnv, type ActivatorEnv } from "./env.ts";
export { ACTIVATOR_ERRORS, ActivatorError, DOCKER_ACTIVATOR_ERRORS, DockerActivatorError, type ActivatorErrorCode, type DockerActivatorErrorCode } from "./errors.ts";
export { probeOnce, waitReady, type ProbeResult, type ReadyOutcome } from "./probe.ts";
export { DEFAULT_PROCESS_UNIT_NETWORK, ProcessUnitNetwork, type UnitLink } from "./process-network.ts";
export { PROCESS_LOGS_DIR, PROCESSES_FILE, ProcessRuntime, type ProcessRuntimeOptions } from "./process-runtime.ts";
export { unitEnvironment, unitHash, type DumpHook, type ObservedUnit, type Runtime, type Unit } from "./runtime.ts";
export { startControlServer, type ControlServer } from "./server.ts";
export { startActivator, UNITS_FILE, type ActivatorStartOptions, type RunningActivator } from "./start.ts";

/**
 * The docker-activator component as `coyote up` and `coyote run` know it: the Docker socket and
 * the PATH of process units come from the environment (env.ts), everything else from the state
 * folder.
 */
export const component: ComponentDefinition = {
  name: "docker-activator",
  summary: "Starts containers on first request, stops idle ones, keeps within the memory budget",
  start: (context) => {
    const env = readActivatorEnv();
    const user = env.unitUser;
    return startActivator(context, {
      dockerSocket: env.dockerSocket,
      baseEnv: env.baseEnv,
      processUnitNetwork: env.processUnitNetwork,
      writeStats: false,
      containerConfinement: { network: env.unitNetwork, ...(user === undefined ? {} : { user: `${user.uid}:${user.gid}` }) },
      ...(user === undefined ? {} : { processUnitUser: user }),
    });
  },
};
