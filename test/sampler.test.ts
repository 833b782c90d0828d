// Token sampling: the sampler (typed arrays, the nucleus sorted without its impossible tail)
// draws exactly what the plain definition draws: a full sort by probability, the smallest
// prefix reaching top-p, a draw in that order. Same tokens and log-probs for the same seed, over
// flat, peaked and tied distributions, with and without top-k.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GREEDY, sampleToken, type Sampled, type SamplingParams } from '../src/generate/sampler.js';
import { Rng } from '../src/tensor/random.js';

/** The definition, written plainly. */
function reference(logits: Float32Array, p: SamplingParams, rng: Rng): Sampled {
  const V = logits.length;
  const max = Math.max(...logits);
  const argmax = logits.indexOf(max);
  const logZ = max + Math.log(Array.from(logits).reduce((s, l) => s + Math.exp(l - max), 0));
  if (p.temperature <= 0) return { token: argmax, logprob: logits[argmax] - logZ };
  let cand = Array.from({ length: V }, (_, i) => i);
  if (p.topK > 0 && p.topK < V) cand = [...cand].sort((a, b) => logits[b] - logits[a] || a - b).slice(0, p.topK);
  let weights = cand.map((i) => Math.exp((logits[i] - max) / p.temperature));
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
    weights = keep.map((j) => weights[j]);
  }
  let u = rng.uniform() * weights.reduce((s, w) => s + w, 0);
  for (let j = 0; j < cand.length; j++) {
    u -= weights[j];
    if (u < 0) return { token: cand[j], logprob: logits[cand[j]] - logZ };
  }
  return { token: cand[cand.length - 1], logprob: logits[cand[cand.length - 1]] - logZ };
}

test('the sampler draws exactly what the plain definition draws', () => {
  const rng = new Rng(3);
  const rows: [string, Float32Array][] = [
    ['flat', Float32Array.from({ length: 2048 }, () => rng.uniform())],
    ['spread', Float32Array.from({ length: 2048 }, () => 8 * (rng.uniform() - 0.5))],
    ['peaked', Float32Array.from({ length: 2048 }, (_, i) => (i % 97 === 0 ? 12 : 0) + rng.uniform())],
    ['ties', Float32Array.from({ length: 512 }, (_, i) => i % 4)],
    ['one candidate', Float32Array.from({ length: 64 }, (_, i) => (i === 17 ? 100 : 0))],
  ];
  const params: SamplingParams[] = [
    GREEDY,
    { temperature: 1, topP: 1, topK: 0 }, { temperature: 0.6, topP: 0.95, topK: 0 }, { temperature: 0.7, topP: 0.5, topK: 0 },
    { temperature: 1.3, topP: 0.999, topK: 0 }, { temperature: 0.7, topP: 0.9, topK: 40 }, { temperature: 1, topP: 1, topK: 5 },
    { temperature: 0.5, topP: 0, topK: 0 },
  ];
  let draws = 0;
  for (const [name, logits] of rows) {
    for (const p of params) {
      const a = new Rng(11), b = new Rng(11);
      for (let k = 0; k < 25; k++) {
        assert.deepEqual(sampleToken(logits, p, a), reference(logits, p, b), `${name} ${JSON.stringify(p)} draw ${k}`);
        draws++;
      }
    }
  }
  assert.equal(draws, 5 * 8 * 25);
});
