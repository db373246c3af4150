// The timeline: read the log files of every component and tell one ordered story.
import { resolve } from "node:path";
import type { EventName } from "./events.ts";
import { readNumbered, type LogRecord } from "./log-file.ts";

export { logFilesIn, readLogFile, type LogRecord } from "./log-file.ts";
export { formatTime, formatTimeline, type FormatOptions } from "./timeline-format.ts";

/** Which records of a timeline to keep; every given criterion must match. */
export interface TimelineFilter {
  /** Keep records at or after this time (epoch milliseconds). */
  since?: number;
  /** Keep records at or before this time (epoch milliseconds). */
  until?: number;
  /** Keep only the records of this request. */
  requestId?: string;
  /** Keep only the records about this service. */
  serviceId?: string;
  /** Keep only the records of this component. */
  component?: string;
  /** Keep only records of these events (so never plain, event-less records). */
  events?: readonly EventName[];
}

/** The result of {@link mergeTimeline}: the ordered records and what could not be read. */
export interface Timeline {
  /** The records of every file, ordered by time, then component, then pid, then seq. */
  records: LogRecord[];
  /** One line per problem, such as `minion.log:42: not JSON`, for the reader to see. */
  warnings: string[];
}

/** Orders two records by time, then component, then pid, then seq. */
export function compareRecords(a: LogRecord, b: LogRecord): number {
  if (a.time !== b.time) return a.time < b.time ? -1 : 1;
  // Plain code-unit comparison rather than localeCompare, so the order is the same everywhere.
  if (a.component !== b.component) return a.component < b.component ? -1 : 1;
  if (a.pid !== b.pid) return a.pid - b.pid;
  return a.seq - b.seq;
}

function matcher(filter: TimelineFilter): (record: LogRecord) => boolean {
  const events = filter.events === undefined ? undefined : new Set<string>(filter.events);
  return (record) =>
    (filter.since === undefined || record.time >= filter.since) &&
    (filter.until === undefined || record.time <= filter.until) &&
    (filter.requestId === undefined || record.requestId === filter.requestId) &&
    (filter.serviceId === undefined || record.serviceId === filter.serviceId) &&
    (filter.component === undefined || record.component === filter.component) &&
    (events === undefined || (record.event !== undefined && events.has(record.event)));
}

interface HeapItem {
  record: LogRecord;
  source: number;
}

/** A binary min-heap over the head record of every file, ties going to the earlier file. */
class Heap {
  private readonly items: HeapItem[] = [];

  get size(): number {
    return this.items.length;
  }

  push(item: HeapItem): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): HeapItem | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    items[0] = last;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < items.length && this.less(left, smallest)) smallest = left;
      if (right < items.length && this.less(right, smallest)) smallest = right;
      if (smallest === i) break;
      this.swap(i, smallest);
      i = smallest;
    }
    return top;
  }

  private less(i: number, j: number): boolean {
    const a = this.items[i];
    const b = this.items[j];
    if (a === undefined || b === undefined) return false;
    const order = compareRecords(a.record, b.record);
    return order < 0 || (order === 0 && a.source < b.source);
  }

  private swap(i: number, j: number): void {
    const a = this.items[i];
    const b = this.items[j];
    if (a === undefined || b === undefined) return;
    this.items[i] = b;
    this.items[j] = a;
  }
}

/**
 * Reads the log files of every component and returns their records as one story, ordered by
 * time, then component, then pid, then seq, keeping only those that match `filter`.
 *
 * Each file is already in order (one process's clock never goes back), so this is a k-way merge
 * that holds one record per file in a heap. Should a file turn out to be out of order — two
 * processes appending to one file, or a file edited by hand — a warning says so and the merged
 * output is sorted at the end, which is cheap on input that is almost in order. Unreadable files
 * and lines become warnings (see {@link readLogFile}); the same path given twice is read once.
 */
export async function mergeTimeline(paths: readonly string[], filter: TimelineFilter = {}): Promise<Timeline> {
  const warnings: string[] = [];
  const matches = matcher(filter);
  const unique = [...new Map(paths.map((path) => [resolve(path), path])).values()];
  const sources = unique.map((path) => readNumbered(path, warnings));
  const previous: (LogRecord | undefined)[] = unique.map(() => undefined);
  // An object rather than a `let`, because the closure below is what sets it.
  const order = { broken: false };

  // Pulls the next matching record of one file, noting when it goes back in time.
  const next = async (source: number): Promise<HeapItem | undefined> => {
    const iterator = sources[source];
    if (iterator === undefined) return undefined;
    for (;;) {
      const step = await iterator.next();
      if (step.done === true) return undefined;
      const { record, line } = step.value;
      if (!matches(record)) continue;
      const before = previous[source];
      if (before !== undefined && compareRecords(before, record) > 0 && !order.broken) {
        order.broken = true;
        warnings.push(`${unique[source] ?? "?"}:${line}: record out of order; the timeline was sorted instead of merged`);
      }
      previous[source] = record;
      return { record, source };
    }
  };

  const heap = new Heap();
  const heads = await Promise.all(sources.map((_, source) => next(source)));
  for (const head of heads) if (head !== undefined) heap.push(head);

  const records: LogRecord[] = [];
  for (let item = heap.pop(); item !== undefined; item = heap.pop()) {
    records.push(item.record);
    const following = await next(item.source);
    if (following !== undefined) heap.push(following);
  }
  // Array.prototype.sort is stable, so records that compare equal keep their merged order.
  if (order.broken) records.sort(compareRecords);
  return { records, warnings };
}
