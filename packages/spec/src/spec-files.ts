/**
 * The pure helpers of the spec store: where each spec lives in the repository, how a spec file is
 * parsed, compared and serialised, the checks on authors and commit messages, and the paths of
 * the state folder. Nothing here touches git.
 */
import { mkdir, readFile, realpath, stat } from "node:fs/promises";
import { isAbsolute, join, resolve, sep } from "node:path";
import { chmodExact } from "./atomic.ts";
import { CoyoteError, ContractError } from "./errors.ts";
import type { GitIdentity, TreeEntry } from "./git.ts";
import { ServiceId } from "./primitives.ts";
import type { Spec } from "./specs.ts";
import { parseSpec, specId, specPath, validate } from "./validate.ts";
import { STATE_LAYOUT, type StoreAuthor } from "./store-types.ts";

/** The committer when the store's options name none. */
export const DEFAULT_AUTHOR: StoreAuthor = { name: "Coyote", email: "coyote@localhost" };
const SERVICE_FILE = /^services\/([a-z0-9-]+)\.json$/;

/** A CoyoteError STORE_ERR_IO naming what was being done, or the cause itself when it already is a CoyoteError. */
export function ioError(context: string, cause: unknown): CoyoteError {
  if (cause instanceof CoyoteError) return cause;
  return new CoyoteError("STORE_ERR_IO", `${context}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
}

/** Whether a file-system error says the file does not exist. */
export function isNotFound(cause: unknown): boolean {
  return (cause as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
}

/** The repository path of a spec: `server.json` or `services/<id>.json`. */
export function repoPathOf(id: string): string {
  return specPath(id).slice("specs/".length);
}

/** The spec id a repository path holds, or undefined for a file that is not a spec of the layout. */
export function idOfRepoPath(path: string): string | undefined {
  if (path === "server.json") return "server";
  const id = SERVICE_FILE.exec(path)?.[1];
  // services/server.json would collide with the server spec's id; it is not part of the layout.
  return id === undefined || id === "server" || !ServiceId.safeParse(id).success ? undefined : id;
}

/** Throws a ContractError unless the id is `server` or a valid service id. */
export function checkSpecId(id: string): void {
  if (id !== "server") validate(ServiceId, id, "spec id");
}

/** The git identity of an author, refused with a ContractError when it would corrupt a commit's author line. */
export function checkAuthor(author: StoreAuthor, what: string): GitIdentity {
  const bad = (field: string, message: string) => new ContractError("SPEC_ERR_INVALID", what, [{ field, message }]);
  // Control characters and angle brackets would corrupt the commit's author line.
  const plain = (text: string) => stripControl(text, "") === text && !text.includes("<") && !text.includes(">");
  if (typeof author.name !== "string" || author.name.trim() === "" || author.name.length > 200 || !plain(author.name)) {
    throw bad("name", "an author name is 1-200 characters without control characters or < >");
  }
  if (typeof author.email !== "string" || !/^[^\s@<>]+@[^\s@<>]+$/.test(author.email) || author.email.length > 254 || !plain(author.email)) {
    throw bad("email", `not an e-mail address: ${JSON.stringify(author.email)}`);
  }
  return { name: author.name.trim(), email: author.email };
}

/** The text without control characters, except those in `keep`. */
export function stripControl(text: string, keep: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const char = text.charAt(i);
    if ((code >= 0x20 && code !== 0x7f) || keep.includes(char)) out += char;
  }
  return out;
}

/** A commit message without control characters, at most 10,000 characters, or the fallback when nothing is left. */
export function cleanMessage(message: string | undefined, fallback: string): string {
  // NUL cannot be in a commit message; other control characters would garble `git log`.
  const text = stripControl(message ?? "", "\n\t").trim().slice(0, 10_000);
  return text === "" ? fallback : text;
}

/** JSON with object keys sorted, so that two documents compare equal whatever their key order. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  });
}

/** The spec's canonical JSON without its generation: equal for two specs that differ only in their count. */
export function withoutGeneration(spec: Spec): string {
  const { generation: _generation, ...rest } = spec;
  return canonical(rest);
}

/** How a spec is named in commit and error messages: `server` or `service <id>`. */
export function describe(id: string): string {
  return id === "server" ? "server" : `service ${id}`;
}

/** Parses and validates a spec file's text, and checks that it holds the spec its name says. */
export function parseSpecText(text: string, file: string, expectedId: string): Spec {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    const reason = text.trim() === "" ? "the file is empty" : `not valid JSON (${cause instanceof Error ? cause.message : String(cause)})`;
    throw new ContractError("SPEC_ERR_PARSE", file, [{ field: "(root)", message: reason }], { cause });
  }
  const spec = parseSpec(value, file);
  if (specId(spec) !== expectedId) {
    const field = spec.kind === "Server" ? "kind" : "id";
    throw new ContractError("SPEC_ERR_INVALID", file, [{ field, message: `the file holds spec ${specId(spec)}, not ${expectedId} as its name says` }]);
  }
  return spec;
}

/** A spec file's bytes: pretty JSON with a final newline. */
export function serialise(spec: Spec): Buffer {
  return Buffer.from(`${JSON.stringify(spec, null, 2)}\n`, "utf8");
}

/** A spec with its generation set, keys in the schema's order (the order files are written in). */
export function withGeneration(spec: Spec, generation: number, file: string): Spec {
  return parseSpec({ ...spec, generation }, file);
}

/** The generation a spec file's text claims, even when the file is otherwise invalid. */
export function rawGeneration(text: string): number {
  try {
    const value = JSON.parse(text) as { generation?: unknown } | null;
    const generation = value?.generation;
    return typeof generation === "number" && Number.isInteger(generation) && generation > 0 ? generation : 0;
  } catch {
    return 0;
  }
}

/** The branch's commit and its tree, cached between writes. */
export interface HeadState {
  /** The commit the branch points at. */
  readonly commit: string;
  /** Its tree: repository path → entry. */
  readonly files: ReadonlyMap<string, TreeEntry>;
}

/** A change to one spec file: new content, or `null` to remove it. */
export interface Change {
  /** The repository path, e.g. `services/blog.json`. */
  readonly path: string;
  /** The new bytes, or `null` to remove the file. */
  readonly content: Buffer | null;
}

/**
 * The state store over one `COYOTE_STATE` folder. Readers need no lock (every file is replaced

/** The path a spec would be stored at, for validation errors before its id is known to be valid. */
export function guessSpecPath(value: unknown): string {
  if (typeof value === "object" && value !== null) {
    const { kind, id } = value as { kind?: unknown; id?: unknown };
    if (kind === "Server") return specPath("server");
    if (typeof id === "string" && ServiceId.safeParse(id).success) return specPath(id);
  }
  return "specs/services/<id>.json";
}

/**
 * Resolves a path relative to the state folder.
 * @param root the state folder, absolute, symbolic links resolved.
 * @param relative e.g. `status/blog.json`.
 * @throws CoyoteError STORE_ERR_IO for an absolute path or one that leaves the state folder.
 */
export function statePath(root: string, relative: string): string {
  if (relative === "" || relative.includes("\0") || isAbsolute(relative)) {
    throw new CoyoteError("STORE_ERR_IO", `resolving ${JSON.stringify(relative)}: not a path relative to the state folder`);
  }
  const full = resolve(root, relative);
  if (full !== root && !full.startsWith(`${root}${sep}`)) {
    throw new CoyoteError("STORE_ERR_IO", `resolving ${JSON.stringify(relative)}: the path leaves the state folder`);
  }
  return full;
}

/** A file of the state folder as text, or undefined when it does not exist. */
export async function readStateText(root: string, relative: string): Promise<string | undefined> {
  try {
    return await readFile(statePath(root, relative), "utf8");
  } catch (cause) {
    if (isNotFound(cause)) return undefined;
    throw ioError(`reading ${relative}`, cause);
  }
}

/**
 * Creates the state folder's layout where it is missing and gives the private folders their modes.
 * @param root the `COYOTE_STATE` folder (created when missing).
 * @returns the folder, absolute, symbolic links resolved.
 * @throws CoyoteError STORE_ERR_IO.
 */
export async function prepareStateFolder(root: string): Promise<string> {
  let real: string;
  try {
    await mkdir(root, { recursive: true });
    real = await realpath(root);
    // The state root holds secrets, the crm's database and the control sockets: only the
    // appliance's user may even list it. The one exception is kept: the box's daemons' users
    // given passage (search, not list) by ACL entries, whose mask shows as the group's 0010
    // (see docs/ARCHITECTURE.md, "Passage"); a chmod to 0700 would void them.
    const passThrough = ((await stat(real)).mode & 0o777) === 0o710;
    await chmodExact(real, passThrough ? 0o710 : 0o700);
    for (const [folder, mode] of STATE_LAYOUT) {
      await mkdir(join(real, folder), { recursive: true, mode });
      if (mode === 0o700) await chmodExact(join(real, folder), mode);
    }
  } catch (cause) {
    throw ioError(`opening state folder ${root}`, cause);
  }
  return real;
}
