import { migrateSpecs } from "../store-migrate.ts";
import type { StateMigration } from "./types.ts";

/**
 * 1 → 2. A state folder from before the version file may hold specs written before today's rules:
 * inline password hashes, backend environment values and alarm webhook URLs move to `secrets/`,
 * and an absolute static root is confined to the service's site folder. Idempotent: a spec already
 * in today's shape is left alone; a run killed between writing a secret and committing the spec
 * writes the same secret again (secret names are derived from their content).
 */
export const secretsOutOfSpecs: StateMigration = {
  from: 1,
  to: 2,
  description: "secret values moved out of specs into secrets/, static roots confined to their site folders",
  up: ({ repo, secrets }) => migrateSpecs(repo, secrets),
};
