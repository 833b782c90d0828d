// Evaluating a model on verifiable problems: sample K completions per problem (batched, with
// the KV cache), extract and grade the answers, and summarise: pass@1 (mean over problems of
// c/K), cons@K (majority vote), unbiased pass@k, response length, reflection-word rate and
// format rate. Grading is separate from generation (gradeCompletions) so it can be run on any
// completions, e.g. fixed ones in tests or ones produced elsewhere.
//
// Grading a sample: the answer is extractAnswer(text) (last <answer>…</answer>, else last
// \boxed{…}). It is correct when `verify(record, answer)` says so; by default a record with a
// task (a registered suite) uses the suite's exact verifier (Countdown has many right answers),
// otherwise the answer must be isEquivalent to the reference answer (itself reduced with
// extractAnswer when it holds tags or \boxed, or to the part after "####" as in GSM8K).
//
// cons@K groups answers by isEquivalent; for records graded by a verifier, answers of equal
// value but different verdicts are different answers (Countdown: "13" and "1+3*4").
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CausalLM } from '../models/common.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { generate, type FinishReason } from '../generate/generate.js';
import { Rng } from '../tensor/random.js';
import { formatPrompt, isWellFormatted, type PromptStyle } from '../data/template.js';
import { verifyTask } from '../data/registry.js';
import type { Task } from '../data/tasks.js';
import { Progress } from '../train/progress.js';
import { extractAnswer, isEquivalent } from './answer.js';
import {
  answerStyle, ANSWER_STYLES, consAtK, countReflections, DEFAULT_REFLECTION_WORDS, lengthStats, mean, passAtK,
  type AnswerStyle, type LengthStats,
} from './metrics.js';

/** A problem to evaluate. `question` (or `prompt`, as loadDataset names it) is the raw question. */
export interface EvalRecord {
  id?: string;
  question?: string;
  prompt?: string;
  answer?: string;
  task?: Task;
}

/** A completion to grade: its text and its length in tokens. */
export interface GeneratedSample {
  text: string;
  tokens: number;
  finishReason?: FinishReason;
}

export interface GradeOptions {
  /** Custom grader (default: the suite verifier for task records, else isEquivalent with the answer). */
  verify?: (record: EvalRecord, extracted: string) => boolean;
  reflectionWords?: readonly string[];
  /** pass@k for these k (default [1, K]; values above K are dropped). */
  ks?: number[];
}

export interface SampleResult {
  text: string;
  tokens: number;
  finishReason?: FinishReason;
  /** The extracted answer, null if none. */
  extracted: string | null;
  correct: boolean;
  /** <think>…</think> <answer>…</answer> and nothing else. */
  formatOk: boolean;
  /** Reflection-word occurrences. */
  reflections: number;
  style: AnswerStyle;
}

export interface ProblemResult {
  id: string;
  question: string;
  reference: string | null;
  suite: string | null;
  samples: SampleResult[];
  /** c: correct samples. */
  correct: number;
  /** c / K. */
  passAt1: number;
  /** Unbiased pass@k for each k. */
  passAtK: Record<string, number>;
  cons: { answer: string | null; votes: number; correct: boolean };
}

export interface EvalMetrics {
  /** Number of problems. */
  numProblems: number;
  /** K: samples per problem. */
  samples: number;
  /** Mean over problems of c/K. */
  pass1: number;
  /** Share of problems whose majority-vote answer is correct. */
  consK: number;
  /** Mean unbiased pass@k, keyed by k. */
  passAtK: Record<string, number>;
  /** Share of samples with the strict <think> <answer> format. */
  formatRate: number;
  /** Share of samples from which an answer was extracted. */
  answerRate: number;
  /** Share of samples cut off by maxNewTokens. */
  truncatedRate: number;
  /** Mean response length in tokens (= length.mean). */
  meanLength: number;
  /** Response length in tokens. */
  length: LengthStats;
  /** Share of samples with a reflection word. */
  reflectionRate: number;
  reflectionPer1kTokens: number;
  /** Per answer style (metrics.ts answerStyle): its share of the samples and how often it is right (0 when unused). */
  byStyle: Record<AnswerStyle, { share: number; accuracy: number }>;
  /** The same headline numbers per task suite (records with a task), when there are tasks. */
  bySuite?: Record<string, { problems: number; pass1: number; consK: number }>;
}

/** The headline metrics at the top level, then the settings, timing and per-problem details. */
export interface EvalReport extends EvalMetrics {
  config: Record<string, unknown>;
  timing?: { seconds: number; generatedTokens: number; tokensPerSecond: number };
  problems: ProblemResult[];
}

// ---------------------------------------------------------------------------------------
// Grading

/** The question text of a record (question, else prompt). */
export function questionOf(record: EvalRecord): string {
  const q = record.question ?? record.prompt ?? record.task?.question;
  if (typeof q !== 'string') throw new Error(`record ${record.id ?? '?'} has no question (nor prompt)`);
  return q;
}

/** The reference answer reduced to its final answer: tags / \boxed / GSM8K "#### x"; null if none. */
export function referenceAnswer(record: EvalRecord): string | null {
  const a = record.answer ?? record.task?.answer;
  if (typeof a !== 'string') return null;
  const hashes = a.lastIndexOf('####');
  if (hashes >= 0) return a.slice(hashes + 4).trim();
  return extractAnswer(a) ?? a.trim();
}

/** The default grader: the task's suite verifier, else equivalence with the reference answer. */
export function defaultVerify(record: EvalRecord, extracted: string): boolean {
  if (record.task) {
    try { return verifyTask(record.task, extracted); } catch { return false; }
  }
  const ref = referenceAnswer(record);
  return ref !== null && isEquivalent(extracted, ref);
}

/** Grade one completion. */
export function gradeSample(record: EvalRecord, sample: GeneratedSample, opts: GradeOptions = {}): SampleResult {
  const verify = opts.verify ?? defaultVerify;
  const extracted = extractAnswer(sample.text);
  let correct = false;
  if (extracted !== null) {
    try { correct = verify(record, extracted) === true; } catch { correct = false; }
  }
  return {
    text: sample.text, tokens: sample.tokens, finishReason: sample.finishReason, extracted, correct,
    formatOk: isWellFormatted(sample.text),
    reflections: countReflections(sample.text, opts.reflectionWords ?? DEFAULT_REFLECTION_WORDS),
    style: answerStyle(sample.text, opts.reflectionWords ?? DEFAULT_REFLECTION_WORDS),
  };
}

/** Grade the K completions of one problem (already graded samples may be passed to skip regrading). */
export function gradeProblem(record: EvalRecord, samples: readonly (GeneratedSample | SampleResult)[], opts: GradeOptions = {}, index = 0): ProblemResult {
  const graded = samples.map((s) => ('extracted' in s ? s : gradeSample(record, s, opts)));
  const K = graded.length;
  const c = graded.filter((s) => s.correct).length;
  const correctOf = (i: number) => graded[i].correct;
  // With a verifier, equal values with different verdicts are different answers.
  const verdict = new Map<string, boolean>();
  graded.forEach((s) => { if (s.extracted !== null && !verdict.has(s.extracted)) verdict.set(s.extracted, s.correct); });
  const same = record.task || opts.verify
    ? (a: string, b: string) => verdict.get(a) === verdict.get(b) && isEquivalent(a, b)
    : isEquivalent;
  const cons = consAtK(graded.map((s) => s.extracted), (_a, i) => correctOf(i), same);
  const passK: Record<string, number> = {};
  for (const k of kValues(K, opts.ks)) passK[k] = passAtK(K, c, k);
  return {
    id: record.id ?? record.task?.id ?? `#${index}`,
    question: questionOf(record),
    reference: referenceAnswer(record),
    suite: record.task?.suite ?? null,
    samples: graded,
    correct: c,
    passAt1: K ? c / K : 0,
    passAtK: passK,
    cons: { answer: cons.answer, votes: cons.votes, correct: cons.correct },
  };
}

function kValues(K: number, ks?: number[]): number[] {
  if (K === 0) return [];
  return [...new Set(ks ?? [1, K])].filter((k) => Number.isInteger(k) && k >= 1 && k <= K).sort((a, b) => a - b);
}

/** Aggregate metrics over graded problems (all with the same K). */
export function summarize(problems: readonly ProblemResult[], opts: GradeOptions = {}): EvalMetrics {
  const K = problems[0]?.samples.length ?? 0;
  if (problems.some((p) => p.samples.length !== K)) throw new Error('summarize: every problem needs the same number of samples');
  const samples = problems.flatMap((p) => p.samples);
  const passK: Record<string, number> = {};
  for (const k of kValues(K, opts.ks)) passK[k] = mean(problems.map((p) => p.passAtK[k] ?? passAtK(K, p.correct, k)));
  const tokens = samples.reduce((s, x) => s + x.tokens, 0);
  const reflections = samples.reduce((s, x) => s + x.reflections, 0);
  const share = (f: (s: SampleResult) => boolean) => (samples.length ? samples.filter(f).length / samples.length : 0);
  const length = lengthStats(samples.map((s) => s.tokens));
  const metrics: EvalMetrics = {
    numProblems: problems.length,
    samples: K,
    pass1: mean(problems.map((p) => p.passAt1)),
    consK: mean(problems.map((p) => (p.cons.correct ? 1 : 0))),
    passAtK: passK,
    formatRate: share((s) => s.formatOk),
    answerRate: share((s) => s.extracted !== null),
    truncatedRate: share((s) => s.finishReason === 'length'),
    meanLength: length.mean,
    length,
    reflectionRate: share((s) => s.reflections > 0),
    reflectionPer1kTokens: tokens ? (1000 * reflections) / tokens : 0,
    byStyle: Object.fromEntries(ANSWER_STYLES.map((style) => {
      const of = samples.filter((x) => x.style === style);
      return [style, { share: share((x) => x.style === style), accuracy: of.length ? of.filter((x) => x.correct).length / of.length : 0 }];
    })) as EvalMetrics['byStyle'],
  };
  const suites = [...new Set(problems.map((p) => p.suite).filter((s): s is string => s !== null))];
  if (suites.length) {
    metrics.bySuite = Object.fromEntries(suites.map((name) => {
      const ps = problems.filter((p) => p.suite === name);
      return [name, { problems: ps.length, pass1: mean(ps.map((p) => p.passAt1)), consK: mean(ps.map((p) => (p.cons.correct ? 1 : 0))) }];
    }));
  }
  return metrics;
}

/**
 * Grade given completions (completions[i]: the K samples of data[i], as texts or
 * {text, tokens}) into a report. Plain strings count their length in characters as tokens
 * unless `countTokens` is given.
 */
export function gradeCompletions(
  data: readonly EvalRecord[],
  completions: readonly (readonly (string | GeneratedSample)[])[],
  opts: GradeOptions & { config?: Record<string, unknown>; countTokens?: (text: string) => number } = {},
): EvalReport {
  if (completions.length !== data.length) throw new Error(`gradeCompletions: ${data.length} records but ${completions.length} completion lists`);
  const count = opts.countTokens ?? ((t: string) => t.length);
  const problems = data.map((r, i) => gradeProblem(r, completions[i].map((c) => (typeof c === 'string' ? { text: c, tokens: count(c) } : c)), opts, i));
  return { ...summarize(problems, opts), config: { samples: problems[0]?.samples.length ?? 0, ...opts.config }, problems };
}

// ---------------------------------------------------------------------------------------
// Generation

export interface EvaluateOptions extends GradeOptions {
  model: CausalLM;
  tokenizer: Tokenizer;
  data: readonly EvalRecord[];
  /** K samples per problem (default 4). */
  samples?: number;
  /** Default 0.6 (the R1 paper); 0 is greedy. */
  temperature?: number;
  /** Default 0.95. */
  topP?: number;
  /** Default 0 (off). */
  topK?: number;
  /** Default 256; lowered to fit max_position_embeddings. */
  maxNewTokens?: number;
  /** Rows per generate() call (default 16). */
  batchSize?: number;
  seed?: number;
  /** Default 'r1-zero'. */
  promptStyle?: PromptStyle;
  /** Generation also stops at these strings (default ['</answer>']); the text is cut after the first. */
  stopStrings?: string[];
  /** No progress bar or messages. */
  quiet?: boolean;
  /** Extra fields for report.config (data source, model folder, …). */
  config?: Record<string, unknown>;
}

/** Ids → text, skipping ids the tokenizer does not know (a model's vocabulary may be larger). */
function decodeSafe(tokenizer: Tokenizer, ids: readonly number[], skipSpecialTokens: boolean): string {
  const known = ids.filter((id) => id >= 0 && id < tokenizer.vocabSize && tokenizer.idToToken(id) !== undefined);
  return tokenizer.decode(known, { skipSpecialTokens });
}

/** Sample K completions per problem with the model and grade them. */
export function evaluateModel(opts: EvaluateOptions): EvalReport {
  const { model, tokenizer, data } = opts;
  const K = opts.samples ?? 4;
  const temperature = opts.temperature ?? 0.6;
  const topP = opts.topP ?? 0.95;
  const topK = opts.topK ?? 0;
  const batchSize = opts.batchSize ?? 16;
  const seed = opts.seed ?? 0;
  const promptStyle = opts.promptStyle ?? 'r1-zero';
  const stopStrings = opts.stopStrings ?? ['</answer>'];
  if (!Number.isInteger(K) || K < 1) throw new Error(`evaluateModel: samples must be a positive integer (got ${K})`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`evaluateModel: batchSize must be a positive integer (got ${batchSize})`);

  const prompts = data.map((r) => tokenizer.encode(formatPrompt(questionOf(r), promptStyle)));
  const maxPos = model.config.max_position_embeddings;
  const longest = Math.max(0, ...prompts.map((p) => p.length));
  const requested = opts.maxNewTokens ?? 256;
  const maxNewTokens = Math.min(requested, maxPos - longest);
  if (maxNewTokens < 1) throw new Error(`evaluateModel: the longest prompt (${longest} tokens) leaves no room in max_position_embeddings ${maxPos}`);
  if (maxNewTokens < requested && !opts.quiet) {
    console.error(`eval: maxNewTokens lowered from ${requested} to ${maxNewTokens} to fit max_position_embeddings ${maxPos}`);
  }

  const rows = data.flatMap((_, p) => Array.from({ length: K }, () => p));
  const results: SampleResult[][] = data.map(() => []);
  const rng = new Rng(seed);
  const stopTokens = tokenizer.eosId !== null ? [tokenizer.eosId] : [];
  const tail = Math.max(16, ...stopStrings.map((s) => s.length));
  const progress = new Progress(rows.length, 0, opts.quiet ?? false, 'eval');
  const t0 = performance.now();
  let generatedTokens = 0, correct = 0;
  try {
    for (let start = 0; start < rows.length; start += batchSize) {
      const batch = rows.slice(start, start + batchSize);
      const out = generate(model, batch.map((p) => prompts[p]), {
        maxNewTokens,
        sampling: { temperature, topP, topK },
        stopTokens,
        stopStrings,
        // Only the tail can hold a stop string that has just appeared.
        decode: (ids) => decodeSafe(tokenizer, ids.slice(-tail), false),
        rng,
        padId: tokenizer.padId ?? tokenizer.eosId ?? 0,
      });
      out.forEach((c, j) => {
        let text = decodeSafe(tokenizer, c.tokens, true);
        if (c.finishReason === 'stop_string') text = cutAfterStop(text, stopStrings);
        const s = gradeSample(data[batch[j]], { text, tokens: c.tokens.length, finishReason: c.finishReason }, opts);
        results[batch[j]].push(s);
        generatedTokens += c.tokens.length;
        if (s.correct) correct++;
      });
      const done = start + batch.length;
      const seconds = (performance.now() - t0) / 1000;
      progress.tick(done, { acc: correct / done, 'tok/s': generatedTokens / Math.max(seconds, 1e-9) });
    }
  } finally {
    progress.stop();
  }
  const seconds = (performance.now() - t0) / 1000;
  const problems = data.map((r, i) => gradeProblem(r, results[i], opts, i));
  return {
    ...summarize(problems, opts),
    config: {
      samples: K, temperature, topP, topK, maxNewTokens, batchSize, seed, promptStyle, stopStrings,
      model: model.config.model_type, ...opts.config,
    },
    timing: { seconds, generatedTokens, tokensPerSecond: generatedTokens / Math.max(seconds, 1e-9) },
    problems,
  };
}

/** The text up to and including the first stop string. */
function cutAfterStop(text: string, stops: readonly string[]): string {
  let end = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (end < 0 || i + s.length < end)) end = i + s.length;
  }
  return end >= 0 ? text.slice(0, end) : text;
}

// ---------------------------------------------------------------------------------------
// Output

/** A plain-text table of the headline metrics, for the terminal. */
export function formatEvalTable(report: EvalReport, title = 'eval'): string {
  const m = report;
  const c = report.config;
  const f = (x: number) => x.toFixed(3);
  const settings = [
    c['data'] !== undefined ? String(c['data']) : null,
    c['temperature'] !== undefined ? `temperature ${c['temperature']}` : null,
    c['topP'] !== undefined ? `top-p ${c['topP']}` : null,
    c['maxNewTokens'] !== undefined ? `max ${c['maxNewTokens']} new tokens` : null,
  ].filter(Boolean).join(', ');
  const rows: [string, string][] = [
    ['pass@1', f(m.pass1)],
    [`cons@${m.samples}`, f(m.consK)],
    ...Object.entries(m.passAtK).filter(([k]) => k !== '1').map(([k, v]) => [`pass@${k}`, f(v)] as [string, string]),
    ['format', f(m.formatRate)],
    ['answer extracted', f(m.answerRate)],
    ['response length', `${m.length.mean.toFixed(1)} tokens (median ${m.length.median.toFixed(0)}, max ${m.length.max})`],
    ['reflection', `${f(m.reflectionRate)} of responses, ${m.reflectionPer1kTokens.toFixed(2)} per 1k tokens`],
    ['answer styles', formatStyles(m)],
    ['truncated', f(m.truncatedRate)],
  ];
  for (const [suite, s] of Object.entries(m.bySuite ?? {})) {
    if (Object.keys(m.bySuite!).length > 1) rows.push([`  ${suite} (${s.problems})`, `pass@1 ${f(s.pass1)}, cons@${m.samples} ${f(s.consK)}`]);
  }
  if (report.timing) rows.push(['time', `${report.timing.seconds.toFixed(1)} s (${report.timing.tokensPerSecond.toFixed(0)} tokens/s)`]);
  const width = Math.max(...rows.map(([k]) => k.length));
  const head = `${title}: ${m.numProblems} problems × ${m.samples} samples${settings ? ` (${settings})` : ''}`;
  return [head, ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)].join('\n');
}

/** "direct 47% (35% right), worked 40% (72% right), checked 13% (92% right)". */
export function formatStyles(m: Pick<EvalMetrics, 'byStyle'>): string {
  const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
  return ANSWER_STYLES.map((st) => `${st} ${pct(m.byStyle[st].share)}${m.byStyle[st].share ? ` (${pct(m.byStyle[st].accuracy)} right)` : ''}`).join(', ');
}

/** Write the report as JSON (creating the folder). */
export function writeEvalJson(file: string, report: EvalReport): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
}
