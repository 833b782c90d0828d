// Reading a run's metrics.jsonl back, and turning records into plot series.
//
// A run appends one JSON object per line. A crash can leave a torn last line; a resumed run then
// appends after it, gluing the fragment to the next record. readMetrics skips the fragment with a
// warning and keeps every whole record (including the one glued to the fragment). Python-style
// NaN / Infinity / -Infinity literals are accepted and read as the JS numbers; JSON.stringify writes
// NaN as null. seriesFrom skips every value that is not a finite number.

import fs from 'node:fs';
import type { Point, Series } from './plot.js';

export type MetricRecord = Record<string, unknown>;

export interface ReadMetricsOptions {
  /** Called once per skipped line (default: console.warn). */
  warn?: (message: string) => void;
}

/** Reads a JSONL file of records (objects), tolerating a torn last line and crash/resume fragments. */
export function readMetrics(jsonlPath: string, opts: ReadMetricsOptions = {}): MetricRecord[] {
  const warn = opts.warn ?? ((m: string) => console.warn(m));
  const text = fs.readFileSync(jsonlPath, 'utf8');
  const lines = text.split('\n');
  const records: MetricRecord[] = [];
  let lastNonEmpty = lines.length - 1;
  while (lastNonEmpty >= 0 && lines[lastNonEmpty].trim() === '') lastNonEmpty--;
  for (let i = 0; i <= lastNonEmpty; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    const rec = parseRecord(line);
    if (rec) { records.push(rec); continue; }
    // A fragment of a record torn by a crash, with the resumed run's first record glued after it?
    // Only a newline-terminated line can be fragment + record: an unterminated last line that
    // fails to parse is simply torn (and a nested object inside it is not a record).
    const terminated = i < lines.length - 1;
    const glued = terminated ? recoverGlued(line) : null;
    if (glued) {
      warn(`${jsonlPath}:${i + 1}: skipped a torn record fragment (${preview(line.slice(0, glued.at))}) before a whole record`);
      records.push(glued.record);
      continue;
    }
    if (i === lastNonEmpty) warn(`${jsonlPath}:${i + 1}: skipped a torn last line (the run was probably interrupted while writing it): ${preview(line)}`);
    else warn(`${jsonlPath}:${i + 1}: skipped a line that is not a JSON object: ${preview(line)}`);
  }
  return records;
}

function preview(s: string): string {
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}…` : s);
}

const SENTINEL = '\u0000r1ts:';

/** JSON.parse that also accepts bare NaN, Infinity and -Infinity (as Python's json writes them). */
export function parseJsonLenient(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const replaced = replaceNonFiniteLiterals(text);
    if (replaced === text) throw err;
    return JSON.parse(replaced, (_k, v: unknown) => {
      if (typeof v === 'string' && v.startsWith(SENTINEL)) {
        const s = v.slice(SENTINEL.length);
        return s === 'NaN' ? NaN : s === 'Infinity' ? Infinity : -Infinity;
      }
      return v;
    });
  }
}

/** Replaces NaN / Infinity / -Infinity tokens outside of strings by sentinel strings. */
function replaceNonFiniteLiterals(text: string): string {
  let out = '', inStr = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inStr) {
      out += c;
      if (c === '\\') { out += text[i + 1] ?? ''; i++; } else if (c === '"') inStr = false;
      continue;
    }
    if (c === '"') { inStr = true; out += c; continue; }
    const m = /^(-?Infinity|NaN)/.exec(text.slice(i, i + 9));
    if (m) { out += JSON.stringify(SENTINEL + m[1]); i += m[1].length - 1; continue; }
    out += c;
  }
  return out;
}

function parseRecord(line: string): MetricRecord | null {
  try {
    const v = parseJsonLenient(line);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as MetricRecord) : null;
  } catch {
    return null;
  }
}

function recoverGlued(line: string): { record: MetricRecord; at: number } | null {
  for (let at = line.indexOf('{', 1); at > 0; at = line.indexOf('{', at + 1)) {
    const rec = parseRecord(line.slice(at));
    if (rec) return { record: rec, at };
  }
  return null;
}

export interface SeriesFromOptions {
  /** The record key used as x (default 'step'); records without a finite x are left out. */
  x?: string;
  /** Series name (default: the key). */
  name?: string;
  /** Only records for which this returns true (e.g. r => r.phase === 'grpo'). */
  filter?: (record: MetricRecord) => boolean;
  /**
   * Several records with the same x (a run resumed from a checkpoint logs those steps again):
   * 'last' (default) keeps the latest, as it is the one the run continued from; 'all' keeps all.
   * Points come back sorted by x either way.
   */
  duplicates?: 'last' | 'all';
  color?: string;
}

/**
 * The series of `key` over `x` (default 'step'). Keys may be dotted paths into nested objects
 * ('eval.pass@1'), tried after the literal key. Records without the key are not counted; records
 * with a non-finite value (NaN, ±Infinity, null, a string) are skipped and counted in `skipped`.
 * Booleans count as 0/1.
 */
export function seriesFrom(records: ReadonlyArray<MetricRecord>, key: string, opts: SeriesFromOptions = {}): Series {
  const xKey = opts.x ?? 'step';
  let skipped = 0;
  let points: Point[] = [];
  for (const r of records) {
    if (opts.filter && !opts.filter(r)) continue;
    const yv = lookup(r, key);
    if (yv === undefined) continue;
    const x = toNumber(lookup(r, xKey)), y = toNumber(yv);
    if (x === null || y === null) { skipped++; continue; }
    points.push({ x, y });
  }
  if ((opts.duplicates ?? 'last') === 'last') {
    const byX = new Map<number, Point>();
    for (const p of points) { byX.delete(p.x); byX.set(p.x, p); }
    if (byX.size !== points.length) points = [...byX.values()];
  }
  points.sort((a, b) => a.x - b.x);
  const s: Series = { name: opts.name ?? key, points, skipped };
  if (opts.color) s.color = opts.color;
  return s;
}

/** The keys with at least one finite number across the records (x keys included), in first-seen order. */
export function numericKeys(records: ReadonlyArray<MetricRecord>): string[] {
  const keys = new Set<string>();
  for (const r of records) for (const [k, v] of Object.entries(r)) if (typeof v === 'number' && Number.isFinite(v)) keys.add(k);
  return [...keys];
}

function lookup(r: MetricRecord, key: string): unknown {
  if (key in r) return r[key];
  if (!key.includes('.')) return undefined;
  let cur: unknown = r;
  for (const part of key.split('.')) {
    if (cur === null || typeof cur !== 'object' || !(part in (cur as object))) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function toNumber(v: unknown): number | null {
  if (typeof v === 'boolean') return v ? 1 : 0;
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}
