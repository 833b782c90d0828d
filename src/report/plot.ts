// Line plots of named series (x = step, y = value) as SVG strings and PNG files.
//
//   const svg = plotSvg([{ title: 'loss', series: [seriesFrom(records, 'loss')], smoothing: 0.9, logY: true },
//                        { title: 'reward', series: [seriesFrom(records, 'reward')] }], { title: 'run 7' });
//   writePng('run/loss.png', svg);
//
// - Several panels in a grid (`columns`), each with its own axes, title and legend.
// - Ticks at nice round numbers on crisp (pixel-aligned) axes; a log-scale y option.
// - Optional EMA smoothing (TensorBoard-style, debiased) drawn over the faded raw points.
// - NaN/±Infinity points are skipped (and counted in a footnote); a panel with nothing to draw says
//   so in the picture instead of throwing.
// - Long series are decimated per pixel column (first/min/max/last), so a 100k-step run still makes
//   a small SVG with the same envelope.
//
// PNG: the SVG is rasterised by resvg (@resvg/resvg-js, a Rust renderer shipped as prebuilt npm
// binaries) with the DejaVu Sans TTF from the `dejavu-fonts-ttf` npm package, so text renders the
// same on any machine, with or without system fonts. See png.ts.

import { formatLogTick, formatTick, linearTicks, logTicks } from './ticks.js';

export interface Point { x: number; y: number }

export interface Series {
  name: string;
  /** Points in any order; sorted by x for drawing. Non-finite x or y are skipped. */
  points: ReadonlyArray<Point>;
  /** CSS colour; defaults to the palette by position. */
  color?: string;
  dashed?: boolean;
  /** Non-finite values already dropped upstream (seriesFrom fills this); shown in the footnote. */
  skipped?: number;
}

export interface Panel {
  title?: string;
  series: Series[];
  xLabel?: string;
  yLabel?: string;
  /** log10 y axis; points with y ≤ 0 are skipped (and counted). */
  logY?: boolean;
  /**
   * EMA smoothing weight in [0, 1): s_t = w·s_{t-1} + (1−w)·y_t, debiased like TensorBoard.
   * The smoothed line is drawn solid over the raw points, which are faded. 0/undefined: raw only.
   */
  smoothing?: number;
  /** Fixed axis limits (else from the data). Points outside are clipped. */
  xMin?: number; xMax?: number; yMin?: number; yMax?: number;
  /** Markers on the points: 'auto' (default) draws them when a series has ≤ 40 points. */
  markers?: boolean | 'auto';
}

export interface FigureOptions {
  /** Figure title above all panels. */
  title?: string;
  /** Panels per row (default: 1 for one panel, 2 for 2–4, 3 beyond). */
  columns?: number;
  /** Size of one panel in px (default 480 × 320). */
  panelWidth?: number;
  panelHeight?: number;
  fontFamily?: string;
  /** Base font size in px (default 12). */
  fontSize?: number;
  background?: string;
}

export const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
export const DEFAULT_FONT_FAMILY = "'DejaVu Sans', 'Helvetica Neue', Arial, sans-serif";
/** The message drawn in a panel without a single finite point. */
export const NO_DATA_MESSAGE = 'no data to plot';

let figureCounter = 0;

/** One panel: a line plot of the given series. */
export function linePlotSvg(series: Series[], opts: Omit<Panel, 'series'> & FigureOptions = {}): string {
  const { title, columns, panelWidth, panelHeight, fontFamily, fontSize, background, ...panel } = opts;
  return plotSvg([{ ...panel, title, series }], { columns, panelWidth, panelHeight, fontFamily, fontSize, background });
}

/** Renders one or more panels in a grid to a standalone SVG document string. */
export function plotSvg(panels: Panel | Panel[], fig: FigureOptions = {}): string {
  const list = Array.isArray(panels) ? panels : [panels];
  const fs = fig.fontSize ?? 12;
  const pw = Math.round(fig.panelWidth ?? 480), ph = Math.round(fig.panelHeight ?? 320);
  const n = Math.max(1, list.length);
  const cols = Math.max(1, Math.min(n, Math.floor(fig.columns ?? (n === 1 ? 1 : n <= 4 ? 2 : 3))));
  const rows = Math.ceil(n / cols);
  const titleH = fig.title ? Math.round(fs * 2.6) : 0;
  const width = cols * pw, height = titleH + rows * ph;
  const id = `r1ts-fig${++figureCounter}`;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
    `font-family="${esc(fig.fontFamily ?? DEFAULT_FONT_FAMILY)}" font-size="${fs}">`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="${esc(fig.background ?? '#ffffff')}"/>`);
  if (fig.title) {
    out.push(`<text class="figure-title" x="${width / 2}" y="${Math.round(titleH * 0.62)}" text-anchor="middle" ` +
      `font-size="${Math.round(fs * 1.5)}" font-weight="bold" fill="#111">${esc(fig.title)}</text>`);
  }
  if (list.length === 0) {
    out.push(`<text class="no-data" x="${width / 2}" y="${titleH + ph / 2}" text-anchor="middle" fill="#888">${NO_DATA_MESSAGE}</text>`);
  }
  list.forEach((p, i) => {
    const ox = (i % cols) * pw, oy = titleH + Math.floor(i / cols) * ph;
    out.push(`<g class="panel" transform="translate(${ox},${oy})">`);
    renderPanel(out, p, pw, ph, fs, `${id}-p${i}`);
    out.push('</g>');
  });
  out.push('</svg>');
  return out.join('\n');
}

interface Prepared {
  name: string;
  color: string;
  dashed: boolean;
  raw: Point[];
  smooth: Point[] | null;
  skipped: number;
}

function renderPanel(out: string[], p: Panel, pw: number, ph: number, fs: number, id: string): void {
  const charW = fs * 0.62;
  const logY = p.logY === true;
  const w = p.smoothing ?? 0;
  if (!(w >= 0 && w < 1)) throw new RangeError(`smoothing must be in [0, 1), got ${p.smoothing}`);

  const prepared: Prepared[] = p.series.map((s, i) => {
    let skipped = s.skipped ?? 0;
    const raw: Point[] = [];
    for (const pt of s.points) {
      const x = pt?.x, y = pt?.y;
      if (typeof x !== 'number' || typeof y !== 'number' || !Number.isFinite(x) || !Number.isFinite(y) || (logY && y <= 0)) { skipped++; continue; }
      raw.push({ x, y });
    }
    if (!isSorted(raw)) raw.sort((a, b) => a.x - b.x);
    return {
      name: s.name, color: s.color ?? PALETTE[i % PALETTE.length], dashed: s.dashed ?? false,
      raw, smooth: w > 0 && raw.length > 1 ? ema(raw, w) : null, skipped,
    };
  });
  const all = prepared.flatMap((s) => s.raw);
  const totalSkipped = prepared.reduce((a, s) => a + s.skipped, 0);

  // --- Vertical layout: title, legend rows, plot, x tick labels, x label.
  let top = 8;
  if (p.title) top += Math.round(fs * 1.7);
  const legendItems = prepared.map((s) => ({ s, label: s.name + (s.raw.length === 0 ? ' (no data)' : ''), w: 26 + s.name.length * charW + (s.raw.length === 0 ? 9 * charW : 0) + 14 }));
  const legendRows: Array<typeof legendItems> = [];
  if (prepared.length > 1 || (prepared.length === 1 && !p.title) || prepared.some((s) => s.smooth)) {
    let row: typeof legendItems = [], used = 0;
    for (const it of legendItems) {
      if (row.length && used + it.w > pw - 70) { legendRows.push(row); row = []; used = 0; }
      row.push(it); used += it.w;
    }
    if (row.length) legendRows.push(row);
  }
  const legendTop = top;
  top += legendRows.length * Math.round(fs * 1.5) + 6;
  const bottomPad = Math.round(fs * 1.6) + 8 + (p.xLabel ?? 'step' ? Math.round(fs * 1.4) : 0) + (totalSkipped ? Math.round(fs * 1.1) : 0);

  // --- Domains and ticks.
  const xs = all.map((q) => q.x), ys = all.map((q) => q.y);
  let xLo = p.xMin ?? (xs.length ? min(xs) : 0), xHi = p.xMax ?? (xs.length ? max(xs) : 1);
  // Steps usually start at 1 (or a little after 0): start the axis at 0 then.
  if (p.xMin === undefined && xLo > 0 && xLo <= (xHi - xLo) * 0.05) xLo = 0;
  if (xHi <= xLo) { const pad = xLo === 0 ? 1 : Math.abs(xLo) * 0.05 || 1; xLo -= pad; xHi += pad; }
  let yMinData = ys.length ? min(ys) : (logY ? 0.1 : 0), yMaxData = ys.length ? max(ys) : 1;
  const yLoFixed = p.yMin !== undefined && (!logY || p.yMin > 0), yHiFixed = p.yMax !== undefined && (!logY || p.yMax > 0);
  if (yLoFixed) yMinData = p.yMin!;
  if (yHiFixed) yMaxData = p.yMax!;
  let yTickVals: number[], yMinor: number[] = [], yLo: number, yHi: number, yLabelOf: (v: number) => string;
  if (logY) {
    const t = logTicks(yMinData, yMaxData, Math.max(3, Math.floor(plotHGuess(ph, top, bottomPad) / 50)));
    yLo = yLoFixed ? yMinData : t.lo; yHi = yHiFixed ? yMaxData : t.hi;
    yTickVals = t.ticks; yMinor = t.minor; yLabelOf = formatLogTick;
  } else {
    const t = linearTicks(yMinData, yMaxData, Math.max(3, Math.floor(plotHGuess(ph, top, bottomPad) / 50)), true);
    yLo = yLoFixed ? yMinData : t.lo; yHi = yHiFixed ? yMaxData : t.hi;
    yTickVals = t.ticks; yLabelOf = (v) => formatTick(v, t.step);
  }
  const inY = (v: number): boolean => v >= yLo - Math.abs(yHi - yLo) * 1e-9 && v <= yHi + Math.abs(yHi - yLo) * 1e-9;
  yTickVals = yTickVals.filter(inY); yMinor = yMinor.filter(inY);
  const yLabels = yTickVals.map(yLabelOf);

  const left = Math.round(Math.max(28, ...yLabels.map((s) => s.length * charW)) + 14 + (p.yLabel ? fs * 1.5 : 0));
  const right = 18;
  const plotX = left, plotY = Math.round(top), plotW = Math.max(40, pw - left - right), plotH = Math.max(40, ph - top - bottomPad);
  const xt = linearTicks(xLo, xHi, Math.max(2, Math.floor(plotW / 80)), false);
  const sx = (x: number): number => plotX + ((x - xLo) / (xHi - xLo)) * plotW;
  const ly = (v: number): number => (logY ? Math.log10(v) : v);
  const yA = ly(yLo), yB = ly(yHi);
  const sy = (y: number): number => plotY + plotH - ((ly(y) - yA) / (yB - yA || 1)) * plotH;
  // Pixel-centred positions for 1px lines, kept inside the frame.
  const crispX = (v: number): number => Math.min(Math.max(Math.round(v) + 0.5, plotX + 0.5), plotX + plotW - 0.5);
  const crispY = (v: number): number => Math.min(Math.max(Math.round(v) + 0.5, plotY + 0.5), plotY + plotH - 0.5);
  const empty = all.length === 0;
  if (empty) { yTickVals = []; yMinor = []; xt.ticks = []; }

  // --- Title and legend.
  if (p.title) {
    out.push(`<text class="panel-title" x="${pw / 2}" y="${8 + Math.round(fs * 1.15)}" text-anchor="middle" font-size="${Math.round(fs * 1.2)}" font-weight="bold" fill="#222">${esc(p.title)}</text>`);
  }
  legendRows.forEach((row, r) => {
    const rowW = row.reduce((a, it) => a + it.w, 0) - 14;
    let x = Math.round(plotX + Math.max(0, (plotW - rowW) / 2));
    const y = legendTop + r * Math.round(fs * 1.5) + Math.round(fs * 0.8);
    for (const it of row) {
      out.push(`<g class="legend-item" data-series="${esc(it.s.name)}">` +
        `<line x1="${x}" y1="${y - fs * 0.35}" x2="${x + 20}" y2="${y - fs * 0.35}" stroke="${esc(it.s.color)}" stroke-width="2.5"${it.s.dashed ? ' stroke-dasharray="5,3"' : ''}/>` +
        `<text x="${x + 26}" y="${y}" fill="#222">${esc(it.label)}</text></g>`);
      x += Math.round(it.w);
    }
  });

  // --- Grid, frame, ticks, tick labels.
  out.push(`<g class="grid" stroke="#e6e6e6" stroke-width="1" shape-rendering="crispEdges">`);
  for (const v of yMinor) out.push(`<line x1="${plotX}" x2="${plotX + plotW}" y1="${crispY(sy(v))}" y2="${crispY(sy(v))}" stroke="#f2f2f2"/>`);
  for (const v of yTickVals) out.push(`<line x1="${plotX}" x2="${plotX + plotW}" y1="${crispY(sy(v))}" y2="${crispY(sy(v))}"/>`);
  for (const v of xt.ticks) out.push(`<line x1="${crispX(sx(v))}" x2="${crispX(sx(v))}" y1="${plotY}" y2="${plotY + plotH}"/>`);
  out.push('</g>');
  out.push(`<rect class="frame" x="${plotX + 0.5}" y="${plotY + 0.5}" width="${plotW - 1}" height="${plotH - 1}" fill="none" stroke="#444" stroke-width="1" shape-rendering="crispEdges"/>`);
  out.push(`<g class="ticks" stroke="#444" stroke-width="1" shape-rendering="crispEdges">`);
  for (const v of yTickVals) out.push(`<line x1="${plotX - 5}" x2="${plotX}" y1="${crispY(sy(v))}" y2="${crispY(sy(v))}"/>`);
  for (const v of yMinor) out.push(`<line x1="${plotX - 3}" x2="${plotX}" y1="${crispY(sy(v))}" y2="${crispY(sy(v))}"/>`);
  for (const v of xt.ticks) out.push(`<line x1="${crispX(sx(v))}" x2="${crispX(sx(v))}" y1="${plotY + plotH}" y2="${plotY + plotH + 5}"/>`);
  out.push('</g>');
  out.push(`<g class="tick-labels" fill="#333">`);
  yTickVals.forEach((v, i) => out.push(`<text class="y-tick" x="${plotX - 8}" y="${r2(sy(v) + fs * 0.35)}" text-anchor="end">${esc(yLabels[i])}</text>`));
  for (const v of xt.ticks) out.push(`<text class="x-tick" x="${r2(sx(v))}" y="${plotY + plotH + 8 + fs}" text-anchor="middle">${esc(formatTick(v, xt.step))}</text>`);
  out.push('</g>');
  const xLabel = p.xLabel ?? 'step';
  if (xLabel) out.push(`<text class="x-label" x="${r2(plotX + plotW / 2)}" y="${plotY + plotH + 8 + Math.round(fs * 2.4)}" text-anchor="middle" fill="#222">${esc(xLabel)}</text>`);
  if (p.yLabel) {
    const cx = Math.round(fs * 1.1), cy = r2(plotY + plotH / 2);
    out.push(`<text class="y-label" x="${cx}" y="${cy}" text-anchor="middle" transform="rotate(-90 ${cx} ${cy})" fill="#222">${esc(p.yLabel)}</text>`);
  }
  if (totalSkipped) {
    out.push(`<text class="footnote" x="${pw - right}" y="${ph - 6}" text-anchor="end" font-size="${Math.round(fs * 0.85)}" fill="#888">` +
      `${totalSkipped} non-finite${logY ? ' or non-positive' : ''} value${totalSkipped === 1 ? '' : 's'} skipped</text>`);
  }

  // --- Data.
  if (empty) {
    const names = prepared.map((s) => s.name).join(', ');
    out.push(`<text class="no-data" x="${r2(plotX + plotW / 2)}" y="${r2(plotY + plotH / 2)}" text-anchor="middle" font-size="${Math.round(fs * 1.3)}" fill="#888">${NO_DATA_MESSAGE}</text>`);
    out.push(`<text class="no-data-detail" x="${r2(plotX + plotW / 2)}" y="${r2(plotY + plotH / 2 + fs * 1.6)}" text-anchor="middle" fill="#aaa">` +
      `${esc(!prepared.length ? 'no series given' : totalSkipped ? `no finite values for: ${names}` : `no values for: ${names}`)}</text>`);
    return;
  }
  out.push(`<defs><clipPath id="${id}-clip"><rect x="${plotX}" y="${plotY}" width="${plotW}" height="${plotH}"/></clipPath></defs>`);
  out.push(`<g class="data" clip-path="url(#${id}-clip)" fill="none" stroke-linejoin="round" stroke-linecap="round">`);
  const cols = Math.max(1, Math.round(plotW * 1.5));
  for (const s of prepared) {
    if (s.raw.length === 0) continue;
    const dash = s.dashed ? ' stroke-dasharray="6,4"' : '';
    const rawD = pathD(decimate(s.raw, xLo, xHi, cols), sx, sy);
    if (s.smooth) {
      out.push(`<path class="series raw" data-series="${esc(s.name)}" d="${rawD}" stroke="${esc(s.color)}" stroke-opacity="0.28" stroke-width="1"/>`);
      out.push(`<path class="series smooth" data-series="${esc(s.name)}" d="${pathD(decimate(s.smooth, xLo, xHi, cols), sx, sy)}" stroke="${esc(s.color)}" stroke-width="2"${dash}/>`);
    } else {
      out.push(`<path class="series" data-series="${esc(s.name)}" d="${rawD}" stroke="${esc(s.color)}" stroke-width="1.75"${dash}/>`);
    }
    const markers = p.markers ?? 'auto';
    if (markers === true || (markers === 'auto' && s.raw.length <= 40)) {
      const r = s.raw.length === 1 ? 3.5 : 2.5;
      const dots = s.raw.map((q) => `<circle cx="${r2(sx(q.x))}" cy="${r2(sy(q.y))}" r="${r}"/>`).join('');
      out.push(`<g class="markers" data-series="${esc(s.name)}" fill="${esc(s.color)}" stroke="none"${s.smooth ? ' fill-opacity="0.5"' : ''}>${dots}</g>`);
    }
  }
  out.push('</g>');
}

/** TensorBoard's debiased EMA: the first smoothed values are not dragged towards 0. */
export function ema(points: ReadonlyArray<Point>, weight: number): Point[] {
  const out: Point[] = [];
  let acc = 0, norm = 0;
  for (const p of points) {
    acc = acc * weight + (1 - weight) * p.y;
    norm = norm * weight + (1 - weight);
    out.push({ x: p.x, y: acc / norm });
  }
  return out;
}

/**
 * Keeps at most ~4 points per pixel column (first, min, max, last, in x order), so the drawn line
 * has the same envelope as the full series. Short series are returned as they are.
 */
export function decimate(points: ReadonlyArray<Point>, xLo: number, xHi: number, columns: number): Point[] {
  if (points.length <= columns * 2) return points.slice();
  const out: Point[] = [];
  const span = xHi - xLo || 1;
  let bucket = -Infinity;
  let first: Point | null = null, lo: Point | null = null, hi: Point | null = null, last: Point | null = null;
  const flush = (): void => {
    if (!first) return;
    const keep = [first, lo!, hi!, last!].filter((q, i, arr) => arr.indexOf(q) === i).sort((a, b) => a.x - b.x);
    out.push(...keep);
  };
  for (const p of points) {
    const b = Math.floor(((p.x - xLo) / span) * columns);
    if (b !== bucket) { flush(); bucket = b; first = lo = hi = last = p; continue; }
    if (p.y < lo!.y) lo = p;
    if (p.y > hi!.y) hi = p;
    last = p;
  }
  flush();
  return out;
}

function pathD(points: ReadonlyArray<Point>, sx: (x: number) => number, sy: (y: number) => number): string {
  let d = '';
  points.forEach((q, i) => { d += `${i ? 'L' : 'M'}${r2(sx(q.x))},${r2(sy(q.y))}`; });
  // A single point still gets a visible mark (a zero-length segment with a round cap).
  if (points.length === 1) d += `L${r2(sx(points[0].x) + 0.01)},${r2(sy(points[0].y))}`;
  return d;
}

const plotHGuess = (ph: number, top: number, bottom: number): number => Math.max(40, ph - top - bottom);

function isSorted(p: Point[]): boolean {
  for (let i = 1; i < p.length; i++) if (p[i].x < p[i - 1].x) return false;
  return true;
}
const min = (a: number[]): number => a.reduce((m, v) => (v < m ? v : m), Infinity);
const max = (a: number[]): number => a.reduce((m, v) => (v > m ? v : m), -Infinity);
const r2 = (v: number): number => Math.round(v * 100) / 100;

/** Escapes text for SVG/HTML content and attribute values. */
export function esc(s: string): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]!));
}
