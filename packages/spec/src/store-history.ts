/**
 * Reading the specs history and planning a rollback: the log, the redacted diff, and the changes
 * that make the specs what they were at a revision.
 */
import { EMPTY_TREE } from "./git.ts";
import { redactSpecDiff, trimDiffContext } from "./redact-diff.ts";
import { canonical, idOfRepoPath, parseSpecText, rawGeneration, repoPathOf, serialise, withGeneration, withoutGeneration, type Change } from "./spec-files.ts";
import type { SpecRepo } from "./spec-repo.ts";
import type { SecretFolder } from "./spec-secrets.ts";
import type { Spec } from "./specs.ts";
import { rebindToCurrentSecrets } from "./store-secrets.ts";
import type { HistoryEntry } from "./store-types.ts";

// More lines than any spec file has: a diff with the whole file as context.
const WHOLE_FILE = 1_000_000;

/**
 * The specs history from `head`, newest first, paths shown as `specs/...`.
 * @param id only the commits that touched this spec (already checked).
 * @param limit at most this many commits (already checked).
 */
export async function readHistory(repo: SpecRepo, head: string, id: string | undefined, limit: number | undefined): Promise<HistoryEntry[]> {
  const entries = await repo.git.log(head, {
    ...(limit === undefined ? {} : { limit }),
    ...(id === undefined ? {} : { path: repoPathOf(id) }),
  });
  return entries.map((entry) => ({ ...entry, files: entry.files.map((f) => `specs/${f}`) }));
}

/**
 * The redacted diff of the specs between two resolved commits, or of the change `from` made when
 * `to` is undefined (see StateStore.diff).
 */
export async function specDiff(repo: SpecRepo, from: string, to: string | undefined): Promise<string> {
  // Whole-file context first, so that every secret value is recognised by its enclosing field,
  // then back to git's three lines.
  const shown = (text: string) => trimDiffContext(redactSpecDiff(text));
  if (to !== undefined) return shown(await repo.git.diff(from, to, "specs/", WHOLE_FILE));
  const parent = (await repo.git.readCommit(from)).parents[0];
  return shown(await repo.git.diff(parent ?? EMPTY_TREE, from, "specs/", WHOLE_FILE));
}

/**
 * The changes that make the specs what they were at `target` (see StateStore.rollback): every
 * restored spec validated and bound to the current secrets, a spec that exists now counting its
 * generation on, specs added since removed. Nothing is written.
 * @param target a resolved commit of the history.
 * @throws ContractError when a restored spec is invalid.
 */
export async function rollbackChanges(repo: SpecRepo, secrets: SecretFolder, target: string): Promise<Change[]> {
  const targetFiles = new Map([...(await repo.git.lsTree(target))].filter(([path]) => idOfRepoPath(path) !== undefined));
  const blobs = await repo.git.readBlobs([...targetFiles.values()].map((e) => e.oid));
  const restored = new Map<string, { spec: Spec; bytes: Buffer }>();
  for (const [path, entry] of targetFiles) {
    const bytes = blobs.get(entry.oid) ?? Buffer.alloc(0);
    const id = idOfRepoPath(path) ?? "";
    const file = `specs/${path} at ${target.slice(0, 12)}`;
    const old = parseSpecText(bytes.toString("utf8"), file, id);
    const spec = await rebindToCurrentSecrets(old, secrets, file);
    restored.set(path, { spec, bytes: canonical(spec) === canonical(old) ? bytes : serialise(spec) });
  }
  const changes: Change[] = [];
  for (const [path, { spec, bytes }] of restored) {
    const id = idOfRepoPath(path) ?? "";
    const currentText = await repo.readText(`specs/${path}`);
    if (currentText === undefined) {
      changes.push({ path, content: bytes });
      continue;
    }
    let current: Spec | undefined;
    try {
      current = parseSpecText(currentText, `specs/${path}`, id);
    } catch {
      current = undefined;
    }
    if (current !== undefined && withoutGeneration(current) === withoutGeneration(spec)) continue;
    const generation = (current?.generation ?? rawGeneration(currentText)) + 1;
    changes.push({ path, content: serialise(withGeneration(spec, generation, `specs/${path}`)) });
  }
  for (const path of await repo.listSpecFiles()) {
    if (idOfRepoPath(path) !== undefined && !restored.has(path)) changes.push({ path, content: null });
  }
  return changes;
}
