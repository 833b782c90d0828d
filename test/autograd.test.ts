// Autograd semantics: accumulation, no-grad scopes, detach, errors, graph release.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../src/tensor/index.js';
import { backward, noGrad, Rng } from '../src/tensor/index.js';
import { param, ref } from './util/gradcheck.js';

const rng = new Rng(3);

test('gradients accumulate over backward calls until cleared', () => {
  const x = param([4], rng);
  backward(T.sum(T.mul(x, 2)));
  backward(T.sum(T.mul(x, 3)));
  assert.deepEqual(Array.from(x.grad!.toArray()), [5, 5, 5, 5]);
  x.grad = null;
  backward(T.sum(x));
  assert.deepEqual(Array.from(x.grad!.toArray()), [1, 1, 1, 1]);
});

test('a tensor used twice receives both contributions', () => {
  const x = param([3], rng);
  backward(T.sum(T.add(T.mul(x, x), x)));
  const xs = x.toArray();
  x.grad!.toArray().forEach((g, i) => assert.ok(Math.abs(g - (2 * xs[i] + 1)) < 1e-12));
});

test('noGrad records nothing; detach cuts the graph', () => {
  const x = param([2], rng);
  const y = noGrad(() => T.mul(x, 2));
  assert.equal(y.requiresGrad, false);
  assert.equal(y.node, null);
  const z = T.mul(x.detach(), 2);
  assert.equal(z.requiresGrad, false);
  assert.throws(() => backward(T.sum(z)), /does not require grad/);
});

test('clear errors for misuse', () => {
  const x = param([2, 2], rng);
  assert.throws(() => backward(T.mul(x, 2)), /scalar/);
  const y = T.mul(x, 2);
  assert.throws(() => y.requireGrad(), /leaf/);
  const loss = T.sum(T.exp(x));
  backward(loss);
  assert.throws(() => T.add(x, T.tensor([1, 2, 3], [3], { backend: ref, dtype: 'f64' })), /cannot be broadcast/);
  assert.throws(() => T.reshape(x, [3, -1]), /cannot view/);
  assert.throws(() => T.linear(x, param([3, 5], rng)), /does not match weight/);
});

test('backward releases the graph behind it', () => {
  const x = param([2], rng);
  const h = T.exp(x);
  const loss = T.sum(h);
  backward(loss);
  assert.equal(h.node, null);
  assert.equal(loss.node, null);
});

test('the seeded generator is reproducible and its state round-trips', () => {
  const a = new Rng(42), b = new Rng(42);
  const xs = Array.from({ length: 5 }, () => a.normal());
  assert.deepEqual(xs, Array.from({ length: 5 }, () => b.normal()));
  const state = a.getState();
  const next = [a.uniform(), a.normal(), a.int(10)];
  const c = new Rng(0);
  c.setState(JSON.parse(JSON.stringify(state)));
  assert.deepEqual([c.uniform(), c.normal(), c.int(10)], next);
  assert.notDeepEqual(Array.from({ length: 5 }, () => new Rng(43).normal()), xs.slice(0, 1));
  // Uniform values stay in [0, 1) with a plausible mean.
  let s = 0;
  for (let i = 0; i < 10000; i++) { const u = a.uniform(); assert.ok(u >= 0 && u < 1); s += u; }
  assert.ok(Math.abs(s / 10000 - 0.5) < 0.02);
});
