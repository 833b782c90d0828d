// `r1ts eval --model DIR --data FILE|builtin:NAME --samples K`: load a checkpoint folder
// (config.json + model.safetensors + tokenizer.json), sample K completions per problem, print
// the table and write the JSON report.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../models/load.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { loadDataset, type DataRecord } from '../data/dataset.js';
import type { PromptStyle } from '../data/template.js';
import { evaluateModel, formatEvalTable, writeEvalJson, type EvalRecord, type EvalReport } from './evaluate.js';

export interface EvalCommandOptions {
  /** Checkpoint folder: config.json, model.safetensors and (unless `tokenizer`) tokenizer.json. */
  model: string;
  /** 'builtin:<suite>[:train|:test]' or a JSONL / JSON / Parquet file of {prompt|question, answer}. */
  data: string;
  /** K samples per problem (default 4). */
  samples?: number;
  /** Evaluate the first `limit` problems only. */
  limit?: number;
  /** Default 256 (lowered to fit the model's context). */
  maxNewTokens?: number;
  /** Default 0.6. */
  temperature?: number;
  /** Default 0.95. */
  topP?: number;
  /** JSON report path (default <model>/eval-<data>.json). */
  out?: string;
  seed?: number;
  /** Rows per generation batch (default 16). */
  batchSize?: number;
  /** Default 'r1-zero'. */
  promptStyle?: PromptStyle;
  /** A tokenizer.json or its folder, when it is not in the model folder. */
  tokenizer?: string;
  quiet?: boolean;
  /** Where the table and messages go (default console.log). */
  log?: (line: string) => void;
}

/** Run an evaluation from the command line's options; returns the report. */
export async function evalCommand(opts: EvalCommandOptions): Promise<EvalReport> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const tokDir = opts.tokenizer ?? opts.model;
  const tokFile = fs.existsSync(tokDir) && fs.statSync(tokDir).isDirectory() ? path.join(tokDir, 'tokenizer.json') : tokDir;
  if (!fs.existsSync(tokFile)) {
    throw new Error(`no tokenizer at ${tokFile} (a checkpoint folder holds tokenizer.json; or pass --tokenizer)`);
  }
  const tokenizer = Tokenizer.fromFile(tokFile);
  const model = loadModel(opts.model);
  const data = await loadEvalData(opts.data, opts.limit);
  if (data.length === 0) throw new Error(`${opts.data}: no records`);

  const report = evaluateModel({
    model, tokenizer, data,
    samples: opts.samples, temperature: opts.temperature, topP: opts.topP, maxNewTokens: opts.maxNewTokens,
    batchSize: opts.batchSize, seed: opts.seed, promptStyle: opts.promptStyle, quiet: opts.quiet,
    config: { data: opts.data, modelDir: opts.model, limit: opts.limit ?? null },
  });
  const out = opts.out ?? path.join(opts.model, `eval-${slug(opts.data)}.json`);
  writeEvalJson(out, report);
  log(formatEvalTable(report));
  log(`report: ${out}`);
  return report;
}

/** Dataset records as evaluation records; files may name the question 'prompt' or 'question'. */
export async function loadEvalData(source: string, limit?: number): Promise<EvalRecord[]> {
  let records: DataRecord[];
  try {
    records = await loadDataset(source, { limit });
  } catch (e) {
    if (source.startsWith('builtin:') || !/missing field 'prompt'/.test((e as Error).message)) throw e;
    records = await loadDataset(source, { limit, fields: { prompt: 'question', answer: 'answer' }, optional: ['answer'] });
  }
  return records.map((r) => ({ id: r.id, question: r.prompt, answer: r.answer, task: r.task }));
}

function slug(s: string): string {
  return (s.startsWith('builtin:') ? s.slice('builtin:'.length) : path.basename(s, path.extname(s))).replace(/[^A-Za-z0-9._-]+/g, '-');
}
