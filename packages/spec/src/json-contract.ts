import type { z } from "zod";
import { ContractError, type FieldIssue } from "./errors.ts";

/**
 * Parsing and validating a JSON document against its schema, with errors that name the file and
 * every bad field. Kept apart from the list of contracts in `validate.ts` so that a module defining
 * a contract can validate with it without importing every other contract.
 */

/** Formats a zod issue path as people write it: `domains[0].name`, or `(root)` when empty. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out === "" ? "(root)" : out;
}

function issuesOf(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => {
    // An unknown key is reported on its parent object; name the key itself so the field is clear.
    if (issue.code === "unrecognized_keys") {
      return { field: formatPath([...issue.path, issue.keys.join(",")]), message: `unknown field${issue.keys.length > 1 ? "s" : ""} (not part of the schema)` };
    }
    return { field: formatPath(issue.path), message: issue.message };
  });
}

/**
 * Validates a parsed document against a schema.
 * @param schema the contract's schema.
 * @param value the parsed JSON.
 * @param file the file it came from, named in the error.
 * @returns the document with defaults filled in.
 * @throws ContractError (SPEC_ERR_INVALID) naming the file and every bad field.
 */
export function validate<S extends z.ZodType>(schema: S, value: unknown, file: string): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new ContractError("SPEC_ERR_INVALID", file, issuesOf(result.error), { cause: result.error });
  return result.data;
}

/**
 * Parses JSON text without validating it.
 * @throws ContractError (SPEC_ERR_PARSE) naming the file, for text that is not JSON (empty files included).
 */
export function readJsonText(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    const reason = text.trim() === "" ? "the file is empty" : `not valid JSON (${cause instanceof Error ? cause.message : String(cause)})`;
    throw new ContractError("SPEC_ERR_PARSE", file, [{ field: "(root)", message: reason }], { cause });
  }
}

/**
 * Parses JSON text and validates it.
 * @throws ContractError: SPEC_ERR_PARSE for text that is not JSON (empty files included), else as {@link validate}.
 */
export function parseJson<S extends z.ZodType>(schema: S, text: string, file: string): z.output<S> {
  return validate(schema, readJsonText(text, file), file);
}
