// Token sampling from logits: greedy, temperature, top-k, top-p (nucleus), seeded.
import type { Rng } from '../tensor/random.js';

export interface SamplingParams {
  /** 0 means greedy (argmax). */
  temperature: number;
  /** Keep the smallest set of tokens whose probability reaches topP (1 = off). */
  topP: number;
  /** Keep the topK most likely tokens (0 = off). */
  topK: number;
}

export const GREEDY: SamplingParams = { temperature: 0, topP: 1, topK: 0 };

export interface Sampled {
  token: number;
  /** log p(token) under the model's distribution (temperature 1, no truncation). */
  logprob: number;
}

/**
 * Samples one token from a row of logits. Sampling a batch costs one pass or two over the
 * vocabulary per row, so the loops work on typed arrays, and the nucleus is sorted without the
 * tail that cannot be part of it: the draws are the same as those of a full sort.
 */
export function sampleToken(logits: ArrayLike<number>, p: SamplingParams, rng: Rng): Sampled {
  const V = logits.length;
  let max = -Infinity, argmax = 0;
  for (let i = 0; i < V; i++) if (logits[i] > max) { max = logits[i]; argmax = i; }
  let z = 0;
  for (let i = 0; i < V; i++) z += Math.exp(logits[i] - max);
  const logZ = max + Math.log(z);
  if (p.temperature <= 0) return { token: argmax, logprob: logits[argmax] - logZ };

  // Candidates: all tokens in order, or the top-k by logit; their weights exp((l − max) / T).
  const cand = p.topK > 0 && p.topK < V ? topKIndices(logits, p.topK) : null;
  const n = cand ? cand.length : V;
  const t = p.temperature;
  const weights = new Float64Array(n);
  for (let j = 0; j < n; j++) weights[j] = Math.exp((logits[cand ? cand[j] : j] - max) / t);
  const token = (j: number): number => (cand ? cand[j] : j);
  if (!(p.topP < 1)) return draw(n, token, weights, logits, logZ, rng);

  // Nucleus: the most likely candidates (ties: lower index first) until their weight reaches
  // topP of the total.
  let total = 0;
  for (let j = 0; j < n; j++) total += weights[j];
  const kept = nucleus(weights, token, total * p.topP, (1 - p.topP) * total / (2 * n));
  const keptWeights = Float64Array.from(kept, (j) => weights[j]);
  return draw(kept.length, (r) => token(kept[r]), keptWeights, logits, logZ, rng);
}

/**
 * Indices j of the smallest prefix, in order of weight (descending; ties: lower token first),
 * whose weights add up to `mass`. Weights below `floor` are left out of the sort when those
 * above it are enough: every weight above the floor comes before every one below it, so the
 * prefix is the same; otherwise all are sorted.
 */
function nucleus(weights: Float64Array, token: (j: number) => number, mass: number, floor: number): number[] {
  const before = (a: number, b: number): number => weights[b] - weights[a] || token(a) - token(b);
  const prefix = (order: number[]): number[] | null => {
    let acc = 0;
    for (let r = 0; r < order.length; r++) {
      acc += weights[order[r]];
      if (acc >= mass) return order.slice(0, r + 1);
    }
    return null;
  };
  const heavy: number[] = [];
  for (let j = 0; j < weights.length; j++) if (weights[j] >= floor) heavy.push(j);
  const found = heavy.length < weights.length ? prefix(heavy.sort(before)) : null;
  if (found) return found;
  const all = Array.from({ length: weights.length }, (_, j) => j).sort(before);
  return prefix(all) ?? all;
}

/** Draws candidate r with probability weights[r] / Σ weights; token(r) is its id. */
function draw(n: number, token: (r: number) => number, weights: Float64Array, logits: ArrayLike<number>, logZ: number, rng: Rng): Sampled {
  let total = 0;
  for (let r = 0; r < n; r++) total += weights[r];
  let u = rng.uniform() * total;
  for (let r = 0; r < n; r++) {
    u -= weights[r];
    if (u < 0) return { token: token(r), logprob: logits[token(r)] - logZ };
  }
  const last = token(n - 1);
  return { token: last, logprob: logits[last] - logZ };
}

/** Indices of the k largest logits (ties: lower index first), unordered beyond that. */
function topKIndices(logits: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: logits.length }, (_, i) => i);
  idx.sort((a, b) => logits[b] - logits[a] || a - b);
  return idx.slice(0, k);
}
