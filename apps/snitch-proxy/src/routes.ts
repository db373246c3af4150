import { watch, type FSWatcher } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { dirname, basename, join } from "node:path";
import type { CoyoteLogger } from "@coyote/log";
import { LastGood, ProxyRoutes, parseJson } from "@coyote/spec";

/** Where `proxy/routes.json` sends one host and path prefix. */
export type Upstream = ProxyRoutes["routes"][number]["upstream"];

/** One route as the proxy uses it. */
export interface Route {
  readonly host: string;
  readonly pathPrefix: string;
  readonly serviceId: string;
  readonly upstream: Upstream;
  /** Whether answers carry Strict-Transport-Security (the route opts in). */
  readonly hsts?: boolean;
}

/**
 * The routes of one `proxy/routes.json`, indexed by host. A table is never changed: a reload
 * builds a new one and swaps it in, so a request that already chose its route keeps it.
 */
export class RouteTable {
  readonly #byHost = new Map<string, Route[]>();
  /** The limits the file carries, if any. */
  readonly limits: ProxyRoutes["limits"];

  /**
   * Indexes a validated routes document.
   * @param doc the document; an empty table when omitted.
   */
  constructor(doc?: ProxyRoutes) {
    this.limits = doc?.limits;
    for (const route of doc?.routes ?? []) {
      const list = this.#byHost.get(route.host) ?? [];
      list.push(route);
      this.#byHost.set(route.host, list);
    }
    // Longest prefix first, so the first match is the most specific one.
    for (const list of this.#byHost.values()) list.sort((a, b) => b.pathPrefix.length - a.pathPrefix.length);
  }

  /** How many hosts have routes. */
  get hostCount(): number {
    return this.#byHost.size;
  }

  /** Whether any route names the host. */
  hasHost(host: string): boolean {
    return this.#byHost.has(host);
  }

  /**
   * Finds the route for a request: the longest path prefix of the host that matches on a
   * segment boundary (`/app` matches `/app` and `/app/x`, not `/apple`).
   */
  match(host: string, path: string): Route | undefined {
    // The host's own routes, else a wildcard route one label up (`*.shop.test` for `a.shop.test`).
    const dot = host.indexOf(".");
    const list = this.#byHost.get(host) ?? (dot > 0 ? this.#byHost.get(`*${host.slice(dot)}`) : undefined);
    if (!list) return undefined;
    for (const route of list) {
      const prefix = route.pathPrefix;
      if (prefix === "/" || path === prefix || path.startsWith(prefix.endsWith("/") ? prefix : `${prefix}/`) || path.startsWith(`${prefix}?`)) return route;
    }
    return undefined;
  }
}

/**
 * Keeps the current {@link RouteTable} of `proxy/routes.json`: loads it at start and again
 * whenever the file is replaced (the minion writes it atomically, by rename, so the folder is
 * watched rather than the file). A file that fails to parse or validate, or that vanished, is
 * logged with its field and the last good table stays in service; that table is kept on disk
 * (`proxy/last-good/routes.json`), so a proxy restarted while the file is bad still serves every
 * site it served before.
 */
export class RouteSource {
  readonly #file: string;
  readonly #logger: CoyoteLogger;
  readonly #onChange: (table: RouteTable) => void;
  #table = new RouteTable();
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #loading: Promise<void> = Promise.resolve();
  #lastText: string | undefined;
  #lastStamp = "";
  readonly #lastGood: LastGood<typeof ProxyRoutes>;
  #loaded = false;

  /**
   * Makes the source; nothing is read until {@link RouteSource.start}.
   * @param file the routes file.
   * @param logger where reloads and bad files are logged.
   * @param onChange called with each new table (after the first load too).
   */
  constructor(file: string, logger: CoyoteLogger, onChange: (table: RouteTable) => void = () => undefined) {
    this.#file = file;
    this.#logger = logger;
    this.#onChange = onChange;
    this.#lastGood = new LastGood({ schema: ProxyRoutes, label: join("proxy", basename(file)), keepFile: join(dirname(file), "last-good", basename(file)) });
  }

  /** The table in service. */
  get table(): RouteTable {
    return this.#table;
  }

  /** Loads the file (a missing one is an empty table) and starts watching its folder. */
  async start(): Promise<void> {
    await this.reload();
    try {
      this.#watcher = watch(dirname(this.#file), { persistent: false }, (_event, name) => {
        if (name === null || name === basename(this.#file)) this.#schedule();
      });
      this.#watcher.on("error", (error) => this.#logger.event("ERROR", { err: error, file: this.#file }, "watching the routes folder"));
    } catch (error) {
      // The folder may not exist yet on a fresh box; the periodic check below still finds the file.
      this.#logger.warn({ err: error, file: this.#file }, "cannot watch the routes folder yet; checking every second");
    }
    // A watch can miss a rename on some file systems; a cheap periodic check makes the file the truth.
    this.#timer = setInterval(() => this.#schedule(), 1000);
    this.#timer.unref();
  }

  /** Stops watching. */
  stop(): Promise<void> {
    this.#watcher?.close();
    if (this.#timer) clearInterval(this.#timer);
    return this.#loading;
  }

  /** Reads the file now and swaps the table in when it changed and is valid. */
  reload(): Promise<void> {
    this.#loading = this.#loading.then(() => this.#load());
    return this.#loading;
  }

  #schedule(): void {
    void this.reload();
  }

  async #load(): Promise<void> {
    // The file is read only when its stamp moved: the periodic check then costs one stat, not a
    // read of what may be a hundred thousand routes.
    const stamp = await stat(this.#file).then((info) => `${String(info.mtimeMs)}:${String(info.size)}:${String(info.ino)}`, () => "");
    if (stamp !== "" && stamp === this.#lastStamp) return;
    this.#lastStamp = stamp;
    let text: string;
    try {
      text = await readFile(this.#file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") this.#logger.event("ERROR", { err: error, file: this.#file }, "reading the routes");
      text = "";
    }
    if (text === this.#lastText) return;
    // Remembered before the outcome, so that the same bad text is logged once, not every second.
    this.#lastText = text;
    const label = join("proxy", basename(this.#file));
    const state = await this.#lastGood.refresh(() => Promise.resolve(text === "" ? undefined : parseJson(ProxyRoutes, text, label)));
    if (state.problem !== undefined) this.#logger.event("ERROR", { file: this.#file, problem: state.problem }, "routes file refused; the previous routes stay in service");
    if (state.changed || !this.#loaded) {
      this.#loaded = true;
      this.#swap(new RouteTable(state.value));
    }
  }

  #swap(table: RouteTable): void {
    this.#table = table;
    this.#logger.event("CONFIG_RELOADED", { what: "routes", hosts: table.hostCount, maxConnections: table.limits?.maxConnections });
    this.#onChange(table);
  }
}
