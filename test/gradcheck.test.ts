// Every differentiable op against central finite differences, in float64.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../src/tensor/index.js';
import { Rng, Tensor } from '../src/tensor/index.js';
import { gradcheck, ids, param, ref } from './util/gradcheck.js';

const rng = new Rng(7);

test('elementwise binary ops with broadcasting', () => {
  const a = param([3, 4], rng), b = param([4], rng), c = param([3, 1], rng, { lo: 0.5 });
  gradcheck('add', T.add, [a, b]);
  gradcheck('sub', T.sub, [c, a]);
  gradcheck('mul', T.mul, [a, c]);
  gradcheck('div', T.div, [a, c]);
  gradcheck('maximum', T.maximum, [a, param([3, 4], rng)]);
  gradcheck('minimum', T.minimum, [a, b]);
  gradcheck('pow', (x) => T.pow(x, 3), [a]);
  gradcheck('affine', (x) => T.affine(x, -2.5, 0.5), [a]);
  gradcheck('scalar ops', (x) => T.div(T.sub(T.mul(T.add(x, 1), 3), 2), 4), [a]);
});

test('elementwise unary ops', () => {
  const x = param([2, 5], rng);
  const pos = param([2, 5], rng, { lo: 0.3 });
  for (const [name, f] of Object.entries({ neg: T.neg, exp: T.exp, sigmoid: T.sigmoid, silu: T.silu, tanh: T.tanh, square: T.square })) {
    gradcheck(name, f, [x]);
  }
  for (const [name, f] of Object.entries({ log: T.log, sqrt: T.sqrt, rsqrt: T.rsqrt, reciprocal: T.reciprocal, abs: T.abs, relu: T.relu })) {
    gradcheck(name, f, [pos]);
  }
  const cond = T.compare('gt', param([2, 5], rng).detach(), 0);
  gradcheck('where', (a, b) => T.where(cond, a, b), [x, pos]);
});

test('reductions', () => {
  const x = param([2, 3, 4], rng);
  gradcheck('sum all', (t) => T.sum(t), [x]);
  gradcheck('sum axis', (t) => T.sum(t, 1), [x]);
  gradcheck('sum axes keepdim', (t) => T.sum(t, [0, 2], true), [x]);
  gradcheck('mean', (t) => T.mean(t, -1), [x]);
  gradcheck('max last', (t) => T.max(t, -1).values, [x]);
  gradcheck('max middle', (t) => T.max(t, 1, true).values, [x]);
});

test('shape ops', () => {
  const x = param([2, 3, 4], rng);
  gradcheck('reshape', (t) => T.reshape(t, [6, -1]), [x]);
  gradcheck('permute', (t) => T.permute(t, [2, 0, 1]), [x]);
  const y = param([2, 1, 3, 1], rng);
  gradcheck('permute moving size-1 axes (a view)', (t) => T.permute(t, [1, 0, 3, 2]), [y]);
  gradcheck('permute swapping sized axes past size-1 ones', (t) => T.permute(t, [2, 1, 0, 3]), [y]);
  const v = Array.from(y.toArray());
  assert.deepEqual(Array.from(T.permute(y, [1, 0, 3, 2]).toArray()), v);
  assert.deepEqual(Array.from(T.permute(y, [2, 1, 0, 3]).toArray()), [0, 3, 1, 4, 2, 5].map((i) => v[i]));
  gradcheck('transpose', (t) => T.transpose(t, 0, 2), [x]);
  gradcheck('narrow', (t) => T.narrow(t, 2, 1, 2), [x]);
  gradcheck('split', (t) => T.mul(T.split(t, [1, 3], -1)[1], 2), [x]);
  gradcheck('concat', (a, b) => T.concat([a, b], 1), [x, param([2, 2, 4], rng)]);
  gradcheck('expand', (t) => T.expand(t, [2, 2, 3, 4]), [x]);
});

test('matmul and linear', () => {
  gradcheck('linear', T.linear, [param([2, 3, 5], rng), param([4, 5], rng), param([4], rng)]);
  gradcheck('linear no bias', (x, w) => T.linear(x, w), [param([7, 5], rng), param([3, 5], rng)]);
  // blocks of 2, 0 and 3 rows through three weights (the middle one unused)
  gradcheck('groupedLinear', (x, a, b, c) => T.groupedLinear(x, [a, b, c], [2, 0, 3]), [param([5, 4], rng), param([3, 4], rng), param([3, 4], rng), param([3, 4], rng)]);
  gradcheck('matmul 2d', (a, b) => T.matmul(a, b), [param([3, 4], rng), param([4, 5], rng)]);
  gradcheck('matmul shared right', (a, b) => T.matmul(a, b), [param([2, 3, 4], rng), param([4, 2], rng)]);
  gradcheck('matmul batched', (a, b) => T.matmul(a, b), [param([2, 3, 4], rng), param([2, 4, 5], rng)]);
  gradcheck('matmul batched transB', (a, b) => T.matmul(a, b, { transB: true }), [param([2, 3, 4], rng), param([2, 5, 4], rng)]);
});

test('softmax, log-softmax, rmsNorm, swiglu', () => {
  const x = param([3, 7], rng);
  gradcheck('softmax', T.softmax, [x]);
  gradcheck('logSoftmax', T.logSoftmax, [x]);
  gradcheck('rmsNorm', (a, w) => T.rmsNorm(a, w, 1e-6), [param([4, 6], rng), param([6], rng)]);
  gradcheck('swiglu', T.swiglu, [param([3, 5], rng), param([3, 5], rng)]);
});

test('rotary embedding, both layouts', () => {
  const maxPos = 8, half = 3;
  const angles = Array.from({ length: maxPos * half }, (_, i) => Math.floor(i / half) * 0.37 * (1 + (i % half)));
  const cos = T.tensor(angles.map(Math.cos), [maxPos, half], { backend: ref, dtype: 'f64' });
  const sin = T.tensor(angles.map(Math.sin), [maxPos, half], { backend: ref, dtype: 'f64' });
  const pos = ids([0, 3, 5, 7, 1, 2], [6]);
  for (const interleaved of [true, false]) {
    gradcheck(`rope interleaved=${interleaved}`, (x) => T.rope(x, cos, sin, pos, interleaved), [param([2, 3, 2, 6], rng)]);
  }
});

test('gathers, scatters, top-k', () => {
  const table = param([5, 3], rng);
  gradcheck('embedding (repeated ids)', (w) => T.embedding(w, ids([4, 1, 1, 0, 4, 4], [2, 3])), [table]);
  gradcheck('scatterAddRows weighted', (src, w) => T.scatterAddRows(src, ids([2, 0, 2, 3]), w, 5), [param([4, 3], rng), param([4], rng)]);
  gradcheck('scatterAddRows', (src) => T.scatterAddRows(src, ids([1, 1, 0]), null, 2), [param([3, 3], rng)]);
  gradcheck('gatherLast', (x) => T.gatherLast(x, ids([2, 0, 1, 1], [2, 2])), [param([2, 3], rng)]);
  gradcheck('topk values', (x) => T.topk(x, 2).values, [param([3, 6], rng)]);
});

test('attention: causal, cached offset, GQA, Dk ≠ Dv', () => {
  // B=2, T=3 queries after 2 cached keys (S=5), H=4 query heads sharing Hkv=2, Dk=3, Dv=2.
  const q = param([2, 3, 4, 3], rng), k = param([2, 5, 2, 3], rng), v = param([2, 5, 2, 2], rng);
  gradcheck('attention causal offset gqa', (a, b, c) => T.attention(a, b, c, { scale: 0.7 }), [q, k, v]);
  gradcheck('attention full', (a, b, c) => T.attention(a, b, c, { scale: 0.5, causal: false }), [param([1, 4, 2, 3], rng), param([1, 4, 2, 3], rng), param([1, 4, 2, 3], rng)]);
  const range = ids([1, 5, 0, 4], [2, 2]);
  gradcheck('attention key ranges', (a, b, c) => T.attention(a, b, c, { scale: 0.7, keyRange: range }), [q, k, v]);
});

test('cross-entropy with ignore index', () => {
  const logits = param([2, 3, 6], rng);
  const targets = ids([1, -100, 5, 0, 2, -100], [2, 3]);
  gradcheck('crossEntropy mean', (x) => T.crossEntropy(x, targets), [logits]);
  gradcheck('crossEntropy sum', (x) => T.crossEntropy(x, targets, { reduction: 'sum' }), [logits]);
  gradcheck('crossEntropy none', (x) => T.crossEntropy(x, targets, { reduction: 'none' }), [logits]);
  // the fused head: chunks of 2 rows over 6, one ignored row; equals crossEntropy(linear(x, W))
  const flat = ids([1, -100, 5, 0, 2, 3], [6]);
  const x = param([6, 4], rng), w = param([7, 4], rng);
  gradcheck('linearCrossEntropy', (a, b) => T.mul(T.linearCrossEntropy(a, b, flat, { chunkRows: 2 }), 1.7), [x, w]);
  const fused = T.noGrad(() => T.linearCrossEntropy(x, w, flat, { chunkRows: 4 }).item());
  const plain = T.noGrad(() => T.crossEntropy(T.linear(x, w), flat).item());
  assert.ok(Math.abs(fused - plain) < 1e-12, `${fused} vs ${plain}`);
});

test('a composed graph reuses a tensor on several paths', () => {
  const x: Tensor = param([3, 4], rng);
  gradcheck('x*x + exp(x)·x', (t) => T.add(T.mul(t, t), T.mul(T.exp(t), t)), [x]);
});
