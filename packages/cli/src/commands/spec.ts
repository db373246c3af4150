import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { StateStore, parseSpec, readJsonText } from "@coyote/spec";
import { chooseAuthor } from "../author.ts";
import type { CliEnv } from "../env.ts";
import { CliError, EXIT } from "../errors.ts";
import { table, type Io } from "../io.ts";

/** Adds `coyote spec apply|get|list|history|diff|rollback|delete`. */
export function specCommands(program: Command, env: CliEnv, io: Io): void {
  const spec = program
    .command("spec")
    .description("read and change the desired state (specs/ in the state folder, a git history)");

  spec
    .command("apply")
    .description("validate a spec file and store it as the new desired state (a commit in the history)")
    .argument("<file>", "a JSON file with a Server or Service spec; - reads standard input")
    .option("--author <who>", 'who makes the change, "Name <email>" (default: $COYOTE_AUTHOR or you@this-host)')
    .option("-m, --message <text>", "a message for the history")
    .action(async (file: string, options: { author?: string; message?: string }) => {
      const source = file === "-" ? "(standard input)" : file;
      let text: string;
      try {
        text = file === "-" ? await readStdin() : await readFile(file, "utf8");
      } catch (error) {
        throw new CliError(`spec apply: cannot read ${source}: ${(error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : String(error)}`, EXIT.NOT_FOUND, { cause: error });
      }
      // Validate before the store is even opened: an invalid file must leave the disk untouched,
      // not even creating a fresh state folder.
      const value = readJsonText(text, source);
      parseSpec(value, source);
      const author = chooseAuthor(options.author, env.author);
      const store = await StateStore.open(env.stateDir, { author });
      const result = await store.applySpec(value, { author, source, ...(options.message === undefined ? {} : { message: options.message }) });
      io.out(result.changed
        ? `applied ${result.id}: generation ${result.generation}, revision ${result.revision.slice(0, 12)}`
        : `unchanged ${result.id}: generation ${result.generation} is already this spec`);
    });

  spec
    .command("get")
    .description("print a spec as JSON")
    .argument("<id>", 'a service id, or "server"')
    .action(async (id: string) => {
      const store = await StateStore.open(env.stateDir);
      const found = await store.getSpec(id);
      if (!found) throw new CliError(`spec get: no spec "${id}" (see coyote spec list)`, EXIT.NOT_FOUND);
      io.out(JSON.stringify(found, null, 2));
    });

  spec
    .command("list")
    .description("list the specs with their kind and generation")
    .option("--json", "print JSON")
    .action(async (options: { json?: boolean }) => {
      const store = await StateStore.open(env.stateDir);
      const entries = await store.listSpecs();
      if (options.json) {
        io.out(JSON.stringify(entries.map((e) => ("error" in e ? { id: e.id, error: e.error.message } : e)), null, 2));
        return;
      }
      if (entries.length === 0) {
        io.out("no specs yet (add one with: coyote spec apply FILE)");
        return;
      }
      const rows = [["ID", "KIND", "GENERATION"]];
      for (const entry of entries) rows.push("error" in entry ? [entry.id, "invalid", entry.error.message] : [entry.id, entry.kind, String(entry.generation)]);
      for (const line of table(rows)) io.out(line);
      if (entries.some((e) => "error" in e)) throw new CliError("spec list: some spec files are invalid (shown above)", EXIT.INVALID);
    });

  spec
    .command("history")
    .description("show the history of all specs, or of one")
    .argument("[id]", 'a service id, or "server"')
    .option("-n, --limit <count>", "show at most this many changes", parseCount, 50)
    .action(async (id: string | undefined, options: { limit: number }) => {
      const store = await StateStore.open(env.stateDir);
      const revisions = await store.history(id, options.limit);
      const rows = [["REVISION", "DATE", "AUTHOR", "MESSAGE"]];
      for (const r of revisions) rows.push([r.revision.slice(0, 12), r.date, `${r.author.name} <${r.author.email}>`, r.message]);
      for (const line of table(rows)) io.out(line);
    });

  spec
    .command("diff")
    .description("show what changed in the specs: in one revision, or between two")
    .argument("<from>", "a revision (see coyote spec history)")
    .argument("[to]", "a later revision")
    .action(async (from: string, to: string | undefined) => {
      const store = await StateStore.open(env.stateDir);
      const diff = await store.diff(from, to);
      io.out(diff === "" ? "(no changes)" : diff.trimEnd());
    });

  spec
    .command("rollback")
    .description("make the specs exactly as they were at a revision, as a new change in the history")
    .argument("<revision>", "the revision to return to (see coyote spec history)")
    .option("--author <who>", 'who makes the change, "Name <email>"')
    .action(async (revision: string, options: { author?: string }) => {
      const author = chooseAuthor(options.author, env.author);
      const store = await StateStore.open(env.stateDir, { author });
      const result = await store.rollback(revision, { author });
      io.out(result.changed.length === 0
        ? `nothing to roll back: the specs are already as at ${revision}`
        : `rolled back to ${revision} as revision ${result.revision.slice(0, 12)}; changed: ${result.changed.join(", ")}`);
    });

  spec
    .command("delete")
    .description("remove a service spec (a change in the history; roll back to undo)")
    .argument("<id>", "a service id")
    .option("--author <who>", 'who makes the change, "Name <email>"')
    .action(async (id: string, options: { author?: string }) => {
      const author = chooseAuthor(options.author, env.author);
      const store = await StateStore.open(env.stateDir, { author });
      const result = await store.deleteSpec(id, { author });
      io.out(`deleted ${id} in revision ${result.revision.slice(0, 12)}`);
    });
}

function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`--limit: expected a whole number of at least 1, got ${JSON.stringify(value)}`, EXIT.USAGE);
  return n;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
