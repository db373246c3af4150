// Reading what a component logged (the JSON lines of @coyote/log) in a test.
import { readFile } from "node:fs/promises";

/** The records of a JSON-lines log file, in order; none when the file does not exist yet. */
export async function logRecords(logFile: string): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(logFile, "utf8").catch(() => "");
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** The records of one event (and, when `field` is given, only those that have that field). */
export async function logEvents(logFile: string, event: string, field?: string): Promise<Array<Record<string, unknown>>> {
  return (await logRecords(logFile)).filter((record) => record.event === event && (field === undefined || field in record));
}
