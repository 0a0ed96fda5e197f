/**
 * 30 days of credits spent (charged less refunded), as an SVG bar chart drawn here (chart-scale.ts does the arithmetic):
 * a chart library would outweigh the rest of the console for one bar series. The same numbers are
 * in a table below the chart for screen readers and for reading exact values.
 */
import type { UsageBucket } from "@framegate/sdk";
import { layoutBars, ticks } from "../chart-scale.js";
import { formatCompact, formatCredits, formatDay } from "../format.js";

const WIDTH = 640;
const HEIGHT = 200;
const LEFT = 48;
const BOTTOM = 26;
const TOP = 8;

export function UsageChart({ buckets }: { buckets: UsageBucket[] }) {
  const plotWidth = WIDTH - LEFT;
  const plotHeight = HEIGHT - BOTTOM - TOP;
  const net = buckets.map((b) => b.credits_charged - b.credits_refunded);
  const { max, bars, y } = layoutBars(net, plotWidth, plotHeight);
  const total = net.reduce((sum, v) => sum + Math.max(0, v), 0);
  const first = buckets[0];
  const last = buckets[buckets.length - 1];
  const summary =
    first && last
      ? `Credits spent per day (charged less refunded) from ${formatDay(first.start)} to ${formatDay(last.start)}: ${formatCredits(total)} in all.`
      : "No usage data.";
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={summary}>
        <g transform={`translate(${LEFT},${TOP})`}>
          {ticks(max).map((t) => (
            <g key={t}>
              <line x1={0} x2={plotWidth} y1={y(t)} y2={y(t)} class="grid" />
              <text x={-6} y={y(t)} dy="0.32em" text-anchor="end" class="axis">
                {formatCompact(t)}
              </text>
            </g>
          ))}
          {bars.map((bar, i) => (
            <rect key={buckets[i]?.start} x={bar.x} y={bar.y} width={bar.width} height={bar.height} class="bar">
              <title>{`${formatDay(buckets[i]?.start ?? "")}: ${formatCredits(net[i] ?? 0)}`}</title>
            </rect>
          ))}
          {first && last ? (
            <>
              <text x={0} y={plotHeight + 20} class="axis">
                {formatDay(first.start)}
              </text>
              <text x={plotWidth} y={plotHeight + 20} text-anchor="end" class="axis">
                {formatDay(last.start)}
              </text>
            </>
          ) : null}
        </g>
      </svg>
      <figcaption>{summary}</figcaption>
      <details>
        <summary>Show the numbers</summary>
        <table>
          <caption class="visually-hidden">Usage per day</caption>
          <thead>
            <tr>
              <th scope="col">Day (UTC)</th>
              <th scope="col">Tasks</th>
              <th scope="col">Charged</th>
              <th scope="col">Refunded</th>
            </tr>
          </thead>
          <tbody>
            {buckets.map((b) => (
              <tr key={b.start}>
                <th scope="row">{b.start.slice(0, 10)}</th>
                <td>{b.tasks_created}</td>
                <td>{b.credits_charged}</td>
                <td>{b.credits_refunded}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </figure>
  );
}
