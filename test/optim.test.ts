// AdamW against a hand computation, clipping, schedules, and optimizer state round trips.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../src/tensor/index.js';
import { backward, Rng } from '../src/tensor/index.js';
import { AdamW, clipScale, gradNorm } from '../src/train/optim.js';
import { warmupCosine } from '../src/train/schedule.js';
import { ref } from './util/gradcheck.js';

const close = (a: number, b: number, tol = 1e-12): void => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

test('AdamW matches the update rule step by step', () => {
  const w = T.tensor([0.5, -1.0], [2], { backend: ref, dtype: 'f64' }).requireGrad();
  const cfg = { lr: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.01 };
  const opt = new AdamW([['w', w]], cfg, () => false);
  // loss = Σ w³ → g = 3w²; hand-rolled AdamW alongside.
  let p = [0.5, -1.0], m = [0, 0], v = [0, 0];
  for (let step = 1; step <= 3; step++) {
    opt.zeroGrad();
    backward(T.sum(T.pow(w, 3)));
    opt.update();
    p = p.map((pi, i) => {
      const g = 3 * pi * pi;
      m[i] = cfg.beta1 * m[i] + (1 - cfg.beta1) * g;
      v[i] = cfg.beta2 * v[i] + (1 - cfg.beta2) * g * g;
      const mh = m[i] / (1 - cfg.beta1 ** step), vh = v[i] / (1 - cfg.beta2 ** step);
      return pi - cfg.lr * mh / (Math.sqrt(vh) + cfg.eps) - cfg.lr * cfg.weightDecay * pi;
    });
    Array.from(w.toArray()).forEach((x, i) => close(x, p[i]));
  }
});

test('global-norm clipping scales gradients to the bound', () => {
  const a = T.tensor([3, 0], [2], { backend: ref, dtype: 'f64' }).requireGrad();
  const b = T.tensor([4], [1], { backend: ref, dtype: 'f64' }).requireGrad();
  backward(T.add(T.sum(T.mul(a, T.tensor([3, 0], [2], { backend: ref, dtype: 'f64' }))), T.sum(T.mul(b, 4))));
  close(gradNorm([a, b]), 5);
  const { norm, scale } = clipScale([a, b], 1);
  close(norm, 5);
  close(scale, 1 / (5 + 1e-6));
  assert.equal(clipScale([a, b], 10).scale, 1);
  a.grad = T.tensor([NaN, 0], [2], { backend: ref, dtype: 'f64' });
  assert.throws(() => clipScale([a, b], 1), /gradient norm is NaN/);
});

test('warmup then cosine decay', () => {
  const o = { peak: 1, warmup: 10, total: 110, minRatio: 0.1 };
  close(warmupCosine(0, o), 0.1);
  close(warmupCosine(9, o), 1);
  close(warmupCosine(10, o), 1);
  close(warmupCosine(60, o), 0.55);
  close(warmupCosine(110, o), 0.1);
  assert.ok(warmupCosine(30, o) > warmupCosine(40, o));
});

test('optimizer state saved mid-run continues identically', () => {
  const rng = new Rng(5);
  const make = (): T.Tensor => T.randn([3, 4], new Rng(9), 1, 0, { backend: ref, dtype: 'f64' }).requireGrad();
  const target = T.randn([3, 4], rng, 1, 0, { backend: ref, dtype: 'f64' });
  const stepOnce = (w: T.Tensor, opt: AdamW): void => {
    opt.zeroGrad();
    backward(T.sum(T.square(T.sub(w, target))));
    opt.update({ lr: 0.05 });
  };
  const w1 = make(), o1 = new AdamW([['w', w1]]);
  for (let i = 0; i < 6; i++) stepOnce(w1, o1);

  const w2 = make(), o2 = new AdamW([['w', w2]]);
  for (let i = 0; i < 3; i++) stepOnce(w2, o2);
  const saved = o2.getState();
  const weights = Float64Array.from(w2.toArray());
  const w3 = T.tensor(weights, [3, 4], { backend: ref, dtype: 'f64' }).requireGrad();
  const o3 = new AdamW([['w', w3]]);
  o3.setState(saved);
  for (let i = 0; i < 3; i++) stepOnce(w3, o3);
  Array.from(w3.toArray()).forEach((x, i) => close(x, w1.toArray()[i], 1e-6));
  assert.throws(() => new AdamW([['other', w3]]).setState(saved), /no moments for parameter other/);
});
