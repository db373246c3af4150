import { statSync } from "node:fs";
import { readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";

interface Entry<T> {
  readonly mtimeMs: number;
  readonly size: number;
  readonly value: T;
}

/**
 * The parsed files of one folder, kept between calls and re-read only when the folder changed.
 *
 * Actuators that share a folder between services (one zone file per domain, one VirtualHost file
 * per domain) must look at every file to know who owns what. Reading them all for every service
 * makes a resync of n services cost n² reads; this cache makes a resync with nothing changed cost
 * one `stat` of the folder per service. It relies on every writer replacing files by rename (as
 * `writeFileAtomic` does), which changes the folder's mtime; after a change only the files whose
 * own mtime or size moved are read again.
 */
export class DirectoryCache<T> {
  readonly #dir: string;
  readonly #accept: (name: string) => boolean;
  readonly #parse: (name: string, text: string) => T | undefined;
  #folderMtime: number | undefined;
  #entries = new Map<string, Entry<T>>();
  #view: ReadonlyMap<string, T> = new Map();

  /**
   * Makes an empty cache; nothing is read before {@link DirectoryCache.read}.
   * @param dir the folder.
   * @param accept which file names count (temp files of atomic writes should not).
   * @param parse turns a file into its value; undefined leaves the file out.
   */
  constructor(dir: string, accept: (name: string) => boolean, parse: (name: string, text: string) => T | undefined) {
    this.#dir = dir;
    this.#accept = accept;
    this.#parse = parse;
  }

  /**
   * The folder's files by name, current as of this call. A missing folder has none. The same map
   * object is returned for as long as the folder is unchanged, so that callers can memoize what
   * they derive from it (see {@link memoizeByIdentity}).
   */
  async read(): Promise<ReadonlyMap<string, T>> {
    let folderMtime: number;
    try {
      folderMtime = (await stat(this.#dir)).mtimeMs;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      if (this.#entries.size > 0 || this.#folderMtime !== undefined) {
        this.#entries = new Map();
        this.#view = new Map();
      }
      this.#folderMtime = undefined;
      return this.#view;
    }
    if (folderMtime !== this.#folderMtime) {
      const next = new Map<string, Entry<T>>();
      for (const name of (await readdir(this.#dir)).filter(this.#accept).sort()) {
        const path = join(this.#dir, name);
        try {
          // Synchronous on purpose: a folder of a thousand files is stat'ed after every change
          // to it, and a thousand promise round trips through the thread pool cost far more
          // than the calls themselves (most of a first converge of 1,000 services went there).
          const info = statSync(path);
          const old = this.#entries.get(name);
          if (old && old.mtimeMs === info.mtimeMs && old.size === info.size) {
            next.set(name, old);
            continue;
          }
          const value = this.#parse(name, await readFile(path, "utf8"));
          if (value !== undefined) next.set(name, { mtimeMs: info.mtimeMs, size: info.size, value });
        } catch (error) {
          // Removed between the listing and the read: as good as never there.
          if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
        }
      }
      this.#entries = next;
      // The mtime taken before the listing: a change made meanwhile is seen by the next call.
      this.#folderMtime = folderMtime;
      const view = new Map<string, T>();
      for (const [name, entry] of next) view.set(name, entry.value);
      this.#view = view;
    }
    return this.#view;
  }
}

/**
 * Wraps a function of an object so that it runs once per object: for indexes derived from a
 * {@link DirectoryCache} map, which keeps its identity while the folder is unchanged.
 */
export function memoizeByIdentity<K extends object, V>(derive: (key: K) => V): (key: K) => V {
  const memo = new WeakMap<K, V>();
  return (key) => {
    if (memo.has(key)) return memo.get(key) as V;
    const value = derive(key);
    memo.set(key, value);
    return value;
  };
}

/**
 * One file, parsed, re-read only when its mtime or size changed: for a small index that every
 * service's observe consults.
 */
export class FileCache<T> {
  readonly #path: string;
  readonly #parse: (text: string) => T;
  #stamp: string | undefined;
  #value: T | undefined;

  /**
   * Makes the cache; nothing is read before {@link FileCache.read}.
   * @param path the file.
   * @param parse turns its text into the value (may throw; nothing is cached then).
   */
  constructor(path: string, parse: (text: string) => T) {
    this.#path = path;
    this.#parse = parse;
  }

  /** The parsed file, or undefined when it does not exist. */
  async read(): Promise<T | undefined> {
    let stamp: string;
    try {
      const info = await stat(this.#path);
      stamp = `${info.mtimeMs}:${info.size}:${info.ino}`;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      this.#stamp = undefined;
      this.#value = undefined;
      return undefined;
    }
    if (stamp !== this.#stamp) {
      this.#value = this.#parse(await readFile(this.#path, "utf8"));
      this.#stamp = stamp;
    }
    return this.#value;
  }
}
