// GRPO: advantages, the clipped surrogate, the KL estimator and each loss normaliser, checked
// against hand computations; the loss gradient against finite differences.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../src/tensor/index.js';
import { backward } from '../src/tensor/index.js';
import { defaultGrpoConfig, GrpoConfig, grpoLoss, groupAdvantages, packRollouts, RolloutBatch } from '../src/rl/grpo.js';
import { gradcheck, ref } from './util/gradcheck.js';

const f64 = (data: number[], shape: number[]): T.Tensor => T.tensor(data, shape, { backend: ref, dtype: 'f64' });
const close = (a: number, b: number, tol = 1e-10): void => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test('group advantages: (r − mean)/std within each group; none: only centred', () => {
  const r = [1, 0, 0, 1, 0.5, 0.5, 0.5, 0.5];
  const a = groupAdvantages(r, 4, 'group');
  const std = Math.sqrt((4 * 0.25) / 3);
  [1, 0, 0, 1].forEach((x, i) => close(a[i], (x - 0.5) / (std + 1e-4)));
  a.slice(4).forEach((x) => close(x, 0));
  assert.deepEqual(groupAdvantages(r, 4, 'none').slice(0, 4), [0.5, -0.5, -0.5, 0.5]);
  assert.throws(() => groupAdvantages([1, 2, 3], 2, 'group'), /not groups of 2/);
});

/** Two completions: row 0 with 2 active tokens, row 1 with 3. */
function batch(cfg: Partial<GrpoConfig>, logpOld: number[], ref_?: number[]): { b: RolloutBatch; c: GrpoConfig } {
  const c = { ...defaultGrpoConfig, ...cfg };
  const mask = f64([0, 1, 1, 0, 1, 1, 1, 0], [2, 4]);
  return {
    c,
    b: {
      ids: T.tensor(new Int32Array(10), [2, 5], { backend: ref, dtype: 'i32' }), mask,
      advantages: f64([2, -1], [2, 1]), oldLogprobs: f64(logpOld, [2, 4]),
      refLogprobs: ref_ ? f64(ref_, [2, 4]) : null, tokensPerRow: [2, 3],
    },
  };
}

test('at ρ = 1 the loss is −mean advantage under each normaliser, and its gradient is −A/norm', () => {
  const old = [-1, -2, -0.5, -3, -1, -1, -1, -2];
  for (const [loss_type, value, grads] of [
    ['grpo', -(2 + -1) / 2, [0, -2 / 2 / 2, -2 / 2 / 2, 0, 1 / 3 / 2, 1 / 3 / 2, 1 / 3 / 2, 0]],
    ['dapo', -(2 * 2 + -1 * 3) / 5, [0, -2 / 5, -2 / 5, 0, 1 / 5, 1 / 5, 1 / 5, 0]],
    ['dr_grpo', -(2 * 2 + -1 * 3) / (2 * 10), [0, -2 / 20, -2 / 20, 0, 1 / 20, 1 / 20, 1 / 20, 0]],
  ] as [GrpoConfig['loss_type'], number, number[]][]) {
    const { b, c } = batch({ loss_type, beta: 0, max_completion_length: 10 }, old);
    const logp = f64(old, [2, 4]).requireGrad();
    const out = grpoLoss(logp, b, c);
    close(out.loss.item(), value);
    backward(out.loss);
    Array.from(logp.grad!.toArray()).forEach((g, i) => close(g, grads[i]));
    assert.equal(out.clipFraction, 0);
  }
});

test('clipping: a ratio past 1 + ε with A > 0 (or below 1 − ε with A < 0) stops the gradient', () => {
  const old = [0, 0, 0, 0, 0, 0, 0, 0];
  // row 0 (A = 2): token 1 at ρ = e^0.5 > 1.2 (clipped), token 2 at ρ = 1; row 1 (A = −1): token 4 at ρ = e^−0.5 < 0.8 (clipped)
  const cur = [0, 0.5, 0, 0, -0.5, 0, 0, 0];
  const { b, c } = batch({ loss_type: 'dapo', beta: 0, epsilon: 0.2, epsilon_high: 0.2 }, old);
  const logp = f64(cur, [2, 4]).requireGrad();
  const out = grpoLoss(logp, b, c);
  // loss = −(2·1.2 + 2·1 + (−1)·0.8 + (−1)·1 + (−1)·1) / 5
  close(out.loss.item(), -(2 * 1.2 + 2 - 0.8 - 1 - 1) / 5);
  close(out.clipFraction, 2 / 5);
  backward(out.loss);
  const g = Array.from(logp.grad!.toArray());
  close(g[1], 0); close(g[4], 0);
  close(g[2], -2 / 5); close(g[5], 1 / 5);
  // clip-higher: ε_high = 0.7 lets token 1 (ρ ≈ 1.65) through
  const hi = batch({ loss_type: 'dapo', beta: 0, epsilon: 0.2, epsilon_high: 0.7 }, old);
  const lp2 = f64(cur, [2, 4]).requireGrad();
  backward(grpoLoss(lp2, hi.b, hi.c).loss);
  close(lp2.grad!.toArray()[1], -2 * Math.exp(0.5) / 5);
});

test('KL: k3 estimator value and gradient β(1 − π_ref/π)', () => {
  const old = [0, -1, -1, 0, -1, -1, -1, 0];
  const refLp = [0, -0.5, -1.5, 0, -1, -2, -0.2, 0];
  const { b, c } = batch({ loss_type: 'dapo', beta: 0.1 }, old, refLp);
  const logp = f64(old, [2, 4]).requireGrad();
  const out = grpoLoss(logp, b, c);
  const active = [1, 2, 4, 5, 6];
  const k3 = (i: number): number => { const d = refLp[i] - old[i]; return Math.exp(d) - d - 1; };
  close(out.kl, active.reduce((s, i) => s + k3(i), 0) / 5);
  close(out.loss.item(), -(2 * 2 - 3) / 5 + 0.1 * active.reduce((s, i) => s + k3(i), 0) / 5);
  backward(out.loss);
  const adv = [0, 2, 2, 0, -1, -1, -1, 0];
  for (const i of active) close(logp.grad!.toArray()[i], (-adv[i] + 0.1 * (1 - Math.exp(refLp[i] - old[i]))) / 5);
});

test('the GRPO loss gradient matches finite differences (every variant)', () => {
  const old = [-1, -2, -0.5, -3, -1, -1.2, -0.7, -2];
  const refLp = [-1, -1.5, -0.8, -3, -0.9, -1, -1, -2];
  const start = [-1, -1.7, -0.6, -3, -1.3, -1.1, -0.75, -2];
  for (const loss_type of ['grpo', 'bnpo', 'dr_grpo'] as const) {
    const { b, c } = batch({ loss_type, beta: 0.05, epsilon: 0.2, epsilon_high: 0.28, max_completion_length: 6 }, old, refLp);
    gradcheck(`grpo loss ${loss_type}`, (lp) => grpoLoss(lp, b, c).loss, [f64(start, [2, 4]).requireGrad()]);
  }
});

test('packing: prompts and completions right-padded, the mask covers completion targets only', () => {
  const p = packRollouts([[1, 2, 3], [4]], [[5, 6], [7, 8, 9]], [true, false], 0, ref, 1);
  assert.deepEqual(Array.from(p.ids.toArray()), [1, 2, 3, 5, 6, 4, 7, 8, 9, 0]);
  // row 0: targets at positions 3, 4 (tokens 5, 6) ⇒ mask[2], mask[3]; row 1 dropped (keep false)
  assert.deepEqual(Array.from(p.mask.toArray()), [0, 0, 1, 1, 0, 0, 0, 0]);
  assert.deepEqual(p.tokensPerRow, [2, 0]);
  // Lengths rounded up to a multiple (4 here): the extra columns are padding outside the mask.
  const q = packRollouts([[1, 2, 3], [4]], [[5, 6], [7, 8, 9]], [true, true], 0, ref, 4);
  assert.deepEqual(q.ids.shape, [2, 8]);
  assert.deepEqual(Array.from(q.ids.toArray()), [1, 2, 3, 5, 6, 0, 0, 0, 4, 7, 8, 9, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(q.mask.toArray()), [0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0]);
});
