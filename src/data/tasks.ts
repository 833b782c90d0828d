// Verifiable tasks: the common interface of the task suites, the train / held-out partition
// of each suite's problem space, and makeSplits.
//
// Held-out purity. Every problem has a canonical key (suite.key: operands of a commutative
// operation sorted, Countdown numbers sorted, …). A fixed hash of the key puts each problem
// either in the *held-out partition* (about `heldOutFraction`, default 20%, of the problem
// space) or in the *train partition*. Everything used for training (train splits, the
// pretraining corpus, SFT examples, RL prompts) is drawn from the train partition only, and
// held-out splits from the held-out partition only — whatever seeds were used — so no
// evaluation problem is ever seen in training, even as a commuted variant. makeSplits also
// checks the two splits against each other by key.
import { Rng } from '../tensor/random.js';
import { Rational, parseNumber } from './rational.js';

/** One verifiable problem. `meta` holds the structured problem (JSON-serialisable). */
export interface Task {
  /** Stable across seeds: `${suite}:${key}`. */
  id: string;
  suite: string;
  /** The question, without trailing punctuation (the template adds ". Assistant:"). */
  question: string;
  /** A reference answer (for Countdown: one valid expression; any valid one is accepted). */
  answer: string;
  meta: Record<string, unknown>;
}

/** Which part of the problem space to draw from. */
export type Partition = 'train' | 'heldout' | 'all';

/** Options every suite understands, on top of its difficulty knobs. */
export interface GenerateOpts {
  /** Default 'all'. */
  partition?: Partition;
  /** Share of the problem space reserved for held-out evaluation; default 0.2. */
  heldOutFraction?: number;
}

/**
 * Worked solutions for the corpus generator (optional on a suite; the three built-in suites
 * have them). All text is plain, single-line, with no tags.
 */
export interface WorkedSolutions {
  /** A one-line statement of a result, e.g. "47 + 38 = 85" (also used for wrong results). */
  direct(task: Task, answer: string): string;
  /**
   * Step-by-step work ending in a result. With slip=true, exactly one plausible mistake is made
   * in the work (a dropped carry, a times-table slip, …) so that the result is wrong.
   */
  steps(task: Task, rng: Rng, slip: boolean): { text: string; answer: string };
  /** A wrong answer produced by one plausible slip (never verifies). */
  wrongAnswer(task: Task, rng: Rng): string;
  /** An independent check of a candidate answer (inverse operation, substitution, …). */
  check(task: Task, answer: string): { text: string; ok: boolean };
}

export interface TaskSuite<O extends GenerateOpts = GenerateOpts> {
  name: string;
  /** A one-line description, for listings. */
  description: string;
  /** n problems drawn with rng (independently: may repeat; makeSplits dedupes). */
  generate(rng: Rng, n: number, opts?: O): Task[];
  /** Exact check of a candidate answer (the text inside <answer>…</answer>). */
  verify(task: Task, candidateAnswer: string): boolean;
  /** Canonical problem key: two tasks with the same key are the same problem. */
  key(task: Task): string;
  worked?: WorkedSolutions;
}

/** A suite with any options type (for registries and lists). */
export type AnyTaskSuite = TaskSuite<any>; // eslint-disable-line @typescript-eslint/no-explicit-any

// ---------------------------------------------------------------------------------------
// Partition

/** FNV-1a, 32 bit. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // final avalanche (murmur3 fmix) so that near-identical keys spread evenly
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

export const DEFAULT_HELD_OUT_FRACTION = 0.2;

/** Whether the problem with this suite and key belongs to the held-out partition. */
export function isHeldOutKey(suite: string, key: string, heldOutFraction = DEFAULT_HELD_OUT_FRACTION): boolean {
  return fnv1a(`r1ts-heldout|${suite}|${key}`) % 10000 < Math.round(heldOutFraction * 10000);
}

export function inPartition(suite: string, key: string, opts: GenerateOpts = {}): boolean {
  const p = opts.partition ?? 'all';
  if (p === 'all') return true;
  return isHeldOutKey(suite, key, opts.heldOutFraction) === (p === 'heldout');
}

/**
 * Draw n problems with `sample`, keeping only those in the requested partition. Used by the
 * suites' generate(). Throws if the partition seems empty for these options.
 */
export function sampleInPartition(
  suite: string, rng: Rng, n: number, opts: GenerateOpts,
  sample: (rng: Rng) => Task, key: (t: Task) => string,
): Task[] {
  const out: Task[] = [];
  let misses = 0;
  while (out.length < n) {
    const t = sample(rng);
    if (inPartition(suite, key(t), opts)) { out.push(t); misses = 0; continue; }
    if (++misses > 10000) {
      throw new Error(`${suite}: no problem in the '${opts.partition}' partition after 10000 draws; the problem space is too small for these options`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Splits

export interface SplitOpts<O extends GenerateOpts = GenerateOpts> {
  /** Number of training problems. */
  train: number;
  /** Number of held-out problems (always distinct). */
  heldOut: number;
  /** Difficulty knobs passed to suite.generate. */
  opts?: O;
  /** Make the training problems distinct too (default false: training may repeat problems). */
  uniqueTrain?: boolean;
}

export interface Splits { train: Task[]; heldOut: Task[] }

/**
 * Train and held-out problems for a suite, deterministic from the seed. The held-out split
 * has distinct problems (by canonical key) and shares none with the training split.
 */
export function makeSplits<O extends GenerateOpts>(suite: TaskSuite<O>, seed: number, split: SplitOpts<O>): Splits {
  const rng = new Rng(seed);
  const heldRng = rng.fork();
  const trainRng = rng.fork();
  const base = (split.opts ?? {}) as O;
  const heldOut = distinct(suite, heldRng, split.heldOut, { ...base, partition: 'heldout' }, new Set(), true);
  const heldKeys = new Set(heldOut.map((t) => suite.key(t)));
  const train = distinct(suite, trainRng, split.train, { ...base, partition: 'train' }, heldKeys, split.uniqueTrain ?? false);
  return { train, heldOut };
}

function distinct<O extends GenerateOpts>(
  suite: TaskSuite<O>, rng: Rng, n: number, opts: O, exclude: Set<string>, unique: boolean,
): Task[] {
  const out: Task[] = [];
  const seen = new Set<string>();
  let stale = 0;
  while (out.length < n) {
    const batch = suite.generate(rng, Math.min(256, Math.max(16, n - out.length)), opts);
    let added = 0;
    for (const t of batch) {
      if (out.length >= n) break;
      const k = suite.key(t);
      if (exclude.has(k)) continue;
      if (unique && seen.has(k)) continue;
      seen.add(k);
      out.push(t);
      added++;
    }
    if (added === 0 && ++stale > 200) {
      throw new Error(`${suite.name}: only ${out.length} distinct ${opts.partition} problems found, ${n} requested; lower the count or raise the difficulty`);
    }
    if (added > 0) stale = 0;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Helpers shared by the suites

/** Strip a \boxed{…} wrapper and surrounding whitespace / a trailing period. */
export function cleanAnswer(s: string): string {
  let t = s.trim();
  const m = /^\\boxed\{(.*)\}$/s.exec(t);
  if (m) t = m[1].trim();
  if (t.endsWith('.')) t = t.slice(0, -1).trim();
  return t;
}

/** Parse a numeric answer (integer, decimal or fraction) exactly; null if it is not one. */
export function numericAnswer(s: string): Rational | null { return parseNumber(cleanAnswer(s)); }

/** The integer a numeric answer denotes ("85", "85.0", "170/2"); null if it is not a whole number. */
export function integerAnswer(s: string): bigint | null {
  const v = numericAnswer(s);
  return v !== null && v.isInteger() ? v.num : null;
}

export function metaNumber(task: Task, field: string): number {
  const v = task.meta[field];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`task ${task.id}: meta.${field} must be a number`);
  return v;
}

export function metaString(task: Task, field: string): string {
  const v = task.meta[field];
  if (typeof v !== 'string') throw new Error(`task ${task.id}: meta.${field} must be a string`);
  return v;
}

/** Uniform integer in [lo, hi]. */
export function randInt(rng: Rng, lo: number, hi: number): number { return lo + rng.int(hi - lo + 1); }

export function pick<T>(rng: Rng, xs: readonly T[]): T { return xs[rng.int(xs.length)]; }
