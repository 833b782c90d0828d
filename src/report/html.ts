// The run report: one self-contained report.html (inline SVG plots, a summary table, further
// tables, links to the PNGs) plus one PNG per plot, written next to it in the run folder.
//
//   const records = readMetrics(path.join(runDir, 'metrics.jsonl'));
//   writeRunReport(runDir, {
//     title: 'R1-Zero (miniature)',
//     summary: { steps: 200, 'pass@1 before': 0.12, 'pass@1 after': 0.41 },
//     plots: [
//       metricPlot(records, { title: 'Loss', keys: ['loss', 'mtp_loss'], smoothing: 0.8, logY: true }),
//       metricPlot(records, { title: 'Reward', keys: ['reward'], file: 'reward.png' }),
//     ],
//   });
//
// Every file is written atomically (temp file + rename), so a browser refreshing the report during
// a run never sees half a file.

import path from 'node:path';
import { writeFileAtomic } from './fsutil.js';
import { esc, plotSvg, type FigureOptions, type Panel } from './plot.js';
import { pngSupport, svgToPng, type PngOptions } from './png.js';
import { seriesFrom, type MetricRecord } from './metrics.js';
import { formatValue } from './ticks.js';

export { readMetrics, seriesFrom, numericKeys, parseJsonLenient } from './metrics.js';
export type { MetricRecord, ReadMetricsOptions, SeriesFromOptions } from './metrics.js';

export type Cell = string | number | boolean | null | undefined;

export interface ReportTable {
  title: string;
  columns: string[];
  rows: Cell[][];
}

export interface ReportPlot {
  title: string;
  /** PNG file name relative to the run folder, e.g. 'loss.png' or 'plots/reward.png'. */
  file: string;
  /** The SVG document (from plotSvg / linePlotSvg), inlined in the HTML and rasterised to `file`. */
  svg: string;
  caption?: string;
}

export interface RunReport {
  title: string;
  summary: Record<string, string | number>;
  tables?: ReportTable[];
  plots: ReportPlot[];
  /** Free-text paragraphs shown under the summary. */
  notes?: string[];
}

export interface WriteReportOptions extends PngOptions {
  /** Name of the HTML file in runDir (default 'report.html'). */
  htmlFile?: string;
  /** Render PNGs (default true). When PNG rendering is unavailable the HTML is still written. */
  png?: boolean;
  /** Called for each problem that did not stop the report (default: console.warn). */
  warn?: (message: string) => void;
  /** Timestamp shown in the report (default: now). */
  generatedAt?: Date;
}

export interface WrittenReport {
  /** Absolute path of the HTML file. */
  html: string;
  /** Absolute paths of the PNG files written. */
  pngs: string[];
  warnings: string[];
}

/** Writes report.html and the plot PNGs into runDir (created if needed). */
export function writeRunReport(runDir: string, report: RunReport, opts: WriteReportOptions = {}): WrittenReport {
  const warnings: string[] = [];
  const warn = (m: string): void => { warnings.push(m); (opts.warn ?? ((s: string) => console.warn(s)))(m); };
  const dir = path.resolve(runDir);
  const htmlName = opts.htmlFile ?? 'report.html';
  checkRelative(htmlName, /\.html?$/i, 'htmlFile');
  const seen = new Set<string>();
  for (const p of report.plots) {
    checkRelative(p.file, /\.png$/i, `plot '${p.title}' file`);
    const norm = path.normalize(p.file);
    if (seen.has(norm)) throw new Error(`two plots write the same file: ${p.file}`);
    seen.add(norm);
    if (!/^\s*(<\?xml[^>]*>\s*)?<svg[\s>]/.test(p.svg)) throw new Error(`plot '${p.title}': svg is not an SVG document`);
  }

  // PNGs first, so the HTML only links the ones that exist.
  const pngs: string[] = [];
  const pngOk = new Set<string>();
  if (opts.png ?? true) {
    const support = pngSupport();
    if (!support.ok) warn(`report: PNG files not written: ${support.reason}`);
    else {
      if (support.fonts.length === 0) warn('report: no DejaVu Sans font found (npm package dejavu-fonts-ttf); PNG text uses system fonts');
      for (const p of report.plots) {
        const file = path.join(dir, p.file);
        try {
          writeFileAtomic(file, svgToPng(p.svg, { scale: opts.scale, background: opts.background }));
          pngs.push(file);
          pngOk.add(p.file);
        } catch (err) {
          warn(`report: PNG for '${p.title}' not written: ${(err as Error).message}`);
        }
      }
    }
  }

  const html = renderHtml(report, pngOk, opts.generatedAt ?? new Date());
  const htmlPath = path.join(dir, htmlName);
  writeFileAtomic(htmlPath, html);
  return { html: htmlPath, pngs, warnings };
}

function checkRelative(file: string, ext: RegExp, what: string): void {
  if (!file || path.isAbsolute(file) || file.split(/[\\/]/).includes('..') || !ext.test(file)) {
    throw new Error(`${what} must be a relative path inside the run folder ending in ${ext.source.replace(/[\\$]/g, '')}: ${JSON.stringify(file)}`);
  }
}

function cell(v: Cell): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return esc(formatValue(v));
  return esc(String(v));
}

const CSS = `
body{font-family:'DejaVu Sans','Helvetica Neue',Arial,sans-serif;margin:0;background:#f6f7f9;color:#1d1d1f}
main{max-width:1320px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:17px;margin:0 0 10px}
.meta{color:#777;font-size:13px;margin-bottom:20px}
section{background:#fff;border:1px solid #e3e5e8;border-radius:8px;padding:16px 18px;margin-bottom:18px}
table{border-collapse:collapse;font-size:14px}
th,td{padding:5px 12px;border-bottom:1px solid #eceef1;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
th{background:#fafbfc;font-weight:600}
.summary td:first-child{color:#555}
.plots{display:flex;flex-wrap:wrap;gap:18px}
figure{margin:0;background:#fff;border:1px solid #e3e5e8;border-radius:8px;padding:12px;max-width:100%}
figure svg{max-width:100%;height:auto;display:block}
figcaption{font-size:13px;color:#555;margin-top:6px}
figcaption a{color:#0b62c4}
p.note{font-size:14px;color:#333;margin:8px 0 0}
`;

function renderHtml(report: RunReport, pngOk: Set<string>, when: Date): string {
  const h: string[] = [];
  h.push('<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(report.title)}</title>`, `<style>${CSS}</style>`, '</head>', '<body>', '<main>');
  h.push(`<h1>${esc(report.title)}</h1>`);
  h.push(`<div class="meta">generated ${esc(when.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC'))}</div>`);

  const entries = Object.entries(report.summary ?? {});
  if (entries.length || report.notes?.length) {
    h.push('<section class="summary">', '<h2>Summary</h2>');
    if (entries.length) {
      h.push('<table>');
      for (const [k, v] of entries) h.push(`<tr><td>${esc(k)}</td><td${typeof v === 'number' ? ' class="num"' : ''}>${cell(v)}</td></tr>`);
      h.push('</table>');
    }
    for (const n of report.notes ?? []) h.push(`<p class="note">${esc(n)}</p>`);
    h.push('</section>');
  }

  if (report.plots.length) {
    h.push('<section>', '<h2>Plots</h2>', '<div class="plots">');
    report.plots.forEach((p, i) => {
      // Inline SVGs share one document: make their ids unique per plot.
      const svg = p.svg.replace(/^\s*<\?xml[^>]*>\s*/, '').replace(/r1ts-fig(\d+)/g, `r1ts-plot${i}-fig$1`);
      const href = p.file.split(/[\\/]/).map(encodeURIComponent).join('/');
      const link = pngOk.has(p.file) ? ` <a class="png-link" href="${esc(href)}">PNG</a>` : '';
      h.push(`<figure id="plot-${i}" data-file="${esc(p.file)}">`, svg,
        `<figcaption><strong>${esc(p.title)}</strong>${p.caption ? ` — ${esc(p.caption)}` : ''}${link}</figcaption>`, '</figure>');
    });
    h.push('</div>', '</section>');
  }

  for (const t of report.tables ?? []) {
    h.push('<section>', `<h2>${esc(t.title)}</h2>`, '<table>');
    h.push(`<tr>${t.columns.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>`);
    for (const row of t.rows) {
      h.push(`<tr>${t.columns.map((_, j) => `<td${typeof row[j] === 'number' ? ' class="num"' : ''}>${cell(row[j])}</td>`).join('')}</tr>`);
    }
    h.push('</table>', '</section>');
  }
  h.push('</main>', '</body>', '</html>', '');
  return h.join('\n');
}

export interface MetricPlotOptions extends Omit<Panel, 'series' | 'title'>, Pick<FigureOptions, 'panelWidth' | 'panelHeight' | 'fontSize'> {
  title: string;
  /** Metric keys to draw, one line each, in one panel. */
  keys: string[];
  /** PNG file name (default: the title as a slug + '.png'). */
  file?: string;
  /** x key (default 'step'). */
  x?: string;
  /** Only these records (e.g. one phase of the run). */
  filter?: (record: MetricRecord) => boolean;
  /** Display names for the keys. */
  names?: Record<string, string>;
  caption?: string;
}

/** One ReportPlot of some metric keys over steps, straight from readMetrics' records. */
export function metricPlot(records: ReadonlyArray<MetricRecord>, o: MetricPlotOptions): ReportPlot {
  const { title, keys, file, x, filter, names, caption, panelWidth, panelHeight, fontSize, ...panel } = o;
  const series = keys.map((k) => seriesFrom(records, k, { x, filter, name: names?.[k] ?? k }));
  const svg = plotSvg({ ...panel, title, series, xLabel: panel.xLabel ?? x ?? 'step' }, { panelWidth, panelHeight, fontSize });
  const plot: ReportPlot = { title, file: file ?? `${slug(title)}.png`, svg };
  if (caption) plot.caption = caption;
  return plot;
}

/**
 * The usual plots of a run, for whichever of these metric keys the records have:
 * loss (+ mtp_loss, balance_loss; log y, smoothed), lr, grad_norm, reward (+ format/accuracy
 * rewards), accuracy, response_length, reflection_rate, answer styles, kl, tokens_per_s. Keys absent from every
 * record are left out, so the same call serves pretraining, SFT and GRPO runs.
 */
export function standardPlots(records: ReadonlyArray<MetricRecord>, opts: { smoothing?: number } = {}): ReportPlot[] {
  const has = (k: string): boolean => records.some((r) => typeof r[k] === 'number' || typeof r[k] === 'boolean');
  const smoothing = opts.smoothing ?? (records.length >= 50 ? 0.8 : 0);
  const groups: Array<{ title: string; keys: string[]; logY?: boolean; smooth?: boolean; yLabel?: string; unit?: boolean }> = [
    { title: 'Loss', keys: ['loss', 'mtp_loss', 'balance_loss'], logY: true, smooth: true },
    { title: 'Reward', keys: ['reward', 'accuracy_reward', 'format_reward'], smooth: true },
    { title: 'Accuracy', keys: ['accuracy'], smooth: true, unit: true },
    { title: 'Response length', keys: ['response_length'], smooth: true, yLabel: 'tokens' },
    { title: 'Reflection rate', keys: ['reflection_rate'], smooth: true, unit: true },
    { title: 'Answer styles', keys: ['style_direct', 'style_worked', 'style_checked'], smooth: true, unit: true },
    { title: 'KL to reference', keys: ['kl'], smooth: true },
    { title: 'Learning rate', keys: ['lr'] },
    { title: 'Gradient norm', keys: ['grad_norm'], logY: true, smooth: true },
    { title: 'Throughput', keys: ['tokens_per_s'], yLabel: 'tokens/s', smooth: true },
  ];
  const plots: ReportPlot[] = [];
  for (const g of groups) {
    const keys = g.keys.filter(has);
    if (!keys.length) continue;
    const o: MetricPlotOptions = { title: g.title, keys, logY: g.logY, smoothing: g.smooth ? smoothing : 0, yLabel: g.yLabel };
    if (g.unit) { o.yMin = 0; o.yMax = 1; }
    plots.push(metricPlot(records, o));
  }
  return plots;
}

/** 'Reward / accuracy (GRPO)' → 'reward-accuracy-grpo'. */
export function slug(s: string): string {
  return s.toLowerCase().normalize('NFKD').replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'plot';
}
