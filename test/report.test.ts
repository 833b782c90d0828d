// Run reports: SVG plots (series paths, ticks, legend, empty/NaN handling), PNG output (signature,
// IHDR, size, text actually drawn), report.html with its PNGs, and metrics.jsonl reading.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  plotSvg, linePlotSvg, ema, decimate, NO_DATA_MESSAGE, type Point, type Series,
} from '../src/report/plot.js';
import { linearTicks, logTicks, formatTick, formatLogTick, formatValue, niceStep } from '../src/report/ticks.js';
import { svgToPng, writePng, readPngSize, pngSupport } from '../src/report/png.js';
import { writeRunReport, readMetrics, seriesFrom, metricPlot, standardPlots, slug, parseJsonLenient } from '../src/report/html.js';

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'r1ts-report-'));
const line = (n: number, f: (i: number) => number, from = 1): Point[] => Array.from({ length: n }, (_, i) => ({ x: i + from, y: f(i + from) }));
/** The text of every <text> element of one class, in order. */
const texts = (svg: string, cls: string): string[] => [...svg.matchAll(new RegExp(`<text class="${cls}"[^>]*>([^<]*)</text>`, 'g'))].map((m) => m[1]);

test('ticks: nice round steps, no float noise, short labels', () => {
  assert.deepEqual([0.7, 1, 1.2, 2, 2.2, 3, 4.9, 7].map(niceStep), [1, 1, 2, 2, 2.5, 5, 5, 10]);
  const t = linearTicks(0, 1, 5, true);
  assert.deepEqual(t.ticks, [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(t.ticks.map((v) => formatTick(v, t.step)), ['0', '0.2', '0.4', '0.6', '0.8', '1.0']);
  const x = linearTicks(0, 400, 5, false);
  assert.deepEqual(x.ticks, [0, 100, 200, 300, 400]);
  // Loose y widens to whole ticks; tight x keeps the data range and the ticks inside it.
  const y = linearTicks(1.13, 5.7, 5, true);
  assert.ok(y.lo <= 1.13 && y.hi >= 5.7 && y.ticks[0] === y.lo && y.ticks.at(-1) === y.hi);
  const tx = linearTicks(3, 97, 5, false);
  assert.equal(tx.lo, 3); assert.equal(tx.hi, 97);
  assert.ok(tx.ticks.every((v) => v >= 3 && v <= 97));
  // 0.1 + 0.2 style noise never reaches a label.
  const small = linearTicks(0.1, 0.7, 6, true);
  for (const v of small.ticks) assert.ok(!/0000|9999/.test(formatTick(v, small.step)), formatTick(v, small.step));
  assert.equal(formatTick(20000, 10000), '20k');
  assert.equal(formatTick(1_500_000, 500_000), '1.5M');
  assert.equal(formatTick(2e-5, 1e-5), '2e-5');
  assert.equal(formatTick(0, 0.1), '0');
  // A zero-width range is widened instead of dividing by zero.
  const flat = linearTicks(5, 5, 5, true);
  assert.ok(flat.lo < 5 && flat.hi > 5 && flat.ticks.length >= 2);
  // Log ticks: whole decades over a wide range, 1-2-5 over a narrow one.
  const lw = logTicks(0.003, 400);
  assert.deepEqual(lw.ticks, [0.001, 0.01, 0.1, 1, 10, 100, 1000]);
  assert.deepEqual(lw.ticks.map(formatLogTick), ['0.001', '0.01', '0.1', '1', '10', '100', '1000']);
  assert.equal(formatLogTick(1e-6), '1e-6');
  const ln = logTicks(1.2, 6.3);
  assert.deepEqual(ln.ticks, [1, 2, 5, 10]);
  assert.equal(formatValue(0.41234567), '0.4123');
  assert.equal(formatValue(12345.678), '12346');
  assert.equal(formatValue(400), '400');
});

test('plot SVG: series paths, tick labels, legend, title, labels', () => {
  const loss: Series = { name: 'loss', points: line(200, (s) => 3 * Math.exp(-s / 50) + 1) };
  const mtp: Series = { name: 'mtp <loss>', points: line(200, (s) => 3.3 * Math.exp(-s / 50) + 1.1) };
  const svg = plotSvg([{ title: 'Training loss', series: [loss, mtp], yLabel: 'nats' }], { title: 'Run & co' });
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="480" height="\d+"/);
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  // One path per series, with 200 vertices each.
  const paths = [...svg.matchAll(/<path class="series" data-series="([^"]*)" d="([^"]*)"/g)];
  assert.deepEqual(paths.map((m) => m[1]), ['loss', 'mtp &lt;loss&gt;']);
  for (const m of paths) assert.equal(m[2].split(/[ML]/).filter(Boolean).length, 200);
  // x ticks 0..200 at round numbers, y ticks round too.
  const xt = texts(svg, 'x-tick');
  assert.ok(xt.includes('0') && xt.includes('100') && xt.includes('200'), xt.join(' '));
  const yt = texts(svg, 'y-tick').map(Number);
  assert.ok(yt.length >= 3);
  const step = yt[1] - yt[0];
  for (const v of yt) assert.ok(Math.abs(v / step - Math.round(v / step)) < 1e-9, `tick ${v} is not a multiple of ${step}`);
  assert.ok(yt[0] <= 1 + 1e-9 && yt.at(-1)! >= 4 - 1e-9, 'y ticks span the data');
  // Legend, titles, axis labels; text is escaped.
  assert.match(svg, /class="legend-item" data-series="loss"/);
  assert.match(svg, /class="legend-item" data-series="mtp &lt;loss&gt;"/);
  assert.deepEqual(texts(svg, 'figure-title'), ['Run &amp; co']);
  assert.deepEqual(texts(svg, 'panel-title'), ['Training loss']);
  assert.deepEqual(texts(svg, 'x-label'), ['step']);
  assert.deepEqual(texts(svg, 'y-label'), ['nats']);
  assert.ok(!svg.includes('NaN') && !svg.includes('Infinity'));
});

test('plot SVG: a grid of panels, EMA smoothing over the raw line, log-scale y', () => {
  const noisy = line(300, (s) => 2 + Math.sin(s * 1.7) * 0.5 + s / 300);
  const svg = plotSvg([
    { title: 'reward', series: [{ name: 'reward', points: noisy }], smoothing: 0.9 },
    { title: 'loss', series: [{ name: 'loss', points: line(300, (s) => 100 * Math.exp(-s / 40) + 0.01) }], logY: true },
    { title: 'acc', series: [{ name: 'acc', points: line(10, (s) => s / 10) }], yMin: 0, yMax: 1 },
  ], { columns: 2, panelWidth: 400, panelHeight: 300 });
  assert.match(svg, /width="800" height="600"/);
  assert.equal((svg.match(/<g class="panel"/g) ?? []).length, 3);
  assert.match(svg, /<g class="panel" transform="translate\(0,300\)">/);
  assert.match(svg, /<path class="series raw" data-series="reward"[^>]*stroke-opacity/);
  assert.match(svg, /<path class="series smooth" data-series="reward"/);
  // Log axis: decades as labels.
  const yt = texts(svg, 'y-tick');
  assert.ok(['0.01', '0.1', '1', '10', '100'].every((s) => yt.includes(s)), yt.join(' '));
  // Few points get markers.
  assert.match(svg, /<g class="markers" data-series="acc"/);
  // Unique clip-path ids per panel.
  const ids = [...svg.matchAll(/clipPath id="([^"]+)"/g)].map((m) => m[1]);
  assert.equal(new Set(ids).size, ids.length);
  assert.throws(() => plotSvg({ series: [{ name: 'a', points: noisy }], smoothing: 1 }), /smoothing/);
});

test('EMA is debiased and decimation keeps the envelope of long series', () => {
  const s = ema([{ x: 0, y: 10 }, { x: 1, y: 10 }, { x: 2, y: 20 }], 0.9);
  assert.equal(s[0].y, 10);
  assert.ok(Math.abs(s[1].y - 10) < 1e-12);
  assert.ok(s[2].y > 10 && s[2].y < 20);
  const long = line(100_000, (i) => (i === 5000 ? 50 : Math.sin(i)));
  const d = decimate(long, 1, 100_000, 600);
  assert.ok(d.length <= 600 * 4 + 4, `${d.length}`);
  assert.ok(d.some((p) => p.y === 50), 'the spike survives');
  const svg = linePlotSvg([{ name: 'loss', points: long }]);
  assert.ok(svg.length < 200_000, `svg is ${svg.length} chars`);
});

test('NaN / Infinity points are skipped with a footnote, not a crash', () => {
  const pts: Point[] = [{ x: 1, y: 1 }, { x: 2, y: NaN }, { x: 3, y: Infinity }, { x: NaN, y: 2 }, { x: 4, y: -Infinity }, { x: 5, y: 2 }];
  const svg = linePlotSvg([{ name: 'loss', points: pts }], { title: 'loss' });
  const d = /<path class="series" data-series="loss" d="([^"]*)"/.exec(svg)![1];
  assert.equal(d.split(/[ML]/).filter(Boolean).length, 2);
  assert.match(svg, /4 non-finite values skipped/);
  assert.ok(!/NaN|Infinity/.test(svg));
  // Log scale drops y <= 0 the same way.
  const logSvg = linePlotSvg([{ name: 'kl', points: [{ x: 1, y: 0 }, { x: 2, y: -1 }, { x: 3, y: 0.5 }, { x: 4, y: 0.05 }] }], { logY: true });
  assert.match(logSvg, /2 non-finite or non-positive values skipped/);
  assert.ok(!/NaN|Infinity/.test(logSvg));
});

test('empty series give a clear message in the plot, not an exception', () => {
  const one = linePlotSvg([{ name: 'reward', points: [] }], { title: 'reward' });
  assert.deepEqual(texts(one, 'no-data'), [NO_DATA_MESSAGE]);
  assert.deepEqual(texts(one, 'no-data-detail'), ['no values for: reward']);
  assert.ok(!/<path class="series/.test(one) && !/NaN|Infinity/.test(one));
  const allNaN = linePlotSvg([{ name: 'kl', points: [{ x: 1, y: NaN }] }, { name: 'acc', points: [] }]);
  assert.deepEqual(texts(allNaN, 'no-data-detail'), ['no finite values for: kl, acc']);
  assert.deepEqual(texts(plotSvg([]), 'no-data'), [NO_DATA_MESSAGE]);
  assert.deepEqual(texts(plotSvg({ series: [] }), 'no-data-detail'), ['no series given']);
  // One empty series next to a full one: the full one is drawn, the legend says which is empty.
  const mixed = linePlotSvg([{ name: 'loss', points: line(5, (s) => s) }, { name: 'kl', points: [] }]);
  assert.match(mixed, /<path class="series" data-series="loss"/);
  assert.match(mixed, />kl \(no data\)</);
  // Single point and constant series: a finite, non-degenerate axis.
  for (const pts of [[{ x: 3, y: 7 }], line(10, () => 0.5)]) {
    const svg = linePlotSvg([{ name: 'v', points: pts }]);
    assert.ok(!/NaN|Infinity/.test(svg));
    assert.ok(texts(svg, 'y-tick').length >= 2);
  }
});

test('PNG: valid signature and IHDR, expected size, text drawn with the bundled font', () => {
  const support = pngSupport();
  assert.ok(support.ok, support.reason);
  assert.ok(support.fonts.some((f) => f.endsWith('DejaVuSans.ttf')), `fonts: ${support.fonts.join(', ')}`);
  const dir = tmp();
  const svg = plotSvg([
    { title: 'loss', series: [{ name: 'loss', points: line(50, (s) => 1 / s) }], smoothing: 0.6 },
    { title: 'empty', series: [{ name: 'reward', points: [] }] },
  ], { panelWidth: 300, panelHeight: 200 });
  const file = path.join(dir, 'sub', 'grid.png');
  assert.deepEqual(writePng(file, svg), { width: 600, height: 200, bitDepth: 8, colorType: 6 });
  const bytes = fs.readFileSync(file);
  assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.equal(bytes.toString('latin1', 12, 16), 'IHDR');
  assert.equal(bytes.toString('latin1', bytes.length - 8, bytes.length - 4), 'IEND');
  assert.deepEqual(fs.readdirSync(path.dirname(file)), ['grid.png'], 'no temp file left');
  const x2 = readPngSize(svgToPng(svg, { scale: 2 }));
  assert.equal(x2.width, 1200); assert.equal(x2.height, 400);
  // Text really rasterises: the same canvas with a label compresses worse than without it.
  const canvas = (body: string): string => `<svg xmlns="http://www.w3.org/2000/svg" width="200" height="60"><rect width="200" height="60" fill="#fff"/>${body}</svg>`;
  const blank = svgToPng(canvas('')).length;
  const withText = svgToPng(canvas(`<text x="10" y="35" font-family="'DejaVu Sans'" font-size="20">step 0.25 loss</text>`)).length;
  assert.ok(withText > blank + 300, `text PNG ${withText} bytes vs blank ${blank}`);
  assert.throws(() => readPngSize(Buffer.from('GIF89a....................................')), /signature/);
});

test('metrics.jsonl: torn last line skipped with a warning; crash/resume fragments; NaN literals', () => {
  const dir = tmp();
  const file = path.join(dir, 'metrics.jsonl');
  fs.writeFileSync(file, [
    '{"step":1,"loss":2.5,"reward":0.1}',
    '',
    '{"step":2,"loss":NaN,"reward":Infinity,"note":"NaN stays a string"}',
    '{"step":3,"loss":2.1,"reward":-Infinity}',
    '{"step":4,"loss":2.0,"reward":0.3,"eval":{"pass@1":0.25},"ok":true}',
    // Crash while writing step 5, resume from the step-4 checkpoint: the fragment is glued to step 5.
    '{"step":5,"lo{"step":5,"loss":1.9,"reward":0.35}',
    '{"step":6,"loss":null,"reward":0.4}',
    '{"step":7,"loss":1.7,"eval":{"pass@1"',
  ].join('\n'));
  const warnings: string[] = [];
  const recs = readMetrics(file, { warn: (m) => warnings.push(m) });
  assert.deepEqual(recs.map((r) => r.step), [1, 2, 3, 4, 5, 6]);
  assert.equal(warnings.length, 2, warnings.join('\n'));
  assert.match(warnings[0], /metrics\.jsonl:6: skipped a torn record fragment/);
  assert.match(warnings[1], /metrics\.jsonl:8: skipped a torn last line/);
  assert.ok(Number.isNaN(recs[1].loss));
  assert.equal(recs[1].reward, Infinity);
  assert.equal(recs[1].note, 'NaN stays a string');
  assert.equal(recs[2].reward, -Infinity);
  assert.deepEqual(parseJsonLenient('[1,NaN,-Infinity,"Infinity"]'), [1, NaN, -Infinity, 'Infinity']);

  // Non-finite values are skipped (and counted), not plotted.
  const loss = seriesFrom(recs, 'loss');
  assert.deepEqual(loss.points.map((p) => p.x), [1, 3, 4, 5]);
  assert.equal(loss.skipped, 2);
  const reward = seriesFrom(recs, 'reward');
  assert.deepEqual(reward.points, [{ x: 1, y: 0.1 }, { x: 4, y: 0.3 }, { x: 5, y: 0.35 }, { x: 6, y: 0.4 }]);
  assert.equal(reward.skipped, 2);
  assert.deepEqual(seriesFrom(recs, 'eval.pass@1', { name: 'pass@1' }), { name: 'pass@1', points: [{ x: 4, y: 0.25 }], skipped: 0 });
  assert.deepEqual(seriesFrom(recs, 'ok').points, [{ x: 4, y: 1 }]);
  assert.deepEqual(seriesFrom(recs, 'missing').points, []);
  assert.deepEqual(seriesFrom(recs, 'loss', { filter: (r) => (r.step as number) > 3 }).points.map((p) => p.x), [4, 5]);
  // A resumed run logs some steps again: the latest record of a step wins, points sorted by x.
  const resumed = [{ step: 1, loss: 3 }, { step: 2, loss: 2.8 }, { step: 3, loss: 9 }, { step: 2, loss: 2.7 }, { step: 3, loss: 2.5 }];
  assert.deepEqual(seriesFrom(resumed, 'loss').points, [{ x: 1, y: 3 }, { x: 2, y: 2.7 }, { x: 3, y: 2.5 }]);
  assert.equal(seriesFrom(resumed, 'loss', { duplicates: 'all' }).points.length, 5);
  // Plotting those series does not throw, and an unterminated but whole last line is kept.
  assert.doesNotThrow(() => plotSvg([{ series: [loss, reward], logY: true }]));
  fs.writeFileSync(file, '{"step":1,"loss":1}\n{"step":2,"loss":0.5}');
  assert.deepEqual(readMetrics(file, { warn: () => assert.fail('no warning expected') }).map((r) => r.step), [1, 2]);
});

test('writeRunReport: report.html with inline SVGs, summary, tables, links to the PNGs', () => {
  const dir = path.join(tmp(), 'run');
  const records = Array.from({ length: 60 }, (_, i) => ({
    step: i + 1, loss: 3 / (i + 1) + 1, reward: i / 60, accuracy: i / 80, response_length: 50 + i, reflection_rate: i % 7 === 0 ? NaN : i / 200,
  }));
  const plots = [
    metricPlot(records, { title: 'Loss', keys: ['loss'], smoothing: 0.8, logY: true }),
    metricPlot(records, { title: 'Reward & accuracy', keys: ['reward', 'accuracy'], yMin: 0, yMax: 1, file: 'plots/reward.png' }),
    metricPlot(records, { title: 'Response length', keys: ['response_length'], caption: 'mean tokens per answer' }),
    metricPlot(records, { title: 'Reflection rate', keys: ['reflection_rate'] }),
    metricPlot(records, { title: 'KL', keys: ['kl'] }),
  ];
  assert.equal(plots[0].file, 'loss.png');
  assert.equal(slug('Reward & accuracy (GRPO)'), 'reward-accuracy-grpo');
  const warnings: string[] = [];
  const out = writeRunReport(dir, {
    title: 'R1-Zero <mini>',
    summary: { steps: 60, 'final loss': 1.05, model: 'v3-tiny' },
    notes: ['Reward goes up.'],
    tables: [{ title: 'Before / after', columns: ['model', 'pass@1', 'cons@16'], rows: [['base', 0.12, 0.2], ['grpo', 0.41234, null]] }],
    plots,
  }, { warn: (m) => warnings.push(m), scale: 1 });
  assert.deepEqual(warnings, []);
  assert.equal(out.html, path.join(path.resolve(dir), 'report.html'));
  const html = fs.readFileSync(out.html, 'utf8');
  assert.match(html, /^<!DOCTYPE html>/);
  assert.match(html, /<title>R1-Zero &lt;mini&gt;<\/title>/);
  for (const p of plots) {
    assert.ok(html.includes(`href="${p.file}"`), `links ${p.file}`);
    const png = path.join(dir, p.file);
    assert.ok(out.pngs.includes(png));
    assert.deepEqual(readPngSize(fs.readFileSync(png)), { width: 480, height: 320, bitDepth: 8, colorType: 6 });
  }
  assert.equal((html.match(/<svg /g) ?? []).length, plots.length, 'every plot inline');
  assert.ok(!/<script|<img|<link /.test(html), 'self-contained');
  assert.match(html, /<td>final loss<\/td><td class="num">1\.05<\/td>/);
  assert.match(html, /<td class="num">0\.4123<\/td><td><\/td>/);
  assert.match(html, /mean tokens per answer/);
  assert.match(html, /no values for: kl/);
  assert.match(html, /7 non-finite values skipped|9 non-finite values skipped/);
  const ids = [...html.matchAll(/clipPath id="([^"]+)"/g)].map((m) => m[1]);
  assert.equal(new Set(ids).size, ids.length, 'clip ids unique across the page');
  // Atomic writes leave no temp files; rewriting replaces in place.
  writeRunReport(dir, { title: 'again', summary: {}, plots: plots.slice(0, 1) }, { warn: () => {} });
  assert.deepEqual(fs.readdirSync(dir).sort(), ['kl.png', 'loss.png', 'plots', 'reflection-rate.png', 'report.html', 'response-length.png']);
  assert.match(fs.readFileSync(out.html, 'utf8'), /<h1>again<\/h1>/);
  // PNGs can be turned off; bad file names are refused before anything is written.
  const noPng = writeRunReport(path.join(dir, 'nopng'), { title: 't', summary: {}, plots: plots.slice(0, 1) }, { png: false });
  assert.deepEqual(noPng.pngs, []);
  assert.ok(!fs.readFileSync(noPng.html, 'utf8').includes('href="loss.png"'));
  assert.throws(() => writeRunReport(dir, { title: 't', summary: {}, plots: [{ ...plots[0], file: '../x.png' }] }), /relative path/);
  assert.throws(() => writeRunReport(dir, { title: 't', summary: {}, plots: [{ ...plots[0], file: 'x.svg' }] }), /\.png/);
  assert.throws(() => writeRunReport(dir, { title: 't', summary: {}, plots: [plots[0], plots[0]] }), /same file/);
});

test('standardPlots: one plot per known metric group present in the records', () => {
  const grpo = Array.from({ length: 80 }, (_, i) => ({ step: i + 1, loss: 0.1, reward: i / 80, accuracy: i / 100, response_length: 40 + i, reflection_rate: 0.01 * i, lr: 1e-5 }));
  const plots = standardPlots(grpo);
  assert.deepEqual(plots.map((p) => p.file), ['loss.png', 'reward.png', 'accuracy.png', 'response-length.png', 'reflection-rate.png', 'learning-rate.png']);
  assert.match(plots[1].svg, /class="series smooth" data-series="reward"/);
  assert.deepEqual(standardPlots([{ step: 1, loss: 2 }]).map((p) => p.title), ['Loss']);
  assert.deepEqual(standardPlots([]), []);
});
