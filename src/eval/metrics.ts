// Evaluation metrics: unbiased pass@k, pass@1 from k samples, cons@k (majority vote),
// reflection-word rates and response-length statistics.
import { isEquivalent } from './answer.js';

/**
 * Unbiased pass@k from n samples of which c are correct (Chen et al. 2021, "Evaluating Large
 * Language Models Trained on Code"): 1 − C(n−c, k) / C(n, k), computed as the stable product
 * 1 − ∏_{i=n−c+1}^{n} (1 − k/i). Throws a RangeError unless 0 ≤ c ≤ n and 1 ≤ k ≤ n.
 */
export function passAtK(n: number, c: number, k: number): number {
  if (![n, c, k].every(Number.isInteger) || c < 0 || c > n || k < 1 || k > n) {
    throw new RangeError(`passAtK: need integers 0 ≤ c ≤ n and 1 ≤ k ≤ n (got n=${n}, c=${c}, k=${k})`);
  }
  if (n - c < k) return 1;
  let fail = 1;
  for (let i = n - c + 1; i <= n; i++) fail *= 1 - k / i;
  return 1 - fail;
}

/** pass@1 estimated from k samples of one problem: the share that are correct (0 for none). */
export function passAt1(correct: readonly boolean[]): number {
  return correct.length ? correct.filter(Boolean).length / correct.length : 0;
}

export interface ConsResult {
  /** The winning answer (its first occurrence), or null when no sample had an answer. */
  answer: string | null;
  /** Index of that first occurrence among the samples (-1 when none). */
  index: number;
  /** Whether the winning answer is correct. */
  correct: boolean;
  /** Samples in the winning group. */
  votes: number;
  /** Number of distinct answers (groups). */
  groups: number;
}

/**
 * cons@k for one problem: majority vote over the samples' extracted answers, grouped by
 * `equivalent` (default isEquivalent; each answer joins the first group whose first answer it
 * is equivalent to). The largest group wins; ties go to the group that appeared first. Null
 * answers (nothing extracted) never vote. The vote is correct when the winning group's first
 * answer is: `isCorrect(answer, index)` with the sample's index.
 */
export function consAtK(
  answers: readonly (string | null)[],
  isCorrect: (answer: string, index: number) => boolean,
  equivalent: (a: string, b: string) => boolean = isEquivalent,
): ConsResult {
  const groups: { answer: string; index: number; votes: number }[] = [];
  answers.forEach((a, i) => {
    if (a === null) return;
    const g = groups.find((x) => x.answer === a || equivalent(x.answer, a));
    if (g) g.votes++;
    else groups.push({ answer: a, index: i, votes: 1 });
  });
  let best: (typeof groups)[number] | null = null;
  for (const g of groups) if (!best || g.votes > best.votes) best = g;
  if (!best) return { answer: null, index: -1, correct: false, votes: 0, groups: 0 };
  return { answer: best.answer, index: best.index, correct: isCorrect(best.answer, best.index), votes: best.votes, groups: groups.length };
}

// ---------------------------------------------------------------------------------------
// Reflection words

/**
 * Words and phrases that mark a model re-examining its work ("aha moments"). Matched
 * case-insensitively as whole words; spaces match any whitespace and a hyphen is optional
 * ("double-check" also matches "double check" and "doublecheck", "re-check" "recheck").
 */
export const DEFAULT_REFLECTION_WORDS: readonly string[] = [
  'wait', 'hmm', 'let me check', 'let me verify', 'verify', 'check again', 're-check', 'double-check',
  'let me redo', 'let me recompute', 'mistake',
];

const matcherCache = new Map<string, RegExp>();

/** A global, case-insensitive regex matching any of the words (longest phrase first). */
export function reflectionMatcher(words: readonly string[] = DEFAULT_REFLECTION_WORDS): RegExp {
  const key = words.join('\u0000');
  let re = matcherCache.get(key);
  if (!re) {
    const alts = [...words]
      .filter((w) => w.trim() !== '')
      .sort((a, b) => b.length - a.length)
      .map((w) => w.trim().replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\s+/g, '\\s+').replace(/-/g, '[-\\s]?'));
    re = alts.length ? new RegExp(`(?<![A-Za-z])(?:${alts.join('|')})(?![A-Za-z])`, 'gi') : /(?!)/g;
    matcherCache.set(key, re);
  }
  return re;
}

/** Number of reflection-word occurrences in a text (non-overlapping). */
export function countReflections(text: string, words: readonly string[] = DEFAULT_REFLECTION_WORDS): number {
  return [...text.matchAll(reflectionMatcher(words))].length;
}

/** Whether a text contains any reflection word. */
export function hasReflection(text: string, words: readonly string[] = DEFAULT_REFLECTION_WORDS): boolean {
  return countReflections(text, words) > 0;
}

// ---------------------------------------------------------------------------------------
// Answer styles

/**
 * How a response reached its answer: it checked itself (a reflection word), worked in
 * steps (two or more '=' in its reasoning: "7 + 5 = 12. 12 - 3 = 9."), or answered directly.
 * The share and accuracy of each style tell whether RL has a better way of answering to move
 * toward: R1-Zero's gains come from styles that are more often right becoming more common.
 */
export type AnswerStyle = 'direct' | 'worked' | 'checked';
export const ANSWER_STYLES: readonly AnswerStyle[] = ['direct', 'worked', 'checked'];

export function answerStyle(text: string, words: readonly string[] = DEFAULT_REFLECTION_WORDS): AnswerStyle {
  if (hasReflection(text, words)) return 'checked';
  const think = /<think>([\s\S]*?)(?:<\/think>|$)/.exec(text)?.[1] ?? text;
  return (think.match(/=/g)?.length ?? 0) >= 2 ? 'worked' : 'direct';
}

export interface ReflectionStats {
  /** Share of texts that contain any reflection word. */
  rate: number;
  /** Reflection-word occurrences per 1000 tokens (over all texts). */
  per1kTokens: number;
  /** Total occurrences. */
  count: number;
}

/** Reflection rates over completions; tokenCounts[i] is the length of texts[i] in tokens. */
export function reflectionStats(texts: readonly string[], tokenCounts: readonly number[], words: readonly string[] = DEFAULT_REFLECTION_WORDS): ReflectionStats {
  if (tokenCounts.length !== texts.length) throw new Error(`reflectionStats: ${texts.length} texts but ${tokenCounts.length} token counts`);
  const counts = texts.map((t) => countReflections(t, words));
  const count = counts.reduce((s, c) => s + c, 0);
  const tokens = tokenCounts.reduce((s, c) => s + c, 0);
  return {
    rate: texts.length ? counts.filter((c) => c > 0).length / texts.length : 0,
    per1kTokens: tokens ? (1000 * count) / tokens : 0,
    count,
  };
}

// ---------------------------------------------------------------------------------------
// Lengths

export interface LengthStats {
  mean: number;
  median: number;
  min: number;
  max: number;
  /** Population standard deviation. */
  std: number;
  p90: number;
}

/** Summary statistics of response lengths (all zero for no responses). */
export function lengthStats(lengths: readonly number[]): LengthStats {
  const n = lengths.length;
  if (n === 0) return { mean: 0, median: 0, min: 0, max: 0, std: 0, p90: 0 };
  const sorted = [...lengths].sort((a, b) => a - b);
  const mean = sorted.reduce((s, x) => s + x, 0) / n;
  const std = Math.sqrt(sorted.reduce((s, x) => s + (x - mean) ** 2, 0) / n);
  return { mean, median: quantile(sorted, 0.5), min: sorted[0], max: sorted[n - 1], std, p90: quantile(sorted, 0.9) };
}

/** Linear-interpolated quantile of sorted values. */
function quantile(sorted: readonly number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Arithmetic mean (0 for an empty list). */
export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : 0;
}
