/**
 * The one place of this package that reads the process environment: the git commands of the
 * specs repository inherit it, less the variables that would point them elsewhere.
 */

/**
 * The process environment without the `GIT_*` variables (GIT_DIR, GIT_INDEX_FILE,
 * GIT_WORK_TREE from a hook...), which would point git commands at another repository.
 */
export function environmentWithoutGit(): NodeJS.ProcessEnv {
  // Built up from the inherited variables (a cast, since some type packages make NODE_ENV required).
  const env = {} as NodeJS.ProcessEnv;
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("GIT_")) env[key] = value;
  return env;
}
