// Where snitch-proxy listens. The proxy reads no spec: the minion (snickers) writes the server
// spec's ports and bind address into the `listen` block of proxy/routes.json. Until it has, the
// server spec's defaults apply. A routes file that is missing or refused gives way to the last
// good copy the workers keep (proxy/last-good/routes.json), as the routes themselves do.
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { CoyoteLogger } from "@coyote/log";
import { ProxyRoutes, parseJson, proxyListenFor, proxyRuntimePaths, serverOrDefaults, type ProxyListen } from "@coyote/spec";

/** The routes file and its last good copy, in a state folder. */
function files(stateDir: string): { routes: string; lastGood: string } {
  const paths = proxyRuntimePaths(stateDir);
  return { routes: paths.routes, lastGood: join(paths.root, "last-good", "routes.json") };
}

/** Reads a routes file; undefined when it is missing or refused (then `problem` says why). */
async function readRoutes(file: string): Promise<{ doc: ProxyRoutes | undefined; problem?: string }> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { doc: undefined };
    return { doc: undefined, problem: `reading ${file}: ${(error as Error).message}` };
  }
  try {
    return { doc: parseJson(ProxyRoutes, text, "proxy/routes.json") };
  } catch (error) {
    return { doc: undefined, problem: (error as Error).message };
  }
}

/**
 * Where the proxy listens now: the `listen` block of `proxy/routes.json`, of its last good copy when
 * the file is missing or refused, or the server spec's defaults when neither has one.
 * @param logger told once per call when the routes file is refused.
 */
export async function readListenSettings(stateDir: string, logger?: CoyoteLogger): Promise<ProxyListen> {
  const { routes, lastGood } = files(stateDir);
  const current = await readRoutes(routes);
  if (current.problem !== undefined) logger?.event("ERROR", { file: routes, problem: current.problem }, "routes file refused; listening where the last good one says");
  const doc = current.doc ?? (await readRoutes(lastGood)).doc;
  return doc?.listen ?? proxyListenFor(serverOrDefaults(undefined));
}

/** Whether two listen settings are the same. */
export function sameListen(a: ProxyListen, b: ProxyListen): boolean {
  return a.host === b.host && a.https === b.https && a.http === b.http;
}

/** A running watch of the listen settings. */
export interface ListenWatch {
  stop(): void;
}

/**
 * Calls `onChange` whenever the listen settings move away from the ones in service (`current` at
 * first). The routes file is checked every `intervalMs` (its stamp first: a file of many routes is
 * read only when replaced). `onChange` resolves true once the new settings are in service, false
 * to stop watching.
 */
export function watchListenSettings(stateDir: string, current: ProxyListen, onChange: (next: ProxyListen) => Promise<boolean>, options: { intervalMs?: number; logger?: CoyoteLogger } = {}): ListenWatch {
  const { routes } = files(stateDir);
  let inService = current;
  let lastStamp: string | undefined;
  let checking = false;
  let stopped = false;
  const check = async () => {
    const stamp = await stat(routes).then((info) => `${String(info.mtimeMs)}:${String(info.size)}:${String(info.ino)}`, () => "");
    if (stamp === lastStamp) return;
    lastStamp = stamp;
    const next = await readListenSettings(stateDir, options.logger);
    if (stopped || sameListen(next, inService)) return;
    if (await onChange(next)) {
      inService = next;
      return;
    }
    stopped = true;
    clearInterval(timer);
  };
  const timer = setInterval(() => {
    if (checking || stopped) return;
    checking = true;
    check()
      .catch((error: unknown) => options.logger?.event("ERROR", { err: error, file: routes }, "checking where the proxy listens"))
      .finally(() => (checking = false));
  }, options.intervalMs ?? 1000);
  timer.unref();
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
