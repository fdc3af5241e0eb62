/**
 * A small SVG line chart with two y axes (left: counts, right: bytes), written by hand so
 * the c1m report needs no charting library and opens in any browser.
 */

/** One line of the chart: its points, colour, axis and dash. */
export interface ChartSeries {
  name: string;
  color: string;
  /** "left" (counts) or "right" (bytes). */
  axis: "left" | "right";
  /** [x, y] points, x in seconds. */
  points: Array<[number, number]>;
  dashed?: boolean;
}

/** A shaded span of x with a label (a c1m phase). */
interface ChartBand {
  /** Shaded x range (a phase), with a label at its top. */
  fromX: number;
  toX: number;
  label: string;
}

/** What renderChart draws. */
interface ChartOptions {
  title: string;
  xLabel: string;
  leftLabel: string;
  rightLabel: string;
  series: ChartSeries[];
  bands?: ChartBand[];
  width?: number;
  height?: number;
  /** Formats right-axis values (default: bytes in GiB, or MiB below 1 GiB, on round steps). */
  formatRight?: (v: number) => string;
  formatLeft?: (v: number) => string;
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** A "nice" axis maximum and step for values up to max: 1, 2 or 5 × 10^k steps, ~5 ticks. */
export function niceScale(max: number): { top: number; step: number } {
  if (!(max > 0) || !Number.isFinite(max)) return { top: 1, step: 0.2 };
  const rough = max / 5;
  const pow = 10 ** Math.floor(Math.log10(rough));
  const f = rough / pow;
  const step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * pow;
  return { top: Math.ceil(max / step) * step, step };
}

/** The chart as a standalone SVG document. */
export function renderChart(o: ChartOptions): string {
  const W = o.width ?? 960;
  const m = { l: 80, r: 80, t: 40, b: 70 };
  // Legend entries flow into rows under the plot.
  const legend: Array<{ s: ChartSeries; x: number; row: number }> = [];
  {
    let lx = m.l;
    let row = 0;
    for (const s of o.series) {
      const w = 34 + (s.name.length + 8) * 6.5;
      if (lx + w > W - 10 && lx > m.l) {
        row++;
        lx = m.l;
      }
      legend.push({ s, x: lx, row });
      lx += w;
    }
  }
  const legendRows = legend.length ? legend[legend.length - 1]!.row + 1 : 0;
  m.b = 50 + legendRows * 18;
  const H = (o.height ?? 480) + (legendRows - 1) * 18;
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  let xMax = 0;
  let lMax = 0;
  let rMax = 0;
  for (const s of o.series) {
    for (const [x, y] of s.points) {
      if (x > xMax) xMax = x;
      if (s.axis === "left" && y > lMax) lMax = y;
      if (s.axis === "right" && y > rMax) rMax = y;
    }
  }
  for (const b of o.bands ?? []) if (b.toX > xMax) xMax = b.toX;
  const xs = niceScale(xMax);
  const ls = niceScale(lMax);
  // Bytes get round steps in their display unit.
  const rUnit = o.formatRight ? 1 : rMax >= 2 ** 30 ? 2 ** 30 : 2 ** 20;
  const rsUnits = niceScale(rMax / rUnit);
  const rs = { top: rsUnits.top * rUnit, step: rsUnits.step * rUnit };
  const fx = (x: number) => m.l + (x / xs.top) * pw;
  const fl = (y: number) => m.t + ph - (y / ls.top) * ph;
  const fr = (y: number) => m.t + ph - (y / rs.top) * ph;
  const fmtL = o.formatLeft ?? ((v: number) => (v >= 1e6 ? `${v / 1e6}M` : v >= 1e3 ? `${v / 1e3}k` : String(v)));
  const fmtR = o.formatRight ?? ((v: number) => `${Number((v / rUnit).toFixed(3))} ${rUnit === 2 ** 30 ? "GiB" : "MiB"}`);

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(o.title)}</text>`,
  );
  for (const [i, b] of (o.bands ?? []).entries()) {
    const x0 = fx(b.fromX);
    const x1 = fx(b.toX);
    out.push(
      `<rect x="${x0.toFixed(1)}" y="${m.t}" width="${Math.max(0, x1 - x0).toFixed(1)}" height="${ph}" fill="${i % 2 ? "#f3f3fb" : "#f7fbf3"}"/>`,
      `<text x="${((x0 + x1) / 2).toFixed(1)}" y="${m.t + 14}" text-anchor="middle" fill="#666">${esc(b.label)}</text>`,
    );
  }
  // Grid and axes.
  for (let v = 0; v <= ls.top + 1e-9; v += ls.step) {
    const y = fl(v).toFixed(1);
    out.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${y}" y2="${y}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${m.l - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${esc(fmtL(v))}</text>`);
  }
  for (let v = 0; v <= rs.top + 1e-9; v += rs.step) {
    out.push(`<text x="${m.l + pw + 6}" y="${fr(v).toFixed(1)}" dominant-baseline="middle">${esc(fmtR(v))}</text>`);
  }
  for (let v = 0; v <= xs.top + 1e-9; v += xs.step) {
    const x = fx(v).toFixed(1);
    out.push(`<line x1="${x}" x2="${x}" y1="${m.t + ph}" y2="${m.t + ph + 5}" stroke="#333"/>`);
    out.push(`<text x="${x}" y="${m.t + ph + 18}" text-anchor="middle">${Number(v.toFixed(6))}</text>`);
  }
  out.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${m.l + pw / 2}" y="${m.t + ph + 34}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  out.push(`<text transform="translate(18 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${esc(o.leftLabel)}</text>`);
  out.push(`<text transform="translate(${W - 14} ${m.t + ph / 2}) rotate(90)" text-anchor="middle">${esc(o.rightLabel)}</text>`);
  // Series.
  for (const s of o.series) {
    if (s.points.length === 0) continue;
    const f = s.axis === "left" ? fl : fr;
    const d = s.points.map(([x, y], i) => `${i ? "L" : "M"}${fx(x).toFixed(1)} ${f(y).toFixed(1)}`).join("");
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ""}/>`);
  }
  // Legend.
  for (const { s, x, row } of legend) {
    const y = H - 14 - (legendRows - 1 - row) * 18;
    out.push(
      `<line x1="${x}" x2="${x + 22}" y1="${y}" y2="${y}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ""}/>`,
      `<text x="${x + 27}" y="${y}" dominant-baseline="middle">${esc(`${s.name} (${s.axis === "left" ? "left" : "right"})`)}</text>`,
    );
  }
  out.push("</svg>");
  return out.join("\n") + "\n";
}
