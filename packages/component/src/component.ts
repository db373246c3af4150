import type { CoyoteLogger } from "@coyote/log";
import type { ComponentStats } from "@coyote/spec";

/**
 * The five daemons (docs/ARCHITECTURE.md, "Components"), in the order `coyote up` starts them: the minion first (it writes
 * the files the others read), the crm last (it is what people see).
 */
export const COMPONENT_NAMES = ["minion", "docker-activator", "snitch-proxy", "coyote-listener", "coyote-crm"] as const;

/** The name of one of the five daemons. */
export type ComponentName = (typeof COMPONENT_NAMES)[number];

/** What a component is given when it starts. It reads no environment of its own (docs/CONTRIBUTING.md, "Conventions"). */
export interface ComponentContext {
  /** The component's name, as in {@link COMPONENT_NAMES}. */
  readonly name: string;
  /** The state folder (`COYOTE_STATE`) every component reads and writes its files in. */
  readonly stateDir: string;
  /** The component's logger, writing to `logs/<name>.log` in the state folder. */
  readonly logger: CoyoteLogger;
  /** Aborted when the component is asked to stop, for work that takes a signal. */
  readonly signal: AbortSignal;
}

/** A started component. */
export interface RunningComponent {
  /**
   * Settles when the component ends by itself or after {@link RunningComponent.stop}: it resolves
   * on a clean end and rejects with the reason when the component died.
   */
  readonly done: Promise<void>;
  /** Asks the component to stop and resolves when it has (its `done` then resolves too). */
  stop(): Promise<void>;
  /**
   * What the component adds to its `stats/<name>.json` (per-host traffic, units, counters). The
   * supervisor writes that file for every component, so a component reports through this rather
   * than writing the file itself.
   */
  readonly stats?: () => Partial<Pick<ComponentStats, "hosts" | "units" | "counters">>;
}

/**
 * One component as the supervisor and the CLI know it. A component whose package does not yet
 * implement it has no `start` and says in `plannedIn` where it is being built, so that `coyote up`
 * can say so plainly instead of pretending to run it.
 */
export interface ComponentDefinition {
  /** The component's name. */
  readonly name: string;
  /** One line on what the component does. */
  readonly summary: string;
  /** Starts the component; resolves once it is up (listening, watching, ...). */
  readonly start?: (context: ComponentContext) => Promise<RunningComponent>;
  /** Where a component without `start` is being built, such as `the buddy protocol`. */
  readonly plannedIn?: string;
}

/** A definition that can be started. */
export type RunnableComponent = ComponentDefinition & Required<Pick<ComponentDefinition, "start">>;

/** Tells whether a definition can be started. */
export function isRunnable(definition: ComponentDefinition): definition is RunnableComponent {
  return typeof definition.start === "function";
}
