/**
 * Git objects written by this process, byte for byte as the `git` binary writes them: the
 * loose-object format (a zlib stream of `<type> <size>\0<body>`, named by the SHA-1 of that
 * header and body), trees sorted as git sorts them, and commit headers with git's identity
 * rules. Writing in-process saves the three to four `git` processes a commit used to spawn, which
 * were most of a spec write's time; every other git command reads these objects as its own.
 */
import { randomBytes, createHash } from "node:crypto";
import { constants } from "node:fs";
import { mkdir, open, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import { CoyoteError } from "./errors.ts";

/** A person as git records them. */
export interface GitIdentity {
  /** The name, e.g. "Ada Admin". */
  readonly name: string;
  /** The e-mail address. */
  readonly email: string;
}

/** One file (or submodule) of a tree, flattened: its mode, type and object id. */
export interface TreeEntry {
  /** The mode as `ls-tree` prints it: `100644`, `100755`, `120000` or `160000`. */
  readonly mode: string;
  /** The object type. */
  readonly type: "blob" | "commit";
  /** The object id. */
  readonly oid: string;
}

/** A whole tree flattened to its files: path (with `/`) → entry. */
export type FlatTree = ReadonlyMap<string, TreeEntry>;

/** The kinds of object this module writes. */
export type ObjectType = "blob" | "tree" | "commit";

/** One object ready to be stored: its id and its uncompressed body. */
export interface GitObject {
  /** The object's id: the SHA-1 of its header and body. */
  readonly oid: string;
  /** The object type. */
  readonly type: ObjectType;
  /** The body, without the `<type> <size>\0` header. */
  readonly body: Buffer;
}

/** One entry of a tree object. */
export interface TreeObjectEntry {
  /** The mode as `ls-tree` prints it (`040000` for a subtree). */
  readonly mode: string;
  /** The entry's type. */
  readonly type: "blob" | "commit" | "tree";
  /** The entry's object id. */
  readonly oid: string;
  /** The entry's name (one path component). */
  readonly name: string;
}

/** A tree object built by {@link buildTrees}. */
export interface TreeObject extends GitObject {
  /** Its entries in git's order. */
  readonly entries: readonly TreeObjectEntry[];
}

const OID = /^[0-9a-f]{40}$/;

function header(type: ObjectType, size: number): Buffer {
  return Buffer.from(`${type} ${size}\0`);
}

/** An object with its id computed. */
export function gitObject(type: ObjectType, body: Buffer): GitObject {
  const oid = createHash("sha1").update(header(type, body.length)).update(body).digest("hex");
  return { oid, type, body };
}

/** The id git gives a blob with this content. */
export function blobId(content: Uint8Array): string {
  return createHash("sha1").update(`blob ${content.length}\0`).update(content).digest("hex");
}

function entryBytes(mode: string, name: string, oid: string): Buffer {
  return Buffer.concat([Buffer.from(`${mode.replace(/^0+/, "")} ${name}\0`), Buffer.from(oid, "hex")]);
}

// A commit's tree differs from its parent's in a file or two: the other entries' bytes are kept
// with the (shared, immutable) entry objects of the parent's flattened tree instead of being made
// again for each of a thousand files.
const serialised = new WeakMap<TreeEntry, { name: string; key: string | Buffer; bytes: Buffer }>();

// Git orders entries by their UTF-8 bytes. For printable ASCII names (every spec file's),
// JavaScript's own string order is the same and much cheaper than a comparison of buffers; other
// names compare as bytes (UTF-16 order differs from it past U+D7FF).
function sortKey(name: string): string | Buffer {
  return /^[\x20-\x7e]*$/.test(name) ? name : Buffer.from(name);
}

function compareKeys(a: string | Buffer, b: string | Buffer): number {
  if (typeof a === "string" && typeof b === "string") return a < b ? -1 : a > b ? 1 : 0;
  return Buffer.compare(typeof a === "string" ? Buffer.from(a) : a, typeof b === "string" ? Buffer.from(b) : b);
}

/**
 * Builds the tree objects of a flattened tree, children before parents, with their ids and
 * bodies, in git's order: entries sorted by name bytes, a subtree's name compared as if it ended
 * with "/".
 * @returns the root tree's id and every tree object, root last.
 * @throws CoyoteError STORE_ERR_GIT for a path with an empty, `.` or `..` component.
 */
export function buildTrees(files: FlatTree): { root: string; trees: TreeObject[] } {
  interface Dir {
    readonly files: Map<string, TreeEntry>;
    readonly dirs: Map<string, Dir>;
  }
  const top: Dir = { files: new Map(), dirs: new Map() };
  for (const [path, entry] of files) {
    const parts = path.split("/");
    const name = parts.pop();
    if (name === undefined || name === "" || name === "." || name === ".." || parts.some((p) => p === "" || p === "." || p === "..")) {
      throw new CoyoteError("STORE_ERR_GIT", `building a tree: bad path ${JSON.stringify(path)}`);
    }
    if (!OID.test(entry.oid)) throw new CoyoteError("STORE_ERR_GIT", `building a tree: ${path} has a bad object id ${JSON.stringify(entry.oid)}`);
    let dir = top;
    for (const part of parts) {
      let next = dir.dirs.get(part);
      if (next === undefined) {
        next = { files: new Map(), dirs: new Map() };
        dir.dirs.set(part, next);
      }
      dir = next;
    }
    dir.files.set(name, entry);
  }
  const trees: TreeObject[] = [];
  const visit = (dir: Dir): string => {
    const entries: Array<TreeObjectEntry & { key: string | Buffer; bytes: Buffer }> = [];
    for (const [name, sub] of dir.dirs) {
      const oid = visit(sub);
      entries.push({ mode: "040000", type: "tree", oid, name, key: sortKey(`${name}/`), bytes: entryBytes("040000", name, oid) });
    }
    for (const [name, file] of dir.files) {
      let cached = serialised.get(file);
      if (cached?.name !== name) {
        cached = { name, key: sortKey(name), bytes: entryBytes(file.mode, name, file.oid) };
        serialised.set(file, cached);
      }
      entries.push({ mode: file.mode, type: file.type, oid: file.oid, name, key: cached.key, bytes: cached.bytes });
    }
    // The sort keys are made once, not in the comparator: a folder holds a thousand specs.
    entries.sort((a, b) => compareKeys(a.key, b.key));
    const tree = gitObject("tree", Buffer.concat(entries.map((e) => e.bytes)));
    trees.push({ ...tree, entries: entries.map(({ key: _key, bytes: _bytes, ...e }) => e) });
    return tree.oid;
  };
  const root = visit(top);
  return { root, trees };
}

// Git drops these from both ends of a name or an e-mail address (`crud()` in git's ident.c).
function isCrud(code: number): boolean {
  return code <= 32 || ".,:;<>\"\\'".includes(String.fromCharCode(code));
}

/**
 * A name or e-mail address as git writes it in an identity line: crud stripped from both ends,
 * line breaks and angle brackets dropped from the middle.
 */
export function identPart(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isCrud(text.charCodeAt(start))) start++;
  while (end > start && isCrud(text.charCodeAt(end - 1))) end--;
  return text.slice(start, end).replace(/[\n<>]/g, "");
}

/** A `+hhmm` offset of the local time zone at `when`, as git writes it. */
export function timezoneOffset(when: Date): string {
  const minutes = -when.getTimezoneOffset();
  const abs = Math.abs(minutes);
  return `${minutes < 0 ? "-" : "+"}${String(Math.floor(abs / 60)).padStart(2, "0")}${String(abs % 60).padStart(2, "0")}`;
}

/**
 * An identity line's value: `Name <email> <seconds> <zone>`.
 * @throws CoyoteError STORE_ERR_GIT when the name is nothing but crud (git refuses it too).
 */
export function formatIdent(who: GitIdentity, when: Date): string {
  const name = identPart(who.name);
  if (name === "") throw new CoyoteError("STORE_ERR_GIT", `empty ident name (for <${who.email}>) not allowed`);
  return `${name} <${identPart(who.email)}> ${Math.floor(when.getTime() / 1000)} ${timezoneOffset(when)}`;
}

/**
 * The commit object `git commit-tree` makes of these, message ending in a newline.
 * @throws CoyoteError STORE_ERR_GIT for a bad tree or parent id, or a NUL in the message.
 */
export function commitObject(tree: string, parents: readonly string[], message: string, author: GitIdentity, committer: GitIdentity, when = new Date()): GitObject {
  for (const oid of [tree, ...parents]) if (!OID.test(oid)) throw new CoyoteError("STORE_ERR_GIT", `making a commit: bad object id ${JSON.stringify(oid)}`);
  if (message.includes("\0")) throw new CoyoteError("STORE_ERR_GIT", "making a commit: the message holds a NUL byte");
  const lines = [`tree ${tree}`, ...parents.map((p) => `parent ${p}`), `author ${formatIdent(author, when)}`, `committer ${formatIdent(committer, when)}`];
  return gitObject("commit", Buffer.from(`${lines.join("\n")}\n\n${message.endsWith("\n") ? message : `${message}\n`}`, "utf8"));
}

/**
 * Every object a commit of `files` needs that may not exist yet: the new blobs, the trees and the
 * commit itself, with the commit's id (nothing is written).
 * @param blobs the content of the files that are new in this commit.
 */
export function commitObjects(files: FlatTree, blobs: readonly Uint8Array[], parent: string | undefined, message: string, author: GitIdentity, committer: GitIdentity): { commit: string; objects: GitObject[] } {
  const { root, trees } = buildTrees(files);
  const commit = commitObject(root, parent === undefined ? [] : [parent], message, author, committer);
  return { commit: commit.oid, objects: [...blobs.map((content) => gitObject("blob", Buffer.from(content))), ...trees, commit] };
}

/**
 * Stores loose objects in a repository as git does: each one deflated into a `tmp_obj_*` file
 * beside its final name, synced, then renamed into place, so that a crash leaves either the whole object or a temporary file that git
 * ignores and `git gc` prunes. An object that exists already is written again rather than looked
 * up: the rename replaces it with the same bytes, and a fresh file is what keeps a concurrent
 * `git gc` from pruning it as old and unreachable right when a new commit starts to point at it
 * (git "freshens" such objects for the same reason). One that exists only in a pack is then also
 * loose, which git tolerates and the next `git gc` folds away.
 */
export class LooseObjectWriter {
  readonly #objects: string;

  /** @param gitDir the repository (`.../.git`). */
  constructor(gitDir: string) {
    this.#objects = join(gitDir, "objects");
  }

  /**
   * Stores every object, synced to the disk before this returns; the writes run concurrently so
   * that their syncs share the file system's journal commits.
   * @throws CoyoteError STORE_ERR_GIT when an object cannot be written.
   */
  async write(objects: readonly GitObject[]): Promise<void> {
    const unique = new Map(objects.map((o) => [o.oid, o]));
    await Promise.all([...unique.values()].map((o) => this.#writeOne(o)));
  }

  async #writeOne(object: GitObject): Promise<void> {
    const dir = join(this.#objects, object.oid.slice(0, 2));
    const path = join(dir, object.oid.slice(2));
    try {
      // Level 1 is git's own default for loose objects; a large tree (a folder of a thousand
      // specs) is stored uncompressed, which saves the write a millisecond of deflating and git
      // reads alike, until `git gc` packs it with deltas.
      const data = deflateSync(Buffer.concat([header(object.type, object.body.length), object.body]), { level: object.body.length > 16_384 ? 0 : 1 });
      const temp = join(dir, `tmp_obj_${randomBytes(6).toString("hex")}`);
      const create = () => open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o444);
      // The fan-out folder is made on first use (and again after a `git prune` removed it empty).
      const handle = await create().catch(async (cause: unknown) => {
        if ((cause as NodeJS.ErrnoException).code !== "ENOENT") throw cause;
        await mkdir(dir, { recursive: true });
        return create();
      });
      try {
        try {
          await handle.writeFile(data);
          await handle.sync();
        } finally {
          await handle.close();
        }
        await rename(temp, path);
      } catch (cause) {
        await unlink(temp).catch(() => undefined);
        throw cause;
      }
    } catch (cause) {
      throw new CoyoteError("STORE_ERR_GIT", `writing ${object.type} ${object.oid}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    }
  }
}
