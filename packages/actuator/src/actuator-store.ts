import type { StateStore } from "@coyote/spec";

/**
 * What an actuator may do with the state store: read and write runtime files, read and write
 * secrets. Specs, their history and rollback are not in it: an actuator carries the specs out and
 * never changes them.
 */
export interface ActuatorStore {
  /** The state folder. */
  readonly root: string;
  /** A path inside the state folder. */
  path(relative: string): string;
  /** Reads and validates a file of the state folder (undefined when missing). */
  readJson: StateStore["readJson"];
  /**
   * Validates and writes a runtime file atomically.
   * @throws Error for a path under `specs/`: specs change through the state store's history only.
   */
  writeJson: StateStore["writeJson"];
  readSecret: StateStore["readSecret"];
  writeSecret: StateStore["writeSecret"];
  removeSecret: StateStore["removeSecret"];
}

/** Whether a path relative to the state folder names a spec or its history. */
function isSpecPath(relative: string): boolean {
  const first = relative.replace(/^\.\/+/, "").split("/")[0];
  return first === "specs" || first === ".git";
}

/**
 * The narrow view of a state store that the minion hands its actuators: the store itself never
 * reaches them, so none can apply, roll back or rewrite a spec.
 */
export function actuatorStore(store: StateStore): ActuatorStore {
  return Object.freeze({
    root: store.root,
    path: (relative: string) => store.path(relative),
    readJson: (relative, schema) => store.readJson(relative, schema),
    writeJson: (relative, schema, value) => {
      if (isSpecPath(relative)) return Promise.reject(new Error(`writing ${relative}: specs change through the state store's history, never from an actuator`));
      return store.writeJson(relative, schema, value);
    },
    readSecret: (name) => store.readSecret(name),
    writeSecret: (name, data) => store.writeSecret(name, data),
    removeSecret: (name) => store.removeSecret(name),
  } satisfies ActuatorStore);
}
