// Finding the system programs the box runs or a test needs (knotd, Postfix's master, prosodyctl,
// ...), by one rule: the first folder of a list where the name is an executable file.
import { accessSync, constants } from "node:fs";
import { join } from "node:path";

/**
 * The absolute path of the executable `name` in the first of `dirs` that has one, or undefined.
 * Empty folder names (an empty PATH entry) are skipped, not read as the working folder.
 */
export function findExecutable(name: string, dirs: readonly string[]): string | undefined {
  for (const dir of dirs) {
    if (dir === "") continue;
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}
