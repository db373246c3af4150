/**
 * `@coyote/actuator-backends`: the sleeping-capable backends of hosted services. Web
 * backends of kind `container` or `process` become docker-activator units: one fragment per
 * service under `<stateDir>/activator/units.d/<id>.json`, combined once per batch into
 * `<stateDir>/activator/units.json`, which docker-activator watches.
 */
export {
  BACKENDS_ACTUATOR_ID,
  BACKENDS_CONDITION,
  createBackendsActuator,
  FRAGMENTS_DIR,
  planBackends,
  UNITS_FILE,
  unitOf,
} from "./actuator.ts";
export type { BackendsActuatorOptions, BackendsObserved, BackendsStep, Unit } from "./actuator.ts";
export { BACKENDS_ERRORS, BackendsError } from "./errors.ts";
export type { BackendsErrorCode } from "./errors.ts";
