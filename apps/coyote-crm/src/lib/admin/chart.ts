// The geometry of the admin's SVG line charts (no chart library: the panel draws its own). Pure,
// so that the scaling and the gaps are tested without a browser.
import { formatBytes } from "./format.ts";
import type { LivePoint } from "./live.ts";

/** One value at one time; null is "no reading" and breaks the line. */
export interface SeriesPoint {
  readonly at: number;
  readonly value: number | null;
}

/** The drawing area and the time window of a chart. */
export interface ChartFrame {
  readonly width: number;
  readonly height: number;
  /** Room for the axis labels. */
  readonly margin: { readonly top: number; readonly right: number; readonly bottom: number; readonly left: number };
  /** The window's start and end (epoch ms): the x axis. */
  readonly from: number;
  readonly to: number;
}

/** The default frame: a wide, short chart for a one-hour window ending at `to`. */
export function hourFrame(to: number): ChartFrame {
  return { width: 720, height: 200, margin: { top: 12, right: 16, bottom: 28, left: 64 }, from: to - 60 * 60 * 1000, to };
}

/** Everything a chart component needs to draw. */
export interface ChartGeometry {
  /** One SVG path per unbroken run of readings (a lone reading is a dot: `h0` with round caps). */
  readonly lines: string[];
  /** The top of the y axis: a round number at or above the largest reading. */
  readonly yMax: number;
  /** Horizontal grid lines: the value and its y. */
  readonly yTicks: Array<{ readonly value: number; readonly y: number }>;
  /** Vertical grid lines: minutes before the end, and their x. */
  readonly xTicks: Array<{ readonly minutesAgo: number; readonly x: number }>;
  /** The plot area's corners. */
  readonly plot: { readonly left: number; readonly top: number; readonly right: number; readonly bottom: number };
  /** How many readings were drawn (points outside the window and nulls are not). */
  readonly drawn: number;
}

/** The smallest of 1, 2, 2.5, 5 × 10^k at or above `value` (1 for nothing, so an empty chart has an axis). */
export function niceCeiling(value: number): number {
  if (!(value > 0) || !Number.isFinite(value)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

/**
 * Lays out a line chart: x is time across the frame's window, y is the value from 0 to a round
 * maximum. Points outside the window are dropped; a null ends the current line, so a gap in the
 * readings shows as a gap rather than as a slope drawn across it.
 */
export function chartGeometry(points: readonly SeriesPoint[], frame: ChartFrame): ChartGeometry {
  const plot = { left: frame.margin.left, top: frame.margin.top, right: frame.width - frame.margin.right, bottom: frame.height - frame.margin.bottom };
  const span = Math.max(1, frame.to - frame.from);
  const inside = [...points].filter((p) => p.at >= frame.from && p.at <= frame.to).sort((a, b) => a.at - b.at);
  const yMax = niceCeiling(Math.max(0, ...inside.map((p) => p.value ?? 0)));
  const x = (at: number) => round(plot.left + ((at - frame.from) / span) * (plot.right - plot.left));
  const y = (value: number) => round(plot.bottom - (value / yMax) * (plot.bottom - plot.top));

  const lines: string[] = [];
  let run: string[] = [];
  let drawn = 0;
  const flush = () => {
    if (run.length === 1) lines.push(`${run[0] ?? ""} h0`);
    else if (run.length > 1) lines.push(run.join(" "));
    run = [];
  };
  for (const point of inside) {
    if (point.value === null) {
      flush();
      continue;
    }
    run.push(`${run.length === 0 ? "M" : "L"}${x(point.at)} ${y(point.value)}`);
    drawn++;
  }
  flush();

  const yTicks = [0, yMax / 2, yMax].map((value) => ({ value, y: y(value) }));
  const minutes = Math.round(span / 60_000);
  const step = minutes >= 30 ? 15 : minutes >= 10 ? 5 : 1;
  const xTicks: Array<{ minutesAgo: number; x: number }> = [];
  for (let ago = minutes - (minutes % step); ago >= 0; ago -= step) xTicks.push({ minutesAgo: ago, x: x(frame.to - ago * 60_000) });
  return { lines, yMax, yTicks, xTicks, plot, drawn };
}

/** The traffic of a window in words and numbers. */
export interface TrafficSummary {
  readonly requests: number;
  readonly bytesOut: number;
  readonly errors: number;
  /** `N requests in the last hour, X out` (the e2e tests read N from this line). */
  readonly text: string;
}

/** Adds up a window's points. */
export function trafficSummary(points: readonly LivePoint[]): TrafficSummary {
  let requests = 0;
  let bytesOut = 0;
  let errors = 0;
  for (const p of points) {
    requests += p.requests;
    bytesOut += p.bytesOut;
    errors += p.errors;
  }
  // Always "requests": the line is read by machines too, and one shape is simpler to match.
  const text = `${requests} requests in the last hour, ${formatBytes(bytesOut)} out${errors > 0 ? `, ${errors} server errors` : ""}`;
  return { requests, bytesOut, errors, text };
}

/** The memory readings as a series, or undefined when there is none at all (no sleeping backend). */
export function memorySeries(points: readonly LivePoint[]): SeriesPoint[] | undefined {
  if (points.every((p) => p.memoryBytes === null)) return undefined;
  return points.map((p) => ({ at: p.at, value: p.memoryBytes }));
}

/** The latest memory reading, for the line under the memory chart. */
export function latestMemory(points: readonly LivePoint[]): string | undefined {
  for (let i = points.length - 1; i >= 0; i--) {
    const bytes = points[i]?.memoryBytes;
    if (bytes !== null && bytes !== undefined) return formatBytes(bytes);
  }
  return undefined;
}
