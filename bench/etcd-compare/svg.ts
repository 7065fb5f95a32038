/**
 * The etcd comparison as a hand-written SVG chart (no dependencies): one panel per metric,
 * and in each panel a group of bars per row, one bar per system (the medians), with the
 * Concord/etcd ratio above each group. Pure (tested in test/bench/etcd-compare-svg.test.ts).
 */
import { formatFigure, formatRatio, METRIC_TITLES, METRICS, SYSTEMS, type RowSummary } from "./stats.js";

const COLORS: Readonly<Record<(typeof SYSTEMS)[number], string>> = { concord: "#2b6cb0", etcd: "#9c9c9c" };
const GROUP_WIDTH = 64;
const BAR_WIDTH = 22;
const PANEL_HEIGHT = 250;
const PLOT_HEIGHT = 150;
const PLOT_TOP = 40;
const LEFT = 70;
const RIGHT = 20;
const HEADER = 60;

/** Text made safe to put inside an SVG element or attribute. */
export function escapeXml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

/**
 * The decades a log axis spans to show every positive finite value: 10^low to 10^high, at
 * least one decade. Rows differ by orders of magnitude (a watch row counts 100 deliveries per
 * put), so a linear axis would flatten most bars.
 */
export function decadeRange(values: readonly number[]): { low: number; high: number } {
  const shown = values.filter((value) => value > 0 && Number.isFinite(value));
  if (shown.length === 0) return { low: 0, high: 1 };
  const low = Math.floor(Math.log10(Math.min(...shown)));
  const high = Math.max(low + 1, Math.ceil(Math.log10(Math.max(...shown))));
  return { low, high };
}

function text(x: number, y: number, content: string, attributes = ""): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}"${attributes}>${escapeXml(content)}</text>`;
}

function panel(rows: readonly RowSummary[], metricIndex: number, width: number): string {
  const metric = METRICS[metricIndex];
  if (metric === undefined) throw new RangeError(`no metric ${metricIndex}`);
  const top = HEADER + metricIndex * PANEL_HEIGHT;
  const baseline = top + PLOT_TOP + PLOT_HEIGHT;
  const values = rows.flatMap((row) => SYSTEMS.map((system) => row.median[system]?.[metric] ?? NaN));
  const { low, high } = decadeRange(values);
  const heightOf = (value: number): number =>
    value <= 0 ? 0 : ((Math.log10(value) - low) / (high - low)) * PLOT_HEIGHT;
  const parts = [
    text(LEFT, top + 20, `${METRIC_TITLES[metric]} (median, log scale)`, ' font-weight="bold"'),
    `<line x1="${LEFT}" y1="${baseline}" x2="${width - RIGHT}" y2="${baseline}" stroke="#333"/>`,
    `<line x1="${LEFT}" y1="${top + PLOT_TOP}" x2="${LEFT}" y2="${baseline}" stroke="#333"/>`,
  ];
  for (let decade = low; decade <= high; decade++) {
    const y = baseline - heightOf(10 ** decade);
    parts.push(
      `<line x1="${LEFT}" y1="${y.toFixed(1)}" x2="${width - RIGHT}" y2="${y.toFixed(1)}" stroke="#ddd"/>`,
      text(LEFT - 6, y + 4, formatFigure(10 ** decade), ' text-anchor="end"'),
    );
  }
  rows.forEach((row, rowIndex) => {
    const groupLeft = LEFT + 10 + rowIndex * GROUP_WIDTH;
    SYSTEMS.forEach((system, systemIndex) => {
      const value = row.median[system]?.[metric];
      if (value === undefined || !Number.isFinite(value)) return;
      const height = heightOf(value);
      const x = groupLeft + systemIndex * BAR_WIDTH;
      parts.push(
        `<rect x="${x}" y="${(baseline - height).toFixed(1)}" width="${BAR_WIDTH - 2}" height="${height.toFixed(1)}" ` +
          `fill="${COLORS[system]}"><title>${escapeXml(`${row.id} ${system}: ${formatFigure(value)}`)}</title></rect>`,
      );
    });
    const ratio = row.concordOverEtcd?.[metric];
    if (ratio !== undefined)
      parts.push(
        text(
          groupLeft + BAR_WIDTH,
          top + PLOT_TOP - 6,
          formatRatio(ratio),
          ' text-anchor="middle" font-size="10"',
        ),
      );
    const labelX = groupLeft + BAR_WIDTH;
    parts.push(
      text(
        labelX,
        baseline + 14,
        row.id,
        ` text-anchor="end" font-size="10" transform="rotate(-30 ${labelX} ${baseline + 14})"`,
      ),
    );
  });
  return parts.join("\n");
}

/** The whole chart: a title, a legend, and one panel per metric. */
export function renderComparisonSvg(rows: readonly RowSummary[], title: string): string {
  const width = Math.max(640, LEFT + RIGHT + 20 + rows.length * GROUP_WIDTH);
  const height = HEADER + METRICS.length * PANEL_HEIGHT;
  const legend = SYSTEMS.map(
    (system, index) =>
      `<rect x="${LEFT + index * 110}" y="34" width="12" height="12" fill="${COLORS[system]}"/>` +
      text(LEFT + index * 110 + 18, 45, system),
  );
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    text(LEFT, 20, title, ' font-size="14" font-weight="bold"'),
    ...legend,
    text(LEFT + 240, 45, "label above each group: concord/etcd", ' font-size="10" fill="#555"'),
    ...METRICS.map((_, index) => panel(rows, index, width)),
    "</svg>",
    "",
  ].join("\n");
}
