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

/** Samples one token from a row of logits. */
export function sampleToken(logits: ArrayLike<number>, p: SamplingParams, rng: Rng): Sampled {
  const V = logits.length;
  let max = -Infinity, argmax = 0;
  for (let i = 0; i < V; i++) if (logits[i] > max) { max = logits[i]; argmax = i; }
  let z = 0;
  for (let i = 0; i < V; i++) z += Math.exp(logits[i] - max);
  const logZ = max + Math.log(z);
  if (p.temperature <= 0) return { token: argmax, logprob: logits[argmax] - logZ };

  // Candidates: all tokens, or the top-k; sorted by logit when truncation needs an order.
  let cand: number[];
  if (p.topK > 0 && p.topK < V) cand = topKIndices(logits, p.topK);
  else cand = Array.from({ length: V }, (_, i) => i);
  const t = p.temperature;
  const weights = cand.map((i) => Math.exp((logits[i] - max) / t));
  if (p.topP < 1) {
    const order = cand.map((_, j) => j).sort((a, b) => weights[b] - weights[a] || cand[a] - cand[b]);
    const total = weights.reduce((s, w) => s + w, 0);
    const keep: number[] = [];
    let acc = 0;
    for (const j of order) {
      keep.push(j);
      acc += weights[j];
      if (acc >= p.topP * total) break;
    }
    cand = keep.map((j) => cand[j]);
    const kept = keep.map((j) => weights[j]);
    return draw(cand, kept, logits, logZ, rng);
  }
  return draw(cand, weights, logits, logZ, rng);
}

function draw(cand: number[], weights: number[], logits: ArrayLike<number>, logZ: number, rng: Rng): Sampled {
  const total = weights.reduce((s, w) => s + w, 0);
  let u = rng.uniform() * total;
  for (let j = 0; j < cand.length; j++) {
    u -= weights[j];
    if (u < 0) return { token: cand[j], logprob: logits[cand[j]] - logZ };
  }
  const last = cand[cand.length - 1];
  return { token: last, logprob: logits[last] - logZ };
}

/** Indices of the k largest logits (ties: lower index first), unordered beyond that. */
function topKIndices(logits: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: logits.length }, (_, i) => i);
  idx.sort((a, b) => logits[b] - logits[a] || a - b);
  return idx.slice(0, k);
}
