// The pretraining corpus and the SFT (cold-start) examples of R1 in miniature.
//
// Design
// ------
// Every document is one verifiable problem from a task suite, written as the R1-Zero prompt
// (template.ts) followed by a response " <think> … </think> <answer> … </answer>". Responses
// are of seven kinds, mixed in configurable proportions (exact counts by largest remainder,
// then shuffled; the suites are balanced the same way):
//
//   kind           share  correct  what it looks like (think part)
//   direct          0.14   yes     "47 + 38 = 85"
//   stepwise        0.10   yes     "7 + 8 = 15, write 5 carry 1. 4 + 3 + 1 = 8. So 47 + 38 = 85."
//   wrong           0.28   no      "47 + 38 = 75"   (one plausible slip: a dropped carry, a
//                                   times-table neighbour, a sign error, a near-miss expression)
//   wrongStepwise   0.14   no      the column work with exactly one slip, ending wrong
//   reflect         0.14   yes     a slip (direct or stepwise), then a check that exposes it
//                                   ("Let me check: 75 - 38 = 37, not 47."), "Wait, that is
//                                   wrong. Let me redo it: …" with correct work (no second
//                                   check: the document must fit a completion budget)
//   verify          0.10   yes     correct work, then a check that confirms it ("… Correct.")
//   broken          0.10   no*     the format is broken (missing tags or no tags at all);
//                                   the content is correct half the time
//   (* a broken document can carry a right number, but it does not earn the format reward and
//    does not count as correct here)
//
// Why these numbers. Imitating the corpus, a base model ends correct and well formatted on
// about 0.48 of samples (less with its own arithmetic errors: pass@1 is modest, so RL has room).
// Correctness grows with length: a short answer (direct or wrong) is right 1/3 of the time, a
// stepwise one 0.10/0.24 ≈ 0.42, and one that checks itself (reflect or verify) always. The
// checks in reflect and verify documents open with the same phrases ("Let me check:", "Wait,
// let me check:", …) and their outcome depends only on the arithmetic in them, so a model
// that learns to check learns a behaviour that pays, not a phrase that always says "Correct".
// RL with an accuracy reward can then discover that answering after a check pays, and
// responses grow longer and use reflection words more often — the R1-Zero story.
// The broken-format share gives the format reward something to teach.
//
// Problems come from the train partition of each suite (tasks.ts), so no held-out problem
// (builtin:<suite>:test, makeSplits(...).heldOut) ever appears in the corpus or the SFT data.
import { Rng } from '../tensor/random.js';
import { BUILTIN_SUITES, getSuite } from './registry.js';
import type { AnyTaskSuite, GenerateOpts, Partition, Task, WorkedSolutions } from './tasks.js';
import { pick } from './tasks.js';
import { extractAnswer, formatPrompt, formatResponse, isWellFormatted, type PromptStyle } from './template.js';

export const DOC_KINDS = ['direct', 'stepwise', 'wrong', 'wrongStepwise', 'reflect', 'verify', 'broken'] as const;
export type DocKind = (typeof DOC_KINDS)[number];
export type CorpusMix = Record<DocKind, number>;

export const DEFAULT_MIX: Readonly<CorpusMix> = {
  direct: 0.14, stepwise: 0.10, wrong: 0.28, wrongStepwise: 0.14, reflect: 0.14, verify: 0.10, broken: 0.10,
};

/** The kinds whose final answer is right (and format intact). */
export const CORRECT_KINDS: readonly DocKind[] = ['direct', 'stepwise', 'reflect', 'verify'];

export type SuiteRef = string | AnyTaskSuite;

export interface CorpusOpts {
  nDocs: number;
  /** Suites by name or object; default the built-in ones, in equal shares. */
  suites?: SuiteRef[];
  /** Difficulty knobs per suite name, passed to suite.generate. */
  suiteOpts?: Record<string, GenerateOpts & Record<string, unknown>>;
  /** Relative weights of the document kinds (kinds left out get 0); default DEFAULT_MIX. */
  mix?: Partial<CorpusMix>;
  /** 'r1-zero' (default, the full template) or 'compact' ("User: … Assistant:"). */
  promptStyle?: PromptStyle;
  /**
   * Share of documents written with the compact prompt instead of `promptStyle` (default 0).
   * The R1-Zero template is about two thirds of a document's tokens; a model that sees it in
   * some documents and the bare question in the rest learns the same task from about twice
   * the problems per second of training, and still knows the template.
   */
  compactShare?: number;
  /** Which partition problems come from; default 'train'. */
  partition?: Partition;
  heldOutFraction?: number;
}

export interface CorpusDoc {
  /** prompt + response */
  text: string;
  prompt: string;
  response: string;
  kind: DocKind;
  task: Task;
  /** The text inside the last <answer> tag, if any. */
  finalAnswer: string | null;
  /** Well formatted and the final answer verifies. */
  correct: boolean;
}

// Phrases. CHECK_INTROS are shared by the reflect and verify kinds on purpose (see above).
const CHECK_INTROS = ['Let me check:', 'Let me verify:', 'Wait, let me check:', 'Let me double-check:'];
const WRONG_ACKS = ['Wait, that is wrong. Let me redo it:', 'Wait, I made a mistake. Let me recompute:', 'That does not match. Let me redo it:'];
const WRONG_ACKS_AFTER_WAIT = ['That is wrong. Let me redo it:', 'I made a mistake. Let me recompute:', 'That does not match. Let me redo it:'];
const BROKEN_STYLES = ['noTags', 'noThinkClose', 'bareAnswer', 'noThinkOpen', 'noAnswerClose'] as const;

function suiteOf(ref: SuiteRef): AnyTaskSuite {
  return typeof ref === 'string' ? getSuite(ref) : ref;
}

function workedOf(suite: AnyTaskSuite): WorkedSolutions {
  if (!suite.worked) throw new Error(`task suite '${suite.name}' has no worked solutions, so it cannot be used for the corpus`);
  return suite.worked;
}

const sentence = (s: string): string => (/[.!?]$/.test(s) ? s : `${s}.`);

/**
 * Write one response of the given kind for a task. Returns the response (with its leading
 * space) — deterministic given the rng state.
 */
export function composeResponse(suite: AnyTaskSuite, task: Task, kind: DocKind, rng: Rng): string {
  const w = workedOf(suite);
  const correct = task.answer;
  switch (kind) {
    case 'direct':
      return formatResponse(sentence(w.direct(task, correct)), correct);
    case 'stepwise':
      return formatResponse(w.steps(task, rng, false).text, correct);
    case 'wrong': {
      const bad = w.wrongAnswer(task, rng);
      return formatResponse(sentence(w.direct(task, bad)), bad);
    }
    case 'wrongStepwise': {
      const s = w.steps(task, rng, true);
      return formatResponse(s.text, s.answer);
    }
    case 'reflect': {
      let first: string, bad: string;
      if (rng.uniform() < 0.5) { bad = w.wrongAnswer(task, rng); first = sentence(w.direct(task, bad)); }
      else { const s = w.steps(task, rng, true); bad = s.answer; first = s.text; }
      const c1 = w.check(task, bad);
      if (c1.ok) throw new Error(`${suite.name}: the check accepted the slip '${bad}' for ${task.id}`);
      const redo = w.steps(task, rng, false).text;
      const intro = pick(rng, CHECK_INTROS);
      const ack = pick(rng, intro.startsWith('Wait') ? WRONG_ACKS_AFTER_WAIT : WRONG_ACKS);
      return formatResponse(`${first} ${intro} ${c1.text} ${ack} ${redo}`, correct);
    }
    case 'verify': {
      const first = rng.uniform() < 0.5 ? sentence(w.direct(task, correct)) : w.steps(task, rng, false).text;
      const c = w.check(task, correct);
      if (!c.ok) throw new Error(`${suite.name}: the check rejected the reference answer of ${task.id}`);
      return formatResponse(`${first} ${pick(rng, CHECK_INTROS)} ${c.text}`, correct);
    }
    case 'broken': {
      const base = pick(rng, ['direct', 'stepwise', 'wrong', 'wrongStepwise'] as const);
      const r = composeResponse(suite, task, base, rng);
      const m = /^ <think> ([\s\S]*) <\/think> <answer> ([\s\S]*) <\/answer>$/.exec(r);
      if (!m) throw new Error('internal: unexpected response shape');
      const [, think, ans] = m;
      switch (pick(rng, BROKEN_STYLES)) {
        case 'noTags': return ` ${think} The answer is ${ans}.`;
        case 'noThinkClose': return ` <think> ${think} <answer> ${ans} </answer>`;
        case 'bareAnswer': return ` <think> ${think} </think> ${ans}`;
        case 'noThinkOpen': return ` ${think} </think> <answer> ${ans} </answer>`;
        case 'noAnswerClose': return ` <think> ${think} </think> <answer> ${ans}`;
      }
    }
  }
  throw new Error(`unknown document kind '${kind as string}'`);
}

/** Exact counts for weights over n items (largest remainder), in key order. */
export function allocate<K extends string>(weights: Partial<Record<K, number>>, n: number): Map<K, number> {
  const entries = Object.entries(weights).filter(([, w]) => (w as number) > 0) as [K, number][];
  const total = entries.reduce((s, [, w]) => s + w, 0);
  if (!(total > 0)) throw new Error('mix: the weights must have a positive sum');
  const raw = entries.map(([k, w]) => [k, (w / total) * n] as const);
  const out = new Map<K, number>(raw.map(([k, x]) => [k, Math.floor(x)]));
  let left = n - [...out.values()].reduce((s, x) => s + x, 0);
  const order = [...raw].sort((a, b) => (b[1] - Math.floor(b[1])) - (a[1] - Math.floor(a[1])));
  for (let i = 0; left > 0; i = (i + 1) % order.length, left--) out.set(order[i][0], out.get(order[i][0])! + 1);
  return out;
}

function expand<K extends string>(counts: Map<K, number>): K[] {
  const out: K[] = [];
  for (const [k, c] of counts) for (let i = 0; i < c; i++) out.push(k);
  return out;
}

function validateMix(mix: Partial<CorpusMix>): void {
  for (const [k, v] of Object.entries(mix)) {
    if (!(DOC_KINDS as readonly string[]).includes(k)) throw new Error(`mix: unknown document kind '${k}' (known: ${DOC_KINDS.join(', ')})`);
    if (typeof v !== 'number' || !(v >= 0)) throw new Error(`mix: weight of '${k}' must be a non-negative number`);
  }
}

interface Plan { suite: AnyTaskSuite; task: Task; kind: DocKind }

function plan(rng: Rng, n: number, kinds: Partial<Record<DocKind, number>>, o: {
  suites?: SuiteRef[]; suiteOpts?: CorpusOpts['suiteOpts']; partition?: Partition; heldOutFraction?: number;
}): Plan[] {
  if (!Number.isInteger(n) || n < 0) throw new Error(`count must be a non-negative integer, got ${n}`);
  const suites = (o.suites ?? BUILTIN_SUITES).map(suiteOf);
  if (suites.length === 0) throw new Error('no task suites given');
  const kindList = rng.shuffle(expand(allocate(kinds, n)));
  const perSuite = allocate(Object.fromEntries(suites.map((s, i) => [String(i), 1])), n);
  const suiteList = rng.shuffle(expand(perSuite)).map(Number);
  const tasks = suites.map((s, i) => s.generate(rng.fork(), perSuite.get(String(i)) ?? 0, {
    ...(o.suiteOpts?.[s.name] ?? {}), partition: o.partition ?? 'train', heldOutFraction: o.heldOutFraction,
  }));
  const cursor = suites.map(() => 0);
  return kindList.map((kind, i) => {
    const si = suiteList[i];
    return { suite: suites[si], task: tasks[si][cursor[si]++], kind };
  });
}

/** The corpus with everything known about each document. Deterministic from the seed. */
export function generateCorpusDocs(seed: number, opts: CorpusOpts): CorpusDoc[] {
  const mix = opts.mix ?? DEFAULT_MIX;
  validateMix(mix);
  const rng = new Rng(seed);
  const docs = plan(rng, opts.nDocs, mix, opts);
  const style = opts.promptStyle ?? 'r1-zero';
  const compactShare = opts.compactShare ?? 0;
  if (!(compactShare >= 0 && compactShare <= 1)) throw new Error(`compactShare must be in [0, 1], got ${compactShare}`);
  const textRng = rng.fork();
  const styleRng = rng.fork();
  return docs.map(({ suite, task, kind }) => {
    const prompt = formatPrompt(task.question, compactShare > 0 && styleRng.uniform() < compactShare ? 'compact' : style);
    const response = composeResponse(suite, task, kind, textRng);
    const finalAnswer = extractAnswer(response);
    const correct = isWellFormatted(response) && finalAnswer !== null && suite.verify(task, finalAnswer);
    return { text: prompt + response, prompt, response, kind, task, finalAnswer, correct };
  });
}

/** The pretraining corpus: documents (prompt + response), deterministic from the seed. */
export function generateCorpus(seed: number, opts: CorpusOpts): string[] {
  return generateCorpusDocs(seed, opts).map((d) => d.text);
}

export interface CorpusSummary {
  n: number;
  /** Share of documents of each kind. */
  kinds: Record<DocKind, number>;
  /** Share of documents that end correct and well formatted. */
  correct: number;
  /** Share of documents with a broken format. */
  malformed: number;
  /** Mean response length in characters, of correct and of other documents. */
  meanLengthCorrect: number;
  meanLengthOther: number;
  /** Share correct among the shortest, middle and longest third of responses. */
  correctByLengthTercile: [number, number, number];
  /** Share of responses containing a reflection word (wait / check / verify). */
  reflection: number;
}

export function summarizeCorpus(docs: readonly CorpusDoc[]): CorpusSummary {
  const n = docs.length;
  const kinds = Object.fromEntries(DOC_KINDS.map((k) => [k, 0])) as Record<DocKind, number>;
  let correct = 0, malformed = 0, lc = 0, nc = 0, lo = 0, no = 0, refl = 0;
  for (const d of docs) {
    kinds[d.kind] += 1;
    if (d.correct) { correct++; lc += d.response.length; nc++; } else { lo += d.response.length; no++; }
    if (!isWellFormatted(d.response)) malformed++;
    if (/\b(wait|check|verify)\b/i.test(d.response)) refl++;
  }
  const sorted = [...docs].sort((a, b) => a.response.length - b.response.length);
  const third = (i: number): number => {
    const part = sorted.slice(Math.floor((i * n) / 3), Math.floor(((i + 1) * n) / 3));
    return part.length ? part.filter((d) => d.correct).length / part.length : 0;
  };
  for (const k of DOC_KINDS) kinds[k] = n ? kinds[k] / n : 0;
  return {
    n, kinds, correct: correct / n, malformed: malformed / n,
    meanLengthCorrect: nc ? lc / nc : 0, meanLengthOther: no ? lo / no : 0,
    correctByLengthTercile: [third(0), third(1), third(2)], reflection: refl / n,
  };
}

// ---------------------------------------------------------------------------------------
// SFT / cold start

export type SftStyle = 'direct' | 'stepwise' | 'reflect' | 'verify';
export const DEFAULT_SFT_STYLES: Readonly<Record<SftStyle, number>> = { direct: 0.15, stepwise: 0.35, reflect: 0.15, verify: 0.35 };

export interface SftOpts {
  n: number;
  suites?: SuiteRef[];
  suiteOpts?: CorpusOpts['suiteOpts'];
  /** Relative weights of the (always correct) response styles; default DEFAULT_SFT_STYLES. */
  styles?: Partial<Record<SftStyle, number>>;
  promptStyle?: PromptStyle;
  partition?: Partition;
  heldOutFraction?: number;
}

export interface SftExample { prompt: string; response: string; task: Task; style: SftStyle }

/**
 * Correct, well-formatted prompt/response pairs for SFT (cold start): the response is
 * " <think> … </think> <answer> … </answer>" and prompt + response is the full text.
 */
export function generateSftExamples(seed: number, opts: SftOpts): SftExample[] {
  const styles = opts.styles ?? DEFAULT_SFT_STYLES;
  for (const k of Object.keys(styles)) {
    if (!['direct', 'stepwise', 'reflect', 'verify'].includes(k)) throw new Error(`styles: unknown SFT style '${k}' (known: direct, stepwise, reflect, verify)`);
  }
  const rng = new Rng(seed ^ 0x5f7);
  const docs = plan(rng, opts.n, styles, opts);
  const textRng = rng.fork();
  const style = opts.promptStyle ?? 'r1-zero';
  return docs.map(({ suite, task, kind }) => ({
    prompt: formatPrompt(task.question, style),
    response: composeResponse(suite, task, kind, textRng),
    task, style: kind as SftStyle,
  }));
}
