import { codedErrors } from "@coyote/log";
import catalogue from "./errors.json" with { type: "json" };

export { ACTIVATOR_ERRORS, ActivatorError, type ActivatorErrorCode } from "@coyote/spec";

/**
 * The catalogue of docker-activator's own coded errors (docs/CONTRIBUTING.md, "Conventions"):
 * failures of the daemon itself, met while it starts, that never cross the wake API. The wake
 * API's codes and their HTTP status are the contract's, `ACTIVATOR_ERRORS` in `@coyote/spec`,
 * thrown here as `ActivatorError`.
 */
export const DOCKER_ACTIVATOR_ERRORS = catalogue;

/** A code from {@link DOCKER_ACTIVATOR_ERRORS}. */
export type DockerActivatorErrorCode = keyof typeof DOCKER_ACTIVATOR_ERRORS;

/** A failure of docker-activator itself (it cannot start), with its code and cause. */
export class DockerActivatorError extends codedErrors("DockerActivatorError", DOCKER_ACTIVATOR_ERRORS) {}
