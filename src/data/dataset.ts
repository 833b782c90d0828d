// Datasets: JSONL / JSON / Parquet files with field mapping, and `builtin:` names that
// resolve to generated splits of the task suites.
//
//   await loadDataset('gsm8k.parquet', { fields: { prompt: 'question', answer: 'answer' } })
//   await loadDataset('data.jsonl', { fields: { prompt: 'input.text', answer: 'solution' } })
//   await loadDataset('builtin:countdown:test')       // held-out split, verifiable records
//
// A record is { id, prompt, answer?, …other mapped fields }. `fields` maps output names to
// source field paths (dots go into nested objects); without `fields` the mapping is
// { prompt: 'prompt', answer: 'answer' } with answer optional. Numbers (and bigints from
// Parquet INT64) in `prompt`/`answer` become strings. When a source record also has `suite`
// (a registered task suite) and `meta`, the record carries a `task` and can be verified
// exactly (so tasks written with writeJsonl come back verifiable).
//
// builtin:<suite>[:train|:test] with <suite> one of the registered suites or `all` (every
// built-in suite, shuffled together). No suffix means train. The splits come from makeSplits
// with a fixed seed (BUILTIN_SEED unless opts.seed), `train` (default 2000) and `test`
// (default 200) records; the test split is held out from everything used for training.
// Builtin records' prompt is the raw question (apply the template from template.ts yourself).
//
// Parquet is read with hyparquet (pure JS) with the hyparquet-compressors codecs (snappy,
// gzip, zstd, brotli, lz4), and written with hyparquet-writer.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, extname } from 'node:path';
import { parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { Rng } from '../tensor/random.js';
import { allocate } from './corpus.js';
import { BUILTIN_SUITES, getSuite, listSuites } from './registry.js';
import { makeSplits, type GenerateOpts, type Task } from './tasks.js';

export interface DataRecord {
  id: string;
  prompt: string;
  answer?: string;
  /** Present when the record is a verifiable task of a registered suite. */
  suite?: string;
  task?: Task;
  [field: string]: unknown;
}

export interface LoadOpts {
  /** Output field → source field path. Default { prompt: 'prompt', answer: 'answer' } (answer optional). */
  fields?: Record<string, string>;
  /** Output fields that may be missing in the source (they are then left out). */
  optional?: string[];
  /** Keep at most this many records (the first ones). */
  limit?: number;
  /** Force a format instead of going by the extension. */
  format?: 'jsonl' | 'json' | 'parquet';
  /** builtin: seed of the splits (default BUILTIN_SEED). */
  seed?: number;
  /** builtin: number of training records (default 2000). */
  train?: number;
  /** builtin: number of held-out records (default 200). */
  test?: number;
  /** builtin: difficulty knobs per suite name. */
  suiteOpts?: Record<string, GenerateOpts & Record<string, unknown>>;
}

export const BUILTIN_SEED = 20250122;
export const BUILTIN_TRAIN = 2000;
export const BUILTIN_TEST = 200;

/** A source record and where it came from, for error messages. */
interface Source { value: unknown; where: string }

/** Load records from a file (JSONL, JSON array, Parquet) or a builtin: name. */
export async function loadDataset(pathOrBuiltin: string, opts: LoadOpts = {}): Promise<DataRecord[]> {
  if (pathOrBuiltin.startsWith('builtin:')) return loadBuiltin(pathOrBuiltin, opts);
  const format = opts.format ?? formatOf(pathOrBuiltin);
  if (format === 'parquet') return mapRecords(pathOrBuiltin, await readParquetSources(pathOrBuiltin), opts);
  return loadDatasetSync(pathOrBuiltin, opts);
}

/** loadDataset for JSONL, JSON and builtin: (no Parquet). */
export function loadDatasetSync(pathOrBuiltin: string, opts: LoadOpts = {}): DataRecord[] {
  if (pathOrBuiltin.startsWith('builtin:')) return loadBuiltin(pathOrBuiltin, opts);
  const format = opts.format ?? formatOf(pathOrBuiltin);
  if (format === 'parquet') throw new Error(`${pathOrBuiltin}: Parquet needs the async loadDataset`);
  const sources = format === 'json' ? readJsonSources(pathOrBuiltin) : readJsonlSources(pathOrBuiltin);
  return mapRecords(pathOrBuiltin, sources, opts);
}

function formatOf(path: string): 'jsonl' | 'json' | 'parquet' {
  const ext = extname(path).toLowerCase();
  if (ext === '.parquet' || ext === '.pq') return 'parquet';
  if (ext === '.json') return 'json';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  throw new Error(`${path}: unknown dataset format '${ext || '(no extension)'}' (use .jsonl, .json, .parquet, a builtin: name, or opts.format)`);
}

function readText(path: string): string {
  if (!existsSync(path)) throw new Error(`${path}: no such file`);
  return readFileSync(path, 'utf8');
}

/** Parse a JSONL file: one JSON value per non-blank line. Errors name the file and line. */
export function readJsonl(path: string): unknown[] { return readJsonlSources(path).map((s) => s.value); }

function readJsonlSources(path: string): Source[] {
  const lines = readText(path).split('\n');
  const out: Source[] = [];
  lines.forEach((raw, i) => {
    let text = raw.replace(/\r$/, '');
    if (i === 0) text = text.replace(/^\uFEFF/, '');
    if (text.trim() === '') return;
    let value: unknown;
    try { value = JSON.parse(text); } catch (e) {
      throw new Error(`${path}: bad JSON on line ${i + 1}: ${(e as Error).message}`);
    }
    out.push({ value, where: `record ${out.length + 1} (line ${i + 1})` });
  });
  return out;
}

function readJsonSources(path: string): Source[] {
  let value: unknown;
  try { value = JSON.parse(readText(path).replace(/^\uFEFF/, '')); } catch (e) {
    if ((e as Error).message.endsWith('no such file')) throw e;
    throw new Error(`${path}: bad JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(value)) throw new Error(`${path}: expected a JSON array of records, got ${kindOf(value)}`);
  return value.map((v, i) => ({ value: v, where: `record ${i + 1}` }));
}

/** Read a Parquet file into plain objects (INT64 as number when safe, else string). */
export async function readParquet(path: string): Promise<Record<string, unknown>[]> {
  return (await readParquetSources(path)).map((s) => s.value as Record<string, unknown>);
}

async function readParquetSources(path: string): Promise<Source[]> {
  if (!existsSync(path)) throw new Error(`${path}: no such file`);
  const buf = readFileSync(path);
  const file = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
  let rows: Record<string, unknown>[];
  try {
    rows = await parquetReadObjects({ file, compressors: compressors as never });
  } catch (e) {
    throw new Error(`${path}: cannot read as Parquet: ${(e as Error).message}`);
  }
  return rows.map((r, i) => ({ value: plain(r), where: `record ${i + 1} (row ${i})` }));
}

/** BigInt → number (or string past 2^53), typed arrays → arrays, recursively. */
function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (Array.isArray(v)) return v.map(plain);
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<unknown>, plain);
  if (v && typeof v === 'object' && !(v instanceof Date)) {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, plain(x)]));
  }
  return v;
}

function kindOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

function getPath(obj: Record<string, unknown>, path: string): { found: boolean; value: unknown } {
  if (Object.prototype.hasOwnProperty.call(obj, path)) return { found: obj[path] !== undefined, value: obj[path] };
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || !Object.prototype.hasOwnProperty.call(cur, part)) return { found: false, value: undefined };
    cur = (cur as Record<string, unknown>)[part];
  }
  return { found: cur !== undefined, value: cur };
}

function mapRecords(file: string, sources: Source[], opts: LoadOpts): DataRecord[] {
  const fields = opts.fields ?? { prompt: 'prompt', answer: 'answer' };
  const optional = new Set(opts.optional ?? (opts.fields ? [] : ['answer']));
  if (!('prompt' in fields)) throw new Error(`${file}: fields must map 'prompt' (got ${Object.keys(fields).join(', ') || 'none'})`);
  const limit = opts.limit ?? Infinity;
  const out: DataRecord[] = [];
  for (const { value, where } of sources) {
    if (out.length >= limit) break;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new Error(`${file} ${where}: expected an object, got ${kindOf(value)}`);
    }
    const src = value as Record<string, unknown>;
    const rec: Record<string, unknown> = {};
    for (const [outName, srcPath] of Object.entries(fields)) {
      const { found, value: v } = getPath(src, srcPath);
      if (!found || v === null) {
        if (optional.has(outName)) continue;
        const mapped = outName === srcPath ? '' : ` (mapped to '${outName}')`;
        throw new Error(`${file} ${where}: missing field '${srcPath}'${mapped}; fields present: ${Object.keys(src).join(', ') || 'none'}`);
      }
      if (outName === 'prompt' || outName === 'answer') {
        if (typeof v === 'string') rec[outName] = v;
        else if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') rec[outName] = String(v);
        else throw new Error(`${file} ${where}: field '${srcPath}' (for '${outName}') is ${kindOf(v)}, expected a string or a number`);
      } else rec[outName] = v;
    }
    const id = typeof src.id === 'string' || typeof src.id === 'number' ? String(src.id) : `${file}#${out.length}`;
    const record = { ...rec, id } as DataRecord;
    if (typeof src.suite === 'string' && src.meta && typeof src.meta === 'object' && listSuites().includes(src.suite)) {
      record.suite = src.suite;
      record.task = {
        id, suite: src.suite, question: record.prompt,
        answer: record.answer ?? (typeof src.answer === 'string' ? src.answer : ''),
        meta: src.meta as Record<string, unknown>,
      };
    }
    out.push(record);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// builtin:

/** The records of a builtin: dataset. */
function loadBuiltin(name: string, opts: LoadOpts): DataRecord[] {
  const parts = name.slice('builtin:'.length).split(':');
  const suiteName = parts[0];
  const split = parts[1] ?? 'train';
  const known = [...listSuites(), 'all'].map((s) => `builtin:${s}`).join(', ');
  if (parts.length > 2 || !suiteName) throw new Error(`bad builtin dataset name '${name}' (use builtin:<suite>[:train|:test]; known: ${known})`);
  if (split !== 'train' && split !== 'test') throw new Error(`${name}: unknown split '${split}' (use :train or :test)`);
  if (suiteName !== 'all' && !listSuites().includes(suiteName)) throw new Error(`unknown builtin dataset '${name}' (known: ${known})`);
  const seed = opts.seed ?? BUILTIN_SEED;
  const nTrain = opts.train ?? BUILTIN_TRAIN, nTest = opts.test ?? BUILTIN_TEST;
  const names = suiteName === 'all' ? [...BUILTIN_SUITES] : [suiteName];
  const trainCounts = allocate(Object.fromEntries(names.map((n) => [n, 1])), nTrain);
  const testCounts = allocate(Object.fromEntries(names.map((n) => [n, 1])), nTest);
  let tasks: Task[] = [];
  for (const n of names) {
    const suite = getSuite(n);
    const s = makeSplits(suite, builtinSeed(seed, n), {
      train: split === 'train' ? trainCounts.get(n) ?? 0 : 0,
      heldOut: testCounts.get(n) ?? 0,
      opts: opts.suiteOpts?.[n] ?? {},
    });
    tasks.push(...(split === 'train' ? s.train : s.heldOut));
  }
  if (names.length > 1) tasks = new Rng(seed).shuffle(tasks);
  if (opts.limit !== undefined) tasks = tasks.slice(0, opts.limit);
  return tasks.map(taskRecord);
}

function builtinSeed(seed: number, suite: string): number {
  let h = seed >>> 0;
  for (let i = 0; i < suite.length; i++) h = (Math.imul(h, 31) + suite.charCodeAt(i)) >>> 0;
  return h;
}

/** A task as a dataset record. */
export function taskRecord(task: Task): DataRecord {
  return { id: task.id, prompt: task.question, answer: task.answer, suite: task.suite, task };
}

// ---------------------------------------------------------------------------------------
// Writers

/** Write values as JSONL (one JSON value per line). Creates the folder. */
export function writeJsonl(path: string, records: Iterable<unknown>): void {
  const lines: string[] = [];
  for (const r of records) lines.push(JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, lines.length ? lines.join('\n') + '\n' : '');
}

/**
 * Write flat records as Parquet (snappy). Column types: all strings → STRING, all safe
 * integers → INT32/INT64, numbers → DOUBLE, booleans → BOOLEAN, anything else → JSON. Nulls
 * and missing fields are nulls.
 */
export function writeParquet(path: string, records: readonly Record<string, unknown>[], columns?: string[]): void {
  const names = columns ?? [...new Set(records.flatMap((r) => Object.keys(r)))];
  const columnData = names.map((name) => {
    const data = records.map((r) => (r[name] === undefined ? null : r[name]));
    const present = data.filter((v) => v !== null);
    let type: 'STRING' | 'INT32' | 'INT64' | 'DOUBLE' | 'BOOLEAN' | 'JSON' = 'JSON';
    if (present.every((v) => typeof v === 'string')) type = 'STRING';
    else if (present.every((v) => typeof v === 'boolean')) type = 'BOOLEAN';
    else if (present.every((v) => typeof v === 'number' && Number.isSafeInteger(v))) {
      type = present.every((v) => Math.abs(v as number) < 2 ** 31) ? 'INT32' : 'INT64';
    } else if (present.every((v) => typeof v === 'number')) type = 'DOUBLE';
    const values = type === 'INT64' ? data.map((v) => (v === null ? null : BigInt(v as number))) : data;
    return { name, data: values as never, type };
  });
  const buf = parquetWriteBuffer({ columnData });
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, new Uint8Array(buf));
}
