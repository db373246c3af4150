import { chartGeometry, hourFrame, type SeriesPoint } from "../../lib/admin/chart.ts";
import { formatBytes } from "../../lib/admin/format.ts";

function axisLabel(value: number, unit: "count" | "bytes"): string {
  return unit === "bytes" ? formatBytes(value) : String(Number(value.toFixed(2)));
}

/**
 * A line chart of one series over a time window, drawn as inline SVG (the panel has no chart
 * library). Works in server and client components alike: it holds no state.
 */
export function LineChart({ title, points, from, to, unit }: { title: string; points: readonly SeriesPoint[]; from: number; to: number; unit: "count" | "bytes" }) {
  const frame = { ...hourFrame(to), from };
  const g = chartGeometry(points, frame);
  return (
    <svg className="chart" viewBox={`0 0 ${frame.width} ${frame.height}`} role="img" aria-label={title}>
      <title>{title}</title>
      {g.yTicks.map((tick) => (
        <g key={tick.value}>
          <line x1={g.plot.left} x2={g.plot.right} y1={tick.y} y2={tick.y} stroke="#dde1e7" strokeWidth="1" />
          <text x={g.plot.left - 6} y={tick.y + 4} textAnchor="end" fontSize="11" fill="#5d6778">
            {axisLabel(tick.value, unit)}
          </text>
        </g>
      ))}
      {g.xTicks.map((tick) => (
        <g key={tick.minutesAgo}>
          <line x1={tick.x} x2={tick.x} y1={g.plot.top} y2={g.plot.bottom} stroke="#eef0f3" strokeWidth="1" />
          <text x={tick.x} y={frame.height - 8} textAnchor="middle" fontSize="11" fill="#5d6778">
            {tick.minutesAgo === 0 ? "now" : `−${tick.minutesAgo} min`}
          </text>
        </g>
      ))}
      {g.lines.map((d, i) => (
        // The runs have no identity beyond their order, which only changes with the data.
        <path key={i} d={d} fill="none" stroke="#b4531f" strokeWidth="2" strokeLinejoin="round" strokeLinecap="round" />
      ))}
    </svg>
  );
}
