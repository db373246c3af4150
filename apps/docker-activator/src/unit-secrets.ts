import { parseEnvSecret } from "@coyote/spec";
import type { ActivatorUnits } from "@coyote/spec";

type Unit = ActivatorUnits["units"][number];

/**
 * Adds to each unit the environment values of the secret it names (`envSecret`), read from
 * `secrets/` when the units are loaded: units.json names the secret and never holds the values.
 * @param read reads a secret by name (the state store's `readSecret`).
 * @throws Error naming the unit and the secret when the secret is missing or not an environment,
 *   so that the loader keeps the last good units and raises its alarm.
 */
export async function withUnitSecrets(document: ActivatorUnits, read: (name: string) => Promise<Uint8Array | undefined>): Promise<ActivatorUnits> {
  const units: Unit[] = [];
  for (const unit of document.units) {
    if (unit.envSecret === undefined) {
      units.push(unit);
      continue;
    }
    const bytes = await read(unit.envSecret);
    if (bytes === undefined) throw new Error(`unit ${unit.id}: its environment secret ${unit.envSecret} is missing from secrets/`);
    units.push({ ...unit, env: { ...parseEnvSecret(bytes, unit.envSecret), ...unit.env } });
  }
  return { ...document, units };
}

/**
 * The unit as it may be written outside `secrets/` (a container label, the process table on
 * disk): without the values that came from its environment secret (every value, since the
 * store moves all of a backend's values into it). The secret's name stays, so the unit can be
 * made whole again.
 */
export function withoutSecretValues(unit: Unit): Unit {
  return unit.envSecret === undefined ? unit : { ...unit, env: {} };
}
