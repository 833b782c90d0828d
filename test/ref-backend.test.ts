// Tests of the reference backend: small hand-computed cases for the trickier kernels, plus
// finite-difference checks of the backward kernels (the reference is what gradient checks use).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RefBackend } from '../src/backend/ref/ref.js';
import type { AttentionArgs, DType, Storage, UnaryOp } from '../src/backend/backend.js';

const be = new RefBackend();
const f64 = (xs: ArrayLike<number>): Storage => be.upload(xs, 'f64');
const i32 = (xs: ArrayLike<number>): Storage => be.upload(xs, 'i32');
const arr = (s: Storage): number[] => Array.from(be.read(s));

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-12, what = ''): void {
  assert.equal(actual.length, expected.length, `${what} length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    const ok = a === e || Math.abs(a - e) <= tol * Math.max(1, Math.abs(e));
    assert.ok(ok, `${what}[${i}]: got ${a}, expected ${e} (tol ${tol})\n  actual   ${Array.from(actual)}\n  expected ${Array.from(expected)}`);
  }
}

/** Deterministic pseudo-random numbers in [-1, 1). */
function rand(n: number, seed: number): number[] {
  let s = seed >>> 0 || 1;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out.push((s / 2 ** 32) * 2 - 1);
  }
  return out;
}

/** Central-difference gradient of a scalar function of a host array (mutated in place, restored). */
function numGrad(x: Float64Array, f: () => number, h = 1e-6): number[] {
  const g: number[] = [];
  for (let i = 0; i < x.length; i++) {
    const x0 = x[i];
    x[i] = x0 + h; const fp = f();
    x[i] = x0 - h; const fm = f();
    x[i] = x0;
    g.push((fp - fm) / (2 * h));
  }
  return g;
}

/** The live Float64Array behind a ref storage (HostStorage.data). */
const live = (s: Storage): Float64Array => (s as unknown as { data: Float64Array }).data;

// ---- gemm ---------------------------------------------------------------------------------------

test('gemm: transposes, leading dimensions, offsets, alpha/beta, NaN garbage with beta=0', () => {
  for (const dt of ['f32', 'f64'] as DType[]) {
    // op(A) = [[1,2,3],[4,5,6]] stored transposed (3x2) with lda=3 at offset 1
    const a = be.upload([99, 1, 4, -1, 2, 5, -1, 3, 6, -1], dt);
    // op(B) = [[7,8],[9,10],[11,12]] stored transposed (2x3) with ldb=4 at offset 2
    const b = be.upload([99, 99, 7, 9, 11, -1, 8, 10, 12, -1], dt);
    // op(A)·op(B) = [[58,64],[139,154]]
    const c = be.upload([5, NaN, NaN, 7, NaN, NaN, 8, 9], dt); // ldc=3, offset 1
    const base = { m: 2, n: 2, k: 3, a, aOffset: 1, lda: 3, strideA: 0, b, bOffset: 2, ldb: 4, strideB: 0,
      c, cOffset: 1, ldc: 3, strideC: 0, batch: 1 };
    be.gemm({ ...base, transA: true, transB: true, alpha: 2, beta: 0 });
    close(arr(c), [5, 116, 128, 7, 278, 308, 8, 9], 0, `${dt} beta=0`);
    be.gemm({ ...base, transA: true, transB: true, alpha: 1, beta: 0.5 });
    close(arr(c), [5, 58 + 58, 64 + 64, 7, 139 + 139, 154 + 154, 8, 9], 0, `${dt} beta=0.5`);
  }
  // no transposes, batched with strides: [1,2]·[5,6]ᵀ = 17, [3,4]·[7,8]ᵀ = 53
  const a = f64([1, 2, 0, 3, 4, 0]); // (1x2) per batch, strideA 3
  const b = f64([5, 6, 7, 8]); // (2x1) per batch, strideB 2
  const c = f64([NaN, -1, NaN, -1]); // strideC 2
  be.gemm({ transA: false, transB: false, m: 1, n: 1, k: 2, alpha: 1, beta: 0,
    a, aOffset: 0, lda: 2, strideA: 3, b, bOffset: 0, ldb: 1, strideB: 2,
    c, cOffset: 0, ldc: 1, strideC: 2, batch: 2 });
  close(arr(c), [17, -1, 53, -1], 0, 'batched');
  // A not transposed, B transposed: [[1,2],[3,4]]·[[1,0],[1,1]]ᵀ = [[1,3],[3,7]]
  const c2 = f64([0, 0, 0, 0]);
  be.gemm({ transA: false, transB: true, m: 2, n: 2, k: 2, alpha: 1, beta: 0,
    a: f64([1, 2, 3, 4]), aOffset: 0, lda: 2, strideA: 0, b: f64([1, 0, 1, 1]), bOffset: 0, ldb: 2, strideB: 0,
    c: c2, cOffset: 0, ldc: 2, strideC: 0, batch: 1 });
  close(arr(c2), [1, 3, 3, 7], 0, 'transB only');
  // a buffer too short is an error, not a silent out-of-bounds read
  assert.throws(() => be.gemm({ transA: false, transB: false, m: 2, n: 2, k: 2, alpha: 1, beta: 0,
    a: f64([1, 2, 3]), aOffset: 0, lda: 2, strideA: 0, b: f64([1, 0, 1, 1]), bOffset: 0, ldb: 2, strideB: 0,
    c: c2, cOffset: 0, ldc: 2, strideC: 0, batch: 1 }), /gemm/);
});

// ---- elementwise ---------------------------------------------------------------------------------

test('binary: broadcasting through strides, transposed reads, rank 0, pow/max/min', () => {
  const a = f64([1, 2, 3, 4, 5, 6]); // (2,3)
  const out = be.alloc('f64', 6);
  be.binary('add', a, [3, 1], f64([10, 20, 30]), [0, 1], out, [2, 3]);
  close(arr(out), [11, 22, 33, 14, 25, 36], 0, 'row broadcast');
  be.binary('sub', a, [3, 1], f64([1, 2]), [1, 0], out, [2, 3]);
  close(arr(out), [0, 1, 2, 2, 3, 4], 0, 'column broadcast');
  // a read transposed: shape (3,2) over the (2,3) buffer
  be.binary('mul', a, [1, 3], f64([2]), [0, 0], out, [3, 2]);
  close(arr(out), [2, 8, 4, 10, 6, 12], 0, 'transposed read');
  be.binary('pow', a, [3, 1], f64([2, 0.5]), [1, 0], out, [2, 3]);
  close(arr(out), [1, 4, 9, 2, Math.sqrt(5), Math.sqrt(6)], 1e-15, 'pow');
  be.binary('max', a, [1], f64([3.5]), [0], out, [6]);
  close(arr(out), [3.5, 3.5, 3.5, 4, 5, 6], 0, 'max');
  be.binary('min', a, [1], f64([3.5]), [0], out, [6]);
  close(arr(out), [1, 2, 3, 3.5, 3.5, 3.5], 0, 'min');
  const o0 = be.alloc('f32', 1);
  be.binary('div', f64([1]), [], f64([4]), [], o0, []);
  close(arr(o0), [0.25], 0, 'rank 0');
  // rank 4 with a middle broadcast axis
  const o4 = be.alloc('f64', 8);
  be.binary('add', f64([0, 1, 2, 3]), [2, 0, 1, 0], f64([0, 10]), [0, 1, 0, 0], o4, [2, 2, 2, 1]);
  close(arr(o4), [0, 1, 10, 11, 2, 3, 12, 13], 0, 'rank 4');
  const oc = be.alloc('f32', 3);
  be.compare('le', f64([1, 2, 3]), [1], f64([2]), [0], oc, [3]);
  close(arr(oc), [1, 1, 0], 0, 'compare');
  assert.throws(() => be.binary('add', a, [3, 1], f64([1, 2]), [0, 1], out, [2, 3]), /binary/); // b too short
});

test('unaryGrad matches finite differences for every op', () => {
  const ops: UnaryOp[] = ['neg', 'exp', 'log', 'sqrt', 'rsqrt', 'square', 'abs', 'sigmoid', 'silu', 'tanh', 'relu', 'recip'];
  const xs = [0.3, 1.7, 2.5, -0.8, -2.2];
  for (const op of ops) {
    const pos = op === 'log' || op === 'sqrt' || op === 'rsqrt';
    const xv = pos ? xs.map(Math.abs) : xs;
    const x = f64(xv), dy = f64([1, -2, 0.5, 3, 1]), dx = be.alloc('f64', 5), y = be.alloc('f64', 5);
    be.unaryGrad(op, x, dy, dx);
    const dyv = arr(dy);
    const fd = numGrad(live(x), () => { be.unary(op, x, y); return arr(y).reduce((s, v, i) => s + v * dyv[i], 0); });
    close(arr(dx), fd, 1e-7, op);
  }
});

// ---- reductions ----------------------------------------------------------------------------------

test('sumAxis / maxAxis over a middle axis; argmax is the first maximum', () => {
  // x (outer 2, R 3, inner 2)
  const x = f64([1, 5, 3, 5, 3, 0, /**/ -1, -2, -1, -3, -4, -2]);
  const out = be.alloc('f64', 4), am = be.alloc('i32', 4);
  be.sumAxis(x, out, 2, 3, 2);
  close(arr(out), [7, 10, -6, -7], 0, 'sum');
  be.maxAxis(x, out, am, 2, 3, 2);
  close(arr(out), [3, 5, -1, -2], 0, 'max');
  assert.deepEqual(arr(am), [1, 0, 0, 0]);
});

// ---- row kernels ---------------------------------------------------------------------------------

test('softmax / logsoftmax, stable for large logits, and their gradients', () => {
  const x = f64([0, Math.log(2), Math.log(3), 1000, 1000, 1000 - Math.log(2)]);
  const y = be.alloc('f64', 6);
  be.softmax(x, y, 2, 3, false);
  close(arr(y), [1 / 6, 1 / 3, 1 / 2, 0.4, 0.4, 0.2], 1e-14, 'softmax');
  be.softmax(x, y, 2, 3, true);
  close(arr(y), [1 / 6, 1 / 3, 1 / 2, 0.4, 0.4, 0.2].map(Math.log), 1e-12, 'logsoftmax');
  for (const log of [false, true]) {
    const xr = f64(rand(8, 3)), w = rand(8, 4), yy = be.alloc('f64', 8), dx = be.alloc('f64', 8);
    be.softmax(xr, yy, 2, 4, log);
    be.softmaxGrad(yy, f64(w), dx, 2, 4, log);
    const fd = numGrad(live(xr), () => { be.softmax(xr, yy, 2, 4, log); return arr(yy).reduce((s, v, i) => s + v * w[i], 0); });
    close(arr(dx), fd, 1e-7, `softmaxGrad log=${log}`);
  }
});

test('rmsNorm by hand, and rmsNormGrad by finite differences (dw accumulates)', () => {
  const out = be.alloc('f64', 6), rstd = be.alloc('f64', 2);
  // row 0: mean(x²) = 4, eps 0.25 → rstd 1/sqrt(4.25);  row 1 all zeros → rstd 1/sqrt(0.25) = 2
  be.rmsNorm(f64([2, -2, 2, 0, 0, 0]), f64([1, 2, 3]), out, rstd, 2, 3, 0.25);
  const r0 = 1 / Math.sqrt(4.25);
  close(arr(rstd), [r0, 2], 1e-15, 'rstd');
  close(arr(out), [2 * r0, -4 * r0, 6 * r0, 0, 0, 0], 1e-15, 'out');

  const rows = 3, cols = 4, eps = 1e-3;
  const x = f64(rand(rows * cols, 7)), w = f64(rand(cols, 8)), dyv = rand(rows * cols, 9);
  const y = be.alloc('f64', rows * cols), rs = be.alloc('f64', rows);
  const loss = () => { be.rmsNorm(x, w, y, rs, rows, cols, eps); return arr(y).reduce((s, v, i) => s + v * dyv[i], 0); };
  loss();
  const dx = be.alloc('f64', rows * cols), dw = f64([1, 1, 1, 1]);
  be.rmsNormGrad(x, w, rs, f64(dyv), dx, dw, rows, cols);
  close(arr(dx), numGrad(live(x), loss), 1e-7, 'dx');
  close(arr(dw), numGrad(live(w), loss).map((g) => g + 1), 1e-7, 'dw (accumulated onto 1)');
});

test('swigluGrad matches finite differences', () => {
  const g = f64(rand(5, 11)), u = f64(rand(5, 12)), dyv = rand(5, 13), out = be.alloc('f64', 5);
  const loss = () => { be.swiglu(g, u, out); return arr(out).reduce((s, v, i) => s + v * dyv[i], 0); };
  const dg = be.alloc('f64', 5), du = be.alloc('f64', 5);
  be.swigluGrad(g, u, f64(dyv), dg, du);
  close(arr(dg), numGrad(live(g), loss), 1e-7, 'dGate');
  close(arr(du), numGrad(live(u), loss), 1e-7, 'dUp');
});

test('rope: both layouts by hand, inverse round-trip, position range', () => {
  // maxPos 2, D/2 = 2: position 0 is the identity; position 1 turns pair 0 by 90° and leaves pair 1.
  const cos = f64([1, 1, 0, 1]), sin = f64([0, 0, 1, 0]);
  const x = f64([1, 2, 3, 4, /**/ 1, 2, 3, 4]); // N=2, H=1, D=4
  const pos = i32([1, 0]);
  const out = be.alloc('f64', 8);
  be.rope(x, out, cos, sin, pos, 2, 1, 4, true, false);
  close(arr(out), [-2, 1, 3, 4, 1, 2, 3, 4], 0, 'interleaved'); // pair (1,2) → (-2,1)
  be.rope(x, out, cos, sin, pos, 2, 1, 4, false, false);
  close(arr(out), [-3, 2, 1, 4, 1, 2, 3, 4], 0, 'half-split'); // pair (x0,x2)=(1,3) → (-3,1)
  be.rope(x, out, cos, sin, pos, 2, 1, 4, false, true);
  close(arr(out), [3, 2, -1, 4, 1, 2, 3, 4], 0, 'half-split inverse'); // (1,3) → (3,-1)

  // round trip with real tables: N=3, H=2, D=6, maxPos=5
  const N = 3, H = 2, D = 6, maxPos = 5;
  const c: number[] = [], s: number[] = [];
  for (let p = 0; p < maxPos; p++) for (let j = 0; j < D / 2; j++) {
    const ang = p * 10000 ** (-2 * j / D);
    c.push(Math.cos(ang)); s.push(Math.sin(ang));
  }
  const xv = rand(N * H * D, 21), P = i32([4, 0, 2]);
  for (const interleaved of [false, true]) {
    const y = be.alloc('f64', N * H * D), back = be.alloc('f64', N * H * D);
    be.rope(f64(xv), y, f64(c), f64(s), P, N, H, D, interleaved, false);
    assert.ok(Math.abs(arr(y)[0] - xv[0]) > 1e-3, 'rotation did something');
    be.rope(y, back, f64(c), f64(s), P, N, H, D, interleaved, true);
    close(arr(back), xv, 1e-14, `round trip interleaved=${interleaved}`);
  }
  assert.throws(() => be.rope(x, out, cos, sin, i32([2, 0]), 2, 1, 4, true, false), /rope/);
});

// ---- indexing ------------------------------------------------------------------------------------

test('topk: descending, ties keep the lower index first', () => {
  const values = be.alloc('f32', 6), indices = be.alloc('i32', 6);
  be.topk(f64([1, 3, 3, 2, 3, /**/ 5, -1, 5, 0, 7]), values, indices, 2, 5, 3);
  assert.deepEqual(arr(values), [3, 3, 3, 7, 5, 5]);
  assert.deepEqual(arr(indices), [1, 2, 4, 4, 0, 2]);
});

test('gather / scatter rows and last axis', () => {
  const src = f64([1, 2, 3, 4, 5, 6]); // 3 rows of 2
  const out = be.alloc('f64', 4);
  be.gatherRows(src, i32([2, 0]), out, 2, 2);
  close(arr(out), [5, 6, 1, 2], 0, 'gatherRows');
  const acc = f64([1, 1, 1, 1, 1, 1]);
  be.scatterAddRows(f64([1, 2, 3, 4]), i32([1, 1]), f64([2, -1]), acc, 2, 2);
  close(arr(acc), [1, 1, 0, 1, 1, 1], 0, 'scatterAddRows'); // row1 += 2*[1,2] - [3,4]
  const rd = be.alloc('f64', 2);
  be.rowDot(src, i32([2, 0]), f64([1, 1, 0, 1]), rd, 2, 2);
  close(arr(rd), [11, 2], 0, 'rowDot');
  const g = be.alloc('f64', 4);
  be.gatherLast(src, i32([1, 0, 0, 0]), g, 2, 2, 2);
  close(arr(g), [2, 1, 3, 3], 0, 'gatherLast');
  const sl = be.alloc('f64', 4);
  be.scatterAddLast(f64([1, 2, 3, 4]), i32([1, 1, 0, 1]), sl, 2, 2, 2);
  close(arr(sl), [0, 3, 3, 4], 0, 'scatterAddLast');
  assert.throws(() => be.gatherRows(src, i32([3]), out, 1, 2), /gatherRows/);
});

// ---- attention -----------------------------------------------------------------------------------

/** Dense attention from the definition: full score matrix, -∞ mask, softmax, P·V. */
/** Independent formula: row b sees keys [first, last); causal: s ≤ t + last − T. */
function naiveAttention(a: AttentionArgs, q: number[], k: number[], v: number[], keyRange: number[] | null) {
  const { B, T, S, H, Hkv, Dk, Dv, scale } = a;
  const out = new Array<number>(B * T * H * Dv).fill(0), lse = new Array<number>(B * H * T).fill(0);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) {
    const hk = Math.floor(h * Hkv / H);
    const sc: number[] = [];
    for (let s = 0; s < S; s++) {
      let dot = 0;
      for (let d = 0; d < Dk; d++) dot += q[((b * T + t) * H + h) * Dk + d] * k[((b * S + s) * Hkv + hk) * Dk + d];
      const first = keyRange ? keyRange[2 * b] : 0, last = keyRange ? keyRange[2 * b + 1] : S;
      const masked = s < first || s >= last || (a.causal && s > t + last - T);
      sc.push(masked ? -Infinity : dot * scale);
    }
    const l = Math.log(sc.reduce((acc, x) => acc + Math.exp(x), 0));
    lse[(b * H + h) * T + t] = l;
    for (let s = 0; s < S; s++) for (let d = 0; d < Dv; d++) {
      out[((b * T + t) * H + h) * Dv + d] += Math.exp(sc[s] - l) * v[((b * S + s) * Hkv + hk) * Dv + d];
    }
  }
  return { out, lse };
}

test('attention: tiny case by hand', () => {
  // one query, keys with scores [0, ln 3] → p = [1/4, 3/4]; v = [4, 8] → 7; lse = ln 4
  const args: AttentionArgs = { q: f64([1]), k: f64([0, Math.log(3)]), v: f64([4, 8]),
    B: 1, T: 1, S: 2, H: 1, Hkv: 1, Dk: 1, Dv: 1, scale: 1, causal: true };
  const out = be.alloc('f64', 1), lse = be.alloc('f64', 1);
  be.attention(args, out, lse);
  close(arr(out), [7], 1e-14, 'out');
  close(arr(lse), [Math.log(4)], 1e-14, 'lse');
  // T = S = 2 causal: query 0 sees only key 0
  const args2: AttentionArgs = { ...args, q: f64([1, 1]), T: 2 };
  const out2 = be.alloc('f64', 2), lse2 = be.alloc('f64', 2);
  be.attention(args2, out2, lse2);
  close(arr(out2), [4, 7], 1e-14, 'causal out');
  close(arr(lse2), [0, Math.log(4)], 1e-14, 'causal lse');
});

test('attention vs the naive formula: causal offset, GQA, key ranges, fully masked rows; gradient', () => {
  const base = { B: 2, T: 3, S: 5, H: 4, Hkv: 2, Dk: 3, Dv: 2, scale: 0.7 };
  const { B, T, S, H, Hkv, Dk, Dv } = base;
  const qv = rand(B * T * H * Dk, 31).map((x) => 2 * x), kv = rand(B * S * Hkv * Dk, 32).map((x) => 2 * x);
  const vv = rand(B * S * Hkv * Dv, 33);
  // key ranges: [first, last) per row; [0, 0) masks a whole row
  for (const [causal, kl] of [[false, null], [true, null], [true, [1, 5, 0, 4]], [true, [2, 4, 0, 3]], [false, [0, 0, 1, 3]]] as [boolean, number[] | null][]) {
    const what = `causal=${causal} keyRange=${kl}`;
    const q = f64(qv), k = f64(kv), v = f64(vv);
    const args: AttentionArgs = { ...base, q, k, v, causal, keyRange: kl ? i32(kl) : null };
    const out = be.alloc('f64', B * T * H * Dv), lse = be.alloc('f64', B * H * T);
    be.attention(args, out, lse);
    const ref = naiveAttention(args, qv, kv, vv, kl);
    close(arr(out), ref.out.map((x) => (Number.isNaN(x) ? 0 : x)), 1e-12, `${what} out`);
    close(arr(lse), ref.lse, 1e-12, `${what} lse`);
    if (kl && kl[0] === kl[1]) {
      // batch row 0 is fully masked: zeros and lse -Infinity, no NaN anywhere
      assert.ok(arr(out).slice(0, T * H * Dv).every((x) => x === 0), 'masked out is 0');
      assert.ok(arr(lse).slice(0, H * T).every((x) => x === -Infinity), 'masked lse is -Infinity');
    }
    assert.ok(arr(out).every(Number.isFinite), `${what}: out finite`);

    // gradient of L = Σ out ∘ W by finite differences, for q, k, v
    const W = rand(B * T * H * Dv, 34);
    const loss = () => { be.attention(args, out, lse); return arr(out).reduce((s, x, i) => s + x * W[i], 0); };
    loss();
    const dq = be.alloc('f64', qv.length), dk = f64(new Array(kv.length).fill(NaN)), dv = be.alloc('f64', vv.length);
    be.attentionGrad(args, out, lse, f64(W), dq, dk, dv);
    close(arr(dq), numGrad(live(q), loss), 1e-7, `${what} dq`);
    close(arr(dk), numGrad(live(k), loss), 1e-7, `${what} dk`);
    close(arr(dv), numGrad(live(v), loss), 1e-7, `${what} dv`);
  }
  // f32 buffers work too, with f32 outputs
  const args32: AttentionArgs = { ...base, causal: true, q: be.upload(qv, 'f32'), k: be.upload(kv, 'f32'), v: be.upload(vv, 'f32') };
  const o32 = be.alloc('f32', B * T * H * Dv), l32 = be.alloc('f32', B * H * T);
  be.attention(args32, o32, l32);
  assert.ok(be.read(o32) instanceof Float32Array);
  close(arr(o32), naiveAttention(args32, qv, kv, vv, null).out, 1e-5, 'f32 out');
});

// ---- losses and optimizer ------------------------------------------------------------------------

test('crossEntropy with ignore index, its gradient, and out-of-range targets', () => {
  const logits = f64([0, Math.log(3), /**/ 5, 6, /**/ 1000, 1000 + Math.log(3)]);
  const losses = be.alloc('f64', 3), lse = f64([NaN, NaN, NaN]);
  be.crossEntropy(logits, i32([1, -100, 0]), losses, lse, 3, 2, -100);
  close(arr(losses), [Math.log(4 / 3), 0, Math.log(4)], 1e-14, 'losses');
  close(arr(lse), [Math.log(4), 0, 1000 + Math.log(4)], 1e-14, 'lse');
  const dl = be.alloc('f64', 6);
  be.crossEntropyGrad(logits, i32([1, -100, 0]), lse, f64([2, 5, 1]), dl, 3, 2, -100);
  close(arr(dl), [0.5, -0.5, 0, 0, 0.25 - 1, 0.75], 1e-12, 'dlogits'); // exp(x − lse) near 1000 loses ~1e-13
  assert.throws(() => be.crossEntropy(logits, i32([1, 2, 0]), losses, lse, 3, 2, -100), /row 1.*2/);
});

test('adamw: one step by hand (gradScale first, decoupled decay on the pre-update p)', () => {
  const p = f64([1, 2]), g = f64([0.5, -0.25]), m = f64([0, 0.1]), v = f64([0, 0.01]);
  const o = { lr: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.01, step: 2, gradScale: 2 };
  be.adamw(p, g, m, v, o);
  // element 0: g=1, m=0.1, v=0.01; bias corrections 1-0.81=0.19, 1-0.9801=0.0199
  // element 1: g=-0.5, m=0.09-0.05=0.04, v=0.0099+0.0025=0.0124
  close(arr(m), [0.1, 0.04], 1e-15, 'm');
  close(arr(v), [0.01, 0.0124], 1e-15, 'v');
  const upd = (mm: number, vv: number) => (mm / 0.19) / (Math.sqrt(vv / 0.0199) + 1e-8);
  close(arr(p), [1 - 0.1 * upd(0.1, 0.01) - 0.1 * 0.01 * 1, 2 - 0.1 * upd(0.04, 0.0124) - 0.1 * 0.01 * 2], 1e-14, 'p');
});

test('stridedCopy transposes and converts dtypes', () => {
  const dst = be.alloc('i32', 7);
  be.stridedCopy(f64([1, 2, 3, 4, 5, 6]), 0, [1, 3], dst, 1, [2, 1], [3, 2]);
  assert.deepEqual(arr(dst), [0, 1, 4, 2, 5, 3, 6]);
  assert.throws(() => be.stridedCopy(f64([1, 2]), 0, [1], dst, 0, [1], [3]), /stridedCopy/);
});
