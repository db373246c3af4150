import { statSync } from "node:fs";
import { readFile, readdir, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { onAtomicWrite, type AtomicWrite } from "@coyote/spec";

interface Entry<T> {
  readonly mtimeMs: number;
  readonly size: number;
  readonly value: T;
}

/** The caches of each folder, told of this process's atomic writes into it. */
const cachesByDir = new Map<string, Set<WeakRef<DirectoryCache<unknown>>>>();
let listening = false;

function register(dir: string, cache: DirectoryCache<unknown>): void {
  if (!listening) {
    listening = true;
    onAtomicWrite((write: AtomicWrite) => {
      const caches = cachesByDir.get(dirname(resolve(write.path)));
      if (!caches) return;
      for (const ref of caches) {
        const live = ref.deref();
        if (live) live.noteWrite(basename(write.path), write.folderMtimeBefore, write.folderMtimeAfter);
        else caches.delete(ref);
      }
    });
  }
  const caches = cachesByDir.get(dir) ?? new Set();
  caches.add(new WeakRef(cache));
  cachesByDir.set(dir, caches);
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
 *
 * Finding those files takes a `stat` of each, and a thousand services written one after another
 * into one folder would make that a million. So the cache is told of this process's own atomic
 * writes into the folder, with the folder's mtime just before and after each: while every change
 * of the folder's mtime since the last look is one of those writes, only the files written (and
 * the names new to the listing) are looked at. A change by anyone else (another process, an
 * unlink, a write it was not told of) breaks that chain, and the next look stats every file.
 */
export class DirectoryCache<T> {
  readonly #dir: string;
  readonly #accept: (name: string) => boolean;
  readonly #parse: (name: string, text: string) => T | undefined;
  #folderMtime: number | undefined;
  #entries = new Map<string, Entry<T>>();
  #view: ReadonlyMap<string, T> = new Map();
  /**
   * The folder's mtime with every change up to it accounted for: the last full look, moved on by
   * each write of this process that started from it. Undefined once a change is unexplained.
   */
  #chain: number | undefined;
  /** The files this process wrote since the last look. */
  #written = new Set<string>();
  /** The look under way: looks run one at a time, each from where the last one left off. */
  #tail: Promise<unknown> = Promise.resolve();

  /**
   * Makes an empty cache; nothing is read before {@link DirectoryCache.read}.
   * @param dir the folder.
   * @param accept which file names count (temp files of atomic writes should not).
   * @param parse turns a file into its value; undefined leaves the file out.
   */
  constructor(dir: string, accept: (name: string) => boolean, parse: (name: string, text: string) => T | undefined) {
    this.#dir = resolve(dir);
    this.#accept = accept;
    this.#parse = parse;
    register(this.#dir, this);
  }

  /**
   * Notes a write of this process into the folder (called for every `writeFileAtomic` there).
   * @param name the file's name.
   * @param before the folder's mtime just before the write began.
   * @param after the folder's mtime just after it.
   */
  noteWrite(name: string, before: number | undefined, after: number | undefined): void {
    this.#written.add(name);
    this.#chain = this.#chain !== undefined && before === this.#chain ? after : undefined;
  }

  /**
   * The folder's files by name, current as of this call. A missing folder has none. The same map
   * object is returned for as long as the folder is unchanged, so that callers can memoize what
   * they derive from it (see {@link memoizeByIdentity}).
   */
  read(): Promise<ReadonlyMap<string, T>> {
    const look = this.#tail.then(() => this.#look());
    this.#tail = look.catch(() => undefined);
    return look;
  }

  async #look(): Promise<ReadonlyMap<string, T>> {
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
      this.#chain = undefined;
      return this.#view;
    }
    // A write told of is looked at even when the folder's mtime did not move: two changes within
    // one tick of the file system's clock carry the same mtime.
    if (folderMtime !== this.#folderMtime || this.#written.size > 0) {
      // Only this process's writes since the last look: the other files are as they were.
      const onlyOwn = this.#chain !== undefined && folderMtime === this.#chain;
      const written = this.#written;
      // Writes made during this look are noted afresh, against the mtime it starts from.
      this.#written = new Set();
      this.#chain = folderMtime;
      const next = new Map<string, Entry<T>>();
      for (const name of (await readdir(this.#dir)).filter(this.#accept).sort()) {
        const path = join(this.#dir, name);
        const known = this.#entries.get(name);
        if (onlyOwn && known && !written.has(name)) {
          next.set(name, known);
          continue;
        }
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
