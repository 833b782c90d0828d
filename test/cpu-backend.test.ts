// The native CPU backend against the reference backend, kernel by kernel, on random inputs of
// awkward sizes (1, odd, not a multiple of 16, and one large case each).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { AttentionArgs, Backend, BinaryOp, CompareOp, DType, GemmArgs, HostArray, Storage, UnaryOp } from '../src/backend/backend.js';
import { HostStorage } from '../src/backend/host.js';
import { CpuBackend, getThreads, setThreads } from '../src/backend/cpu/cpu.js';
import { RefBackend } from '../src/backend/ref/ref.js';

const cpu = new CpuBackend();
const ref = new RefBackend();

// ---- helpers --------------------------------------------------------------------------------------

let seed = 12345;
function rand(): number {
  // mulberry32
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
function randn(n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rand() * 2 - 1) * scale;
  return a;
}
function randPos(n: number, lo = 0.1, hi = 3): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + rand() * (hi - lo);
  return a;
}
function randInt(n: number, lo: number, hi: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + Math.floor(rand() * (hi - lo));
  return a;
}

/** The same data uploaded to both backends. */
function pair(data: ArrayLike<number>, dtype: DType = 'f32'): [Storage, Storage] {
  return [cpu.upload(data, dtype), ref.upload(data, dtype)];
}
function zeros(n: number, dtype: DType = 'f32'): [Storage, Storage] {
  return [cpu.alloc(dtype, n), ref.alloc(dtype, n)];
}

/** ‖a − b‖ / ‖b‖ over the finite entries; non-finite entries must match exactly. */
function relErr(a: HostArray, b: HostArray): number {
  assert.equal(a.length, b.length, 'length');
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i], y = b[i];
    if (!Number.isFinite(y) || !Number.isFinite(x)) {
      assert.ok(Object.is(x, y) || (Number.isNaN(x) && Number.isNaN(y)), `entry ${i}: ${x} vs ${y}`);
      continue;
    }
    num += (x - y) * (x - y);
    den += y * y;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

function close(what: string, c: Storage, r: Storage, tol = 1e-5): void {
  const e = relErr(cpu.read(c), ref.read(r));
  assert.ok(e <= tol, `${what}: relative error ${e.toExponential(2)} > ${tol}`);
}

function exact(what: string, c: Storage, r: Storage): void {
  assert.deepEqual(Array.from(cpu.read(c)), Array.from(ref.read(r)), what);
}

/** Runs the same kernel call on both backends; args built per backend from pairs. */
function both(f: (b: Backend, pick: <T>(p: [T, T]) => T) => void): void {
  f(cpu, (p) => p[0]);
  f(ref, (p) => p[1]);
}

// ---- memory ---------------------------------------------------------------------------------------

test('alloc / upload / read / fill', () => {
  const a = cpu.upload([1.5, -2.25, 3], 'f32');
  assert.equal(a.dtype, 'f32');
  assert.deepEqual(Array.from(cpu.read(a)), [1.5, -2.25, 3]);
  const i = cpu.upload([1, -7, 2 ** 31 + 5], 'i32');
  assert.deepEqual(Array.from(cpu.read(i)), Array.from(ref.read(ref.upload([1, -7, 2 ** 31 + 5], 'i32'))));
  const z = cpu.alloc('f32', 17);
  assert.ok(cpu.read(z).every((x) => x === 0));
  cpu.fill(z, 0.5);
  assert.ok(cpu.read(z).every((x) => x === 0.5));
  const zi = cpu.alloc('i32', 5);
  cpu.fill(zi, -3);
  assert.deepEqual(Array.from(cpu.read(zi)), [-3, -3, -3, -3, -3]);
  assert.equal(cpu.alloc('f32', 0).length, 0);
});

test('copy converts f32 <-> i32 like the reference, and overlaps act as memmove', () => {
  const vals = [0, 1.7, -1.7, 2.5, -2.5, 1e10, -1e10, 2147483647.5, NaN, Infinity, 123456.78];
  for (const n of [1, 7, 100003]) {
    const data = Array.from({ length: n }, (_, i) => vals[i % vals.length] * (1 + (i % 3)));
    const [cs, rs] = pair(data, 'f32');
    const [ci, ri] = zeros(n + 3, 'i32');
    cpu.copy(cs, 0, ci, 2, n);
    ref.copy(rs, 0, ri, 2, n);
    exact(`f32->i32 n=${n}`, ci, ri);
    const [cf, rf] = zeros(n + 1, 'f32');
    cpu.copy(ci, 1, cf, 0, n);
    ref.copy(ri, 1, rf, 0, n);
    exact(`i32->f32 n=${n}`, cf, rf);
  }
  const [c, r] = pair(randn(50));
  cpu.copy(c, 0, c, 5, 40);
  ref.copy(r, 0, r, 5, 40);
  exact('overlapping copy', c, r);
  assert.throws(() => cpu.copy(c, 20, c, 0, 31), /cpu\.copy: src .* needs 51/);
});

test('stridedCopy: permutes, slices, broadcasts, converts', () => {
  const cases: { src: number; shape: number[]; ss: number[]; ds: number[]; so?: number; dof?: number; dst: number; conv?: boolean }[] = [
    { src: 1, shape: [], ss: [], ds: [], dst: 1 },
    { src: 1, shape: [1], ss: [1], ds: [1], dst: 1 },
    { src: 7 * 5, shape: [5, 7], ss: [1, 5], ds: [7, 1], dst: 35 }, // transpose
    { src: 3 * 5 * 7, shape: [7, 3, 5], ss: [1, 35, 7], ds: [15, 5, 1], dst: 105 }, // permute (3,5,7) -> (7,3,5)
    { src: 13, shape: [4, 13], ss: [0, 1], ds: [13, 1], dst: 52 }, // broadcast rows
    { src: 100, shape: [3, 9], ss: [20, 2], ds: [9, 1], so: 3, dst: 30, dof: 3 }, // strided slice
    { src: 720, shape: [2, 3, 4, 5, 6], ss: [360, 1, 3, 12, 60], ds: [360, 120, 30, 6, 1], dst: 720 }, // rank 5 permute
    { src: 512 * 300, shape: [300, 512], ss: [1, 300], ds: [512, 1], dst: 512 * 300 }, // large transpose
    { src: 3 * 33 * 40, shape: [3, 40, 33], ss: [1320, 1, 40], ds: [1320, 33, 1], dst: 3960 }, // tiled transpose of the last two axes
    { src: 3 * 33 * 40, shape: [3, 40, 33], ss: [1320, 1, 40], ds: [1320, 33, 1], dst: 3960, conv: true },
    { src: 37, shape: [37], ss: [1], ds: [1], dst: 37, conv: true },
    { src: 6 * 4, shape: [4, 6], ss: [1, 4], ds: [6, 1], dst: 24, conv: true },
  ];
  for (const c of cases) {
    const data = randn(c.src, 100);
    const [cs, rs] = pair(data);
    const dt: DType = c.conv ? 'i32' : 'f32';
    const [cd, rd] = zeros(c.dst + (c.dof ?? 0), dt);
    ref.stridedCopy(rs, c.so ?? 0, c.ss, rd, c.dof ?? 0, c.ds, c.shape);
    cpu.stridedCopy(cs, c.so ?? 0, c.ss, cd, c.dof ?? 0, c.ds, c.shape);
    exact(`stridedCopy shape [${c.shape}]`, cd, rd);
    if (c.conv) {
      // and back i32 -> f32
      const [cb, rb] = zeros(c.dst);
      cpu.stridedCopy(cd, 0, [1], cb, 0, [1], [c.dst]);
      ref.stridedCopy(rd, 0, [1], rb, 0, [1], [c.dst]);
      exact('i32->f32', cb, rb);
    }
  }
  // destination written twice (stride 0): last write wins
  const [cs, rs] = pair([1, 2, 3, 4]);
  const [cd, rd] = zeros(2);
  cpu.stridedCopy(cs, 0, [2, 1], cd, 0, [1, 0], [2, 2]);
  ref.stridedCopy(rs, 0, [2, 1], rd, 0, [1, 0], [2, 2]);
  exact('dst stride 0', cd, rd);
  // overlapping destination offsets without a zero stride
  const [cs2, rs2] = pair(randn(12));
  const [cd2, rd2] = zeros(8);
  cpu.stridedCopy(cs2, 0, [4, 1], cd2, 0, [2, 1], [3, 4]);
  ref.stridedCopy(rs2, 0, [4, 1], rd2, 0, [2, 1], [3, 4]);
  exact('overlapping dst', cd2, rd2);
  // in place (src aliases dst): transpose a square
  const [ca, ra] = pair(randn(64));
  cpu.stridedCopy(ca, 0, [1, 8], ca, 0, [8, 1], [8, 8]);
  ref.stridedCopy(ra, 0, [1, 8], ra, 0, [8, 1], [8, 8]);
  exact('in-place transpose', ca, ra);
  assert.throws(() => cpu.stridedCopy(cs, 0, [1], cd, 0, [1], [3]), /cpu\.stridedCopy: dst .* reaches \[0, 2\], buffer has 2/);
});

// ---- gemm -----------------------------------------------------------------------------------------

function gemmCase(m: number, n: number, k: number, transA: boolean, transB: boolean, batch = 1,
  opts: { alpha?: number; beta?: number; pad?: number; tol?: number } = {}): void {
  const pad = opts.pad ?? 0;
  const [aRows, aCols] = transA ? [k, m] : [m, k];
  const [bRows, bCols] = transB ? [n, k] : [k, n];
  const lda = Math.max(1, aCols) + pad, ldb = Math.max(1, bCols) + pad, ldc = Math.max(1, n) + pad;
  const strideA = aRows * lda + 3, strideB = bRows * ldb + 1, strideC = m * ldc + 2;
  const aOffset = 2, bOffset = 1, cOffset = 3;
  const A = pair(randn(aOffset + batch * strideA));
  const B = pair(randn(bOffset + batch * strideB));
  const C = pair(randn(cOffset + batch * strideC));
  both((be, p) => {
    const g: GemmArgs = {
      transA, transB, m, n, k, alpha: opts.alpha ?? 1, beta: opts.beta ?? 0,
      a: p(A), aOffset, lda, strideA, b: p(B), bOffset, ldb, strideB, c: p(C), cOffset, ldc, strideC, batch,
    };
    be.gemm(g);
  });
  close(`gemm m=${m} n=${n} k=${k} tA=${transA} tB=${transB} batch=${batch}`, C[0], C[1], opts.tol ?? 1e-5);
}

test('gemm: all transposes, awkward sizes, offsets, batches, alpha/beta', () => {
  for (const [m, n, k] of [[1, 1, 1], [7, 13, 5], [33, 17, 65], [3, 1, 40], [1, 50, 3]]) {
    for (const ta of [false, true]) for (const tb of [false, true]) gemmCase(m, n, k, ta, tb);
  }
  gemmCase(9, 11, 7, false, true, 5, { alpha: 0.5, beta: 0.75, pad: 3 });
  gemmCase(9, 11, 7, true, false, 3, { alpha: -2, beta: 1 });
  gemmCase(4, 6, 0, false, false, 2, { beta: 0.5 }); // k = 0: C = beta C
  gemmCase(64, 48, 40, false, true, 24); // many small: parallel over the batch
  gemmCase(200, 136, 257, true, false, 1, { tol: 2e-5 }); // large
  // a single row or column (the matrix-vector path), padded, with alpha and beta
  for (const ta of [false, true]) for (const tb of [false, true]) {
    gemmCase(1, 13, 9, ta, tb, 2, { alpha: 0.5, beta: 0.75, pad: 2 });
    gemmCase(11, 1, 9, ta, tb, 2, { alpha: -1.5, beta: 0.25, pad: 3 });
    gemmCase(1, 300, 257, ta, tb, 1, { pad: 1, tol: 2e-5 });
  }
  // a few rows times a transposed matrix
  for (const m of [2, 3, 5, 12, 13]) {
    gemmCase(m, 13, 9, false, true, 2, { alpha: 0.5, beta: 0.75, pad: 2 });
    gemmCase(m, 258, 257, false, true, 1, { pad: 1, tol: 2e-5 });
  }
  // beta = 0 does not read C (NaN in C stays out), on the matrix and the matrix-vector paths
  for (const [m, n, k] of [[2, 2, 1], [1, 4, 1], [4, 1, 1]]) {
    const c = cpu.upload(new Float32Array(4).fill(NaN), 'f32');
    const a = [1, 2, 3, 4].slice(0, m * k), b = [3, 4, 5, 6].slice(0, k * n);
    cpu.gemm({ transA: false, transB: false, m, n, k, alpha: 1, beta: 0, a: cpu.upload(a, 'f32'), aOffset: 0, lda: k, strideA: 0,
      b: cpu.upload(b, 'f32'), bOffset: 0, ldb: n, strideB: 0, c, cOffset: 0, ldc: n, strideC: 0, batch: 1 });
    const want = Array.from({ length: m * n }, (_, i) => a[Math.floor(i / n)] * b[i % n]);
    assert.deepEqual(Array.from(cpu.read(c)), want, `m=${m} n=${n}`);
  }
});

test('gemm: wrong sizes throw', () => {
  const a = cpu.alloc('f32', 6), b = cpu.alloc('f32', 6), c = cpu.alloc('f32', 3);
  const g: GemmArgs = { transA: false, transB: false, m: 2, n: 2, k: 3, alpha: 1, beta: 0, a, aOffset: 0, lda: 3, strideA: 0,
    b, bOffset: 0, ldb: 2, strideB: 0, c, cOffset: 0, ldc: 2, strideC: 0, batch: 1 };
  assert.throws(() => cpu.gemm(g), /cpu\.gemm: C \(2x2.*has 3 elements, needs 4/);
  assert.throws(() => cpu.gemm({ ...g, c: cpu.alloc('f32', 4), lda: 2 }), /cpu\.gemm: lda=2 < 3/);
  assert.throws(() => cpu.gemm({ ...g, c: cpu.alloc('f32', 4), batch: 2, strideA: 6 }), /cpu\.gemm: A .* needs 12/);
  assert.throws(() => cpu.gemm({ ...g, c: cpu.alloc('i32', 4) }), /cpu\.gemm: C .* must be f32/);
});

// ---- elementwise ----------------------------------------------------------------------------------

const BINARY: BinaryOp[] = ['add', 'sub', 'mul', 'div', 'max', 'min', 'pow'];
const COMPARE: CompareOp[] = ['eq', 'ne', 'lt', 'le', 'gt', 'ge'];

interface BCase { shape: number[]; as: number[]; bs: number[]; an: number; bn: number }
const contig = (shape: number[]) => {
  const s: number[] = []; let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) { s[d] = acc; acc *= shape[d]; }
  return s;
};
const BCASES: BCase[] = [
  { shape: [1], as: [1], bs: [1], an: 1, bn: 1 },
  { shape: [], as: [], bs: [], an: 1, bn: 1 },
  { shape: [37], as: [1], bs: [1], an: 37, bn: 37 }, // same shape
  { shape: [37], as: [1], bs: [0], an: 37, bn: 1 }, // scalar b
  { shape: [5, 19], as: [19, 1], bs: [0, 0], an: 95, bn: 1 }, // scalar b, rank 2
  { shape: [7, 13], as: [0, 1], bs: [13, 1], an: 13, bn: 91 }, // a row vector
  { shape: [3, 5, 19], as: [95, 19, 1], bs: [0, 0, 1], an: 285, bn: 19 }, // b row vector along leading axes
  { shape: [11, 6], as: [6, 1], bs: [1, 0], an: 66, bn: 11 }, // b column
  { shape: [6, 11], as: [1, 6], bs: [11, 1], an: 66, bn: 66 }, // a transposed
  { shape: [2, 1, 3, 4], as: [12, 12, 4, 1], bs: [0, 0, 1, 3], an: 24, bn: 12 }, // mixed
  { shape: [300, 1024], as: [1024, 1], bs: [0, 1], an: 300 * 1024, bn: 1024 }, // large row broadcast
  { shape: [301, 777], as: [777, 1], bs: [777, 1], an: 301 * 777, bn: 301 * 777 }, // large same shape
];

test('binary: every op, broadcasting fast paths and general strides', () => {
  for (const op of BINARY) {
    for (const c of BCASES) {
      const A = pair(op === 'pow' ? randPos(c.an, 0.2, 2) : randn(c.an));
      const B = pair(op === 'pow' ? randn(c.bn, 2) : op === 'div' ? randPos(c.bn, 0.5, 2) : randn(c.bn));
      const n = c.shape.reduce((x, y) => x * y, 1);
      const O = zeros(n);
      both((be, p) => be.binary(op, p(A), c.as, p(B), c.bs, p(O), c.shape));
      if (op === 'max' || op === 'min' || op === 'add' || op === 'sub' || op === 'mul') exact(`${op} [${c.shape}]`, O[0], O[1]);
      else close(`${op} [${c.shape}]`, O[0], O[1], 1e-6);
    }
  }
  // output aliasing an input (in place, and a broadcast read of the output buffer)
  const A = pair(randn(12)), B = pair(randn(4));
  both((be, p) => be.binary('add', p(A), [4, 1], p(B), [0, 1], p(A), [3, 4]));
  exact('in-place add', A[0], A[1]);
  const X = pair(randn(12));
  both((be, p) => be.binary('mul', p(X), [4, 1], p(X), [0, 1], p(X), [3, 4]));
  exact('out aliases a broadcast input', X[0], X[1]);
  // max/min propagate NaN; +0 vs -0
  const N = pair([NaN, 1, -0, 0]), M = pair([1, NaN, 0, -0]), Q = zeros(4);
  for (const op of ['max', 'min'] as const) {
    both((be, p) => be.binary(op, p(N), [1], p(M), [1], p(Q), [4]));
    assert.deepEqual(Array.from(cpu.read(Q[0])), Array.from(ref.read(Q[1])), op);
  }
  assert.throws(() => cpu.binary('add', A[0], [1], B[0], [1], zeros(12)[0], [12]), /cpu\.binary: b .* buffer has 4/);
  assert.throws(() => cpu.binary('add', A[0], [1, 1], B[0], [0, 1], cpu.alloc('f32', 11), [3, 4]), /cpu\.binary/);
});

test('compare: every op, exact', () => {
  for (const op of COMPARE) {
    for (const c of BCASES) {
      const A = pair(randInt(c.an, -2, 3)), B = pair(randInt(c.bn, -2, 3));
      const n = c.shape.reduce((x, y) => x * y, 1);
      const O = zeros(n);
      both((be, p) => be.compare(op, p(A), c.as, p(B), c.bs, p(O), c.shape));
      exact(`${op} [${c.shape}]`, O[0], O[1]);
    }
  }
});

const UNARY: UnaryOp[] = ['neg', 'exp', 'log', 'sqrt', 'rsqrt', 'square', 'abs', 'sigmoid', 'silu', 'tanh', 'relu', 'recip'];
const positiveOnly = new Set<UnaryOp>(['log', 'sqrt', 'rsqrt']);

test('unary and unaryGrad: every op', () => {
  for (const op of UNARY) {
    for (const n of [1, 7, 45, 100003]) {
      const x = positiveOnly.has(op) ? randPos(n, 0.05, 5) : op === 'recip' ? randPos(n, 0.2, 3).map((v, i) => (i % 2 ? v : -v)) : randn(n, 6);
      const X = pair(x), O = zeros(n), DY = pair(randn(n)), DX = zeros(n);
      both((be, p) => { be.unary(op, p(X), p(O)); be.unaryGrad(op, p(X), p(DY), p(DX)); });
      close(`unary ${op} n=${n}`, O[0], O[1], 2e-6);
      close(`unaryGrad ${op} n=${n}`, DX[0], DX[1], 4e-6);
    }
  }
  // extremes: exp overflow/underflow, sigmoid saturation
  const X = pair([-1000, -90, 0, 90, 1000, -Infinity, Infinity]), O = zeros(7);
  for (const op of ['exp', 'sigmoid'] as const) {
    both((be, p) => be.unary(op, p(X), p(O)));
    close(`${op} extremes`, O[0], O[1], 1e-6);
  }
  assert.throws(() => cpu.unary('exp', X[0], cpu.alloc('f32', 6)), /cpu\.unary: length mismatch/);
});

test('affine and where', () => {
  for (const n of [1, 17, 70001]) {
    const X = pair(randn(n)), O = zeros(n);
    both((be, p) => be.affine(p(X), 0.3, -1.25, p(O)));
    close(`affine n=${n}`, O[0], O[1], 1e-6);
    const A = pair(randn(n)), B = pair(randn(n));
    for (const dt of ['f32', 'i32'] as const) {
      const Cd = pair(randInt(n, 0, 2), dt);
      both((be, p) => be.where(p(Cd), p(A), p(B), p(O)));
      exact(`where ${dt} n=${n}`, O[0], O[1]);
    }
  }
});

// ---- reductions -----------------------------------------------------------------------------------

test('sumAxis, maxAxis (argmax exact), sumSquares', () => {
  for (const [outer, R, inner] of [[1, 1, 1], [3, 7, 1], [1, 33, 5], [4, 9, 300], [5, 1, 3], [2, 3000, 1], [8, 2048, 256]]) {
    const X = pair(randInt(outer * R * inner, -4, 5).map((v, i) => v + (i % 7) * 0.25));
    const O = zeros(outer * inner), AM = zeros(outer * inner, 'i32');
    both((be, p) => be.sumAxis(p(X), p(O), outer, R, inner));
    close(`sumAxis ${outer}x${R}x${inner}`, O[0], O[1], 1e-6);
    both((be, p) => be.maxAxis(p(X), p(O), p(AM), outer, R, inner));
    exact(`maxAxis ${outer}x${R}x${inner}`, O[0], O[1]);
    exact(`argmax ${outer}x${R}x${inner}`, AM[0], AM[1]);
  }
  const Xn = pair([1, NaN, 3, 2, 5, 5]), On = zeros(2), An = zeros(2, 'i32');
  both((be, p) => be.maxAxis(p(Xn), p(On), p(An), 2, 3, 1));
  exact('maxAxis NaN', On[0], On[1]);
  exact('argmax NaN', An[0], An[1]);
  for (const n of [1, 31, 1_000_003]) {
    const X = pair(randn(n));
    const a = cpu.sumSquares(X[0]), b = ref.sumSquares(X[1]);
    assert.ok(Math.abs(a - b) <= 1e-9 * b + 1e-12, `sumSquares n=${n}: ${a} vs ${b}`);
  }
  assert.throws(() => cpu.sumAxis(pair(randn(10))[0], cpu.alloc('f32', 2), 2, 3, 2), /cpu\.sumAxis: x \(2x3x2\) has 10 elements, needs 12/);
});

// ---- row kernels ----------------------------------------------------------------------------------

const ROWS: [number, number][] = [[1, 1], [3, 7], [5, 33], [2, 250], [64, 8192]];

test('softmax / log-softmax and their gradients', () => {
  for (const log of [false, true]) {
    for (const [rows, cols] of ROWS) {
      const n = rows * cols;
      const X = pair(randn(n, 8)), Y = zeros(n), DY = pair(randn(n)), DX = zeros(n);
      both((be, p) => { be.softmax(p(X), p(Y), rows, cols, log); be.softmaxGrad(p(Y), p(DY), p(DX), rows, cols, log); });
      close(`softmax log=${log} ${rows}x${cols}`, Y[0], Y[1], 2e-6);
      close(`softmaxGrad log=${log} ${rows}x${cols}`, DX[0], DX[1], 1e-5);
    }
  }
  // masked entries (-inf) and in place
  const X = pair([0, -Infinity, 1, 2, -Infinity, -Infinity]);
  both((be, p) => be.softmax(p(X), p(X), 2, 3, false));
  close('softmax with -inf, in place', X[0], X[1], 1e-6);
});

test('rmsNorm and rmsNormGrad (dw accumulates)', () => {
  for (const [rows, cols] of [...ROWS, [2048, 256]] as [number, number][]) {
    if (rows * cols > 64 * 8192) continue;
    const n = rows * cols;
    const X = pair(randn(n, 2)), W = pair(randn(cols)), O = zeros(n), RS = zeros(rows);
    both((be, p) => be.rmsNorm(p(X), p(W), p(O), p(RS), rows, cols, 1e-6));
    close(`rmsNorm ${rows}x${cols}`, O[0], O[1], 2e-6);
    close(`rstd ${rows}x${cols}`, RS[0], RS[1], 2e-6);
    // the same rstd for both: dx = r w dy (1 - r² x² ...) is ill-conditioned in r for tiny cols
    const RS2 = pair(ref.read(RS[1]));
    const DY = pair(randn(n)), DX = zeros(n), DW = pair(randn(cols));
    both((be, p) => be.rmsNormGrad(p(X), p(W), p(RS2), p(DY), p(DX), p(DW), rows, cols));
    close(`rmsNormGrad dx ${rows}x${cols}`, DX[0], DX[1], 1e-5);
    close(`rmsNormGrad dw ${rows}x${cols}`, DW[0], DW[1], 1e-5);
  }
});

test('swiglu and swigluGrad', () => {
  for (const n of [1, 9, 1000, 300001]) {
    const G = pair(randn(n, 5)), U = pair(randn(n)), O = zeros(n), DY = pair(randn(n)), DG = zeros(n), DU = zeros(n);
    both((be, p) => { be.swiglu(p(G), p(U), p(O)); be.swigluGrad(p(G), p(U), p(DY), p(DG), p(DU)); });
    close(`swiglu n=${n}`, O[0], O[1], 2e-6);
    close(`swigluGrad dGate n=${n}`, DG[0], DG[1], 2e-6);
    close(`swigluGrad dUp n=${n}`, DU[0], DU[1], 2e-6);
  }
});

test('rope: both pairings, forward and inverse, in place', () => {
  for (const [N, H, D] of [[1, 1, 2], [5, 3, 6], [7, 2, 34], [512, 8, 32]]) {
    const maxPos = N + 9, half = D / 2;
    const cos = new Float32Array(maxPos * half), sin = new Float32Array(maxPos * half);
    for (let p = 0; p < maxPos; p++) for (let j = 0; j < half; j++) {
      const ang = p * 10000 ** (-j / half);
      cos[p * half + j] = Math.cos(ang); sin[p * half + j] = Math.sin(ang);
    }
    const C = pair(cos), S = pair(sin), P = pair(randInt(N, 0, maxPos), 'i32');
    for (const interleaved of [false, true]) for (const inverse of [false, true]) {
      const X = pair(randn(N * H * D)), O = zeros(N * H * D);
      both((be, p) => be.rope(p(X), p(O), p(C), p(S), p(P), N, H, D, interleaved, inverse));
      close(`rope ${N}x${H}x${D} inter=${interleaved} inv=${inverse}`, O[0], O[1], 1e-6);
      both((be, p) => be.rope(p(X), p(X), p(C), p(S), p(P), N, H, D, interleaved, inverse));
      close('rope in place', X[0], X[1], 1e-6);
    }
  }
  const bad = cpu.upload([0, 99], 'i32');
  assert.throws(() => cpu.rope(cpu.alloc('f32', 8), cpu.alloc('f32', 8), cpu.alloc('f32', 4), cpu.alloc('f32', 4), bad, 2, 1, 4, false, false),
    /cpu\.rope: positions\[1\] = 99 is outside \[0, 2\)/);
});

// ---- indexing -------------------------------------------------------------------------------------

test('gatherRows / scatterAddRows / rowDot', () => {
  for (const [n, rows, cols] of [[1, 1, 1], [9, 5, 7], [33, 40, 17], [2048, 8192, 256]]) {
    const src = pair(randn(rows * cols));
    const idx = pair(randInt(n, 0, rows), 'i32');
    const O = zeros(n * cols);
    both((be, p) => be.gatherRows(p(src), p(idx), p(O), n, cols));
    exact(`gatherRows ${n}x${cols}`, O[0], O[1]);
    // i32 rows (an extension of the cpu backend; the reference gathers floats only)
    const si = randInt(rows * cols, -50, 50), Oi = cpu.alloc('i32', n * cols);
    cpu.gatherRows(cpu.upload(si, 'i32'), idx[0], Oi, n, cols);
    const ix = cpu.read(idx[0]), oi = cpu.read(Oi);
    for (let i = 0; i < n; i++) for (let c = 0; c < cols; c++) assert.equal(oi[i * cols + c], si[ix[i] * cols + c]);
    const G = pair(randn(n * cols)), W = pair(randn(n));
    for (const weighted of [false, true]) {
      const acc = pair(randn(rows * cols));
      both((be, p) => be.scatterAddRows(p(G), p(idx), weighted ? p(W) : null, p(acc), n, cols));
      close(`scatterAddRows ${n}x${cols} weighted=${weighted}`, acc[0], acc[1], 1e-6);
    }
    const RD = zeros(n);
    both((be, p) => be.rowDot(p(src), p(idx), p(G), p(RD), n, cols));
    close(`rowDot ${n}x${cols}`, RD[0], RD[1], 1e-6);
  }
  const src = cpu.alloc('f32', 12), idx = cpu.upload([0, 3], 'i32');
  assert.throws(() => cpu.gatherRows(src, idx, cpu.alloc('f32', 8), 2, 4), /cpu\.gatherRows: idx\[1\] = 3 is outside \[0, 3\)/);
  assert.throws(() => cpu.scatterAddRows(cpu.alloc('f32', 8), idx, null, src, 2, 4), /cpu\.scatterAddRows: idx\[1\] = 3/);
  assert.throws(() => cpu.gatherRows(src, idx, cpu.alloc('f32', 7), 2, 4), /cpu\.gatherRows: out \(2x4\) has 7 elements, needs 8/);
});

test('moeExperts: routed SwiGLU experts in one call, against the reference', () => {
  // [n tokens, k slots, E experts, C, I]: one token (decoding), a few (up to 12 rows per expert:
  // the streamed products), a batch where some experts get many rows (sgemm) and some none,
  // head dims not a multiple of 16
  for (const [n, k, E, C, I] of [[1, 1, 1, 1, 1], [1, 4, 16, 32, 24], [5, 2, 8, 16, 12], [24, 2, 5, 40, 36], [70, 3, 6, 33, 20], [3, 2, 4, 7, 5]]) {
    const x = pair(randn(n * C));
    const idx = pair(Array.from({ length: n * k }, (_, i) => (i * 7 + Math.floor(i / k)) % Math.max(1, E - 1)), 'i32');
    const w = pair(randn(n * k));
    const mats = (rows: number, cols: number) => Array.from({ length: E }, () => pair(randn(rows * cols).map((v) => v * 0.3)));
    const gate = mats(I, C), up = mats(I, C), down = mats(C, I);
    const out = pair(randn(n * C)); // accumulates
    both((be, p) => be.moeExperts(p(x), p(idx), p(w), gate.map(p), up.map(p), down.map(p), p(out), n, k, C, I));
    close(`moeExperts n=${n} k=${k} E=${E} C=${C} I=${I}`, out[0], out[1], 2e-5);
  }
  { // out may be x itself (y = x + experts(x)): both backends read x as it was
    const n = 3, k = 2, E = 2, C = 4, I = 3;
    const xo = pair(randn(n * C)), idx = pair([0, 1, 1, 0, 0, 1], 'i32'), w = pair(randn(n * k));
    const mats = (rows: number, cols: number) => Array.from({ length: E }, () => pair(randn(rows * cols)));
    const gate = mats(I, C), up = mats(I, C), down = mats(C, I);
    both((be, p) => be.moeExperts(p(xo), p(idx), p(w), gate.map(p), up.map(p), down.map(p), p(xo), n, k, C, I));
    close('moeExperts with out = x', xo[0], xo[1], 2e-5);
  }
  const f = (n: number) => cpu.alloc('f32', n);
  const ok = [f(4), cpu.upload([0, 1], 'i32'), f(2), [f(6), f(6)], [f(6), f(6)], [f(6), f(6)], f(4), 2, 1, 2, 3] as const;
  assert.throws(() => cpu.moeExperts(ok[0], cpu.upload([0, 2], 'i32'), ok[2], ok[3], ok[4], ok[5], ok[6], 2, 1, 2, 3), /cpu\.moeExperts: idx\[1\] = 2 is outside \[0, 2\)/);
  assert.throws(() => cpu.moeExperts(ok[0], ok[1], ok[2], ok[3], [f(6)], ok[5], ok[6], 2, 1, 2, 3), /cpu\.moeExperts: 2 gate, 1 up and 2 down weights/);
  assert.throws(() => cpu.moeExperts(ok[0], ok[1], ok[2], [f(6), f(5)], ok[4], ok[5], ok[6], 2, 1, 2, 3), /cpu\.moeExperts: gate\[1\] \(3x2\) has 5 elements, needs 6/);
});

test('gatherLast / scatterAddLast / topk', () => {
  for (const [rows, cols, k] of [[1, 1, 1], [3, 7, 2], [5, 33, 8], [4, 50, 50], [2, 100, 40], [4096, 64, 6]]) {
    const X = pair(randInt(rows * cols, -5, 6).map((v, i) => v + (i % 3 === 0 ? 0 : 0.5)));
    const I = pair(randInt(rows * k, 0, cols), 'i32');
    const O = zeros(rows * k);
    both((be, p) => be.gatherLast(p(X), p(I), p(O), rows, cols, k));
    exact(`gatherLast ${rows}x${cols} k=${k}`, O[0], O[1]);
    const Sx = pair(randn(rows * k)), acc = pair(randn(rows * cols));
    both((be, p) => be.scatterAddLast(p(Sx), p(I), p(acc), rows, cols, k));
    close(`scatterAddLast ${rows}x${cols} k=${k}`, acc[0], acc[1], 1e-6);
    const V = zeros(rows * k), TI = zeros(rows * k, 'i32');
    both((be, p) => be.topk(p(X), p(V), p(TI), rows, cols, k));
    exact(`topk values ${rows}x${cols} k=${k}`, V[0], V[1]);
    exact(`topk indices ${rows}x${cols} k=${k}`, TI[0], TI[1]);
  }
  const X = pair([1, NaN, 3, 3, -Infinity, NaN, 2]), V = zeros(5), TI = zeros(5, 'i32');
  both((be, p) => be.topk(p(X), p(V), p(TI), 1, 7, 5));
  exact('topk NaN first', TI[0], TI[1]);
  assert.throws(() => cpu.topk(X[0], V[0], TI[0], 1, 7, 8), /cpu\.topk: k=8 > cols=7/);
  assert.throws(() => cpu.gatherLast(X[0], cpu.upload([7], 'i32'), V[0], 1, 7, 1), /cpu\.gatherLast: idx\[0\] = 7/);
});

// ---- attention ------------------------------------------------------------------------------------

/** kr: per-row key ranges [first, last), flattened. */
interface ACase { B: number; T: number; S: number; H: number; Hkv: number; Dk: number; Dv: number; causal: boolean; kr?: number[] }

function attentionCase(c: ACase, tol = 2e-5): { lse: Float32Array; dq: HostArray } {
  const { B, T, S, H, Hkv, Dk, Dv } = c;
  const q = pair(randn(B * T * H * Dk)), k = pair(randn(B * S * Hkv * Dk)), v = pair(randn(B * S * Hkv * Dv));
  const kr = c.kr ? pair(c.kr, 'i32') : null;
  const out = zeros(B * T * H * Dv), lse = zeros(B * H * T), dOut = pair(randn(B * T * H * Dv));
  const dq = zeros(B * T * H * Dk), dk = zeros(B * S * Hkv * Dk), dv = zeros(B * S * Hkv * Dv);
  const name = JSON.stringify(c);
  both((be, p) => {
    const a: AttentionArgs = { q: p(q), k: p(k), v: p(v), B, T, S, H, Hkv, Dk, Dv, scale: 1 / Math.sqrt(Math.max(Dk, 1)), causal: c.causal,
      keyRange: kr ? p(kr) : null };
    be.attention(a, p(out), p(lse));
    be.attentionGrad(a, p(out), p(lse), p(dOut), p(dq), p(dk), p(dv));
  });
  close(`attention out ${name}`, out[0], out[1], tol);
  close(`attention lse ${name}`, lse[0], lse[1], tol);
  close(`attention dq ${name}`, dq[0], dq[1], tol);
  close(`attention dk ${name}`, dk[0], dk[1], tol);
  close(`attention dv ${name}`, dv[0], dv[1], tol);
  for (const [w, s] of [['out', out], ['dq', dq], ['dk', dk], ['dv', dv]] as const) {
    assert.ok(cpu.read(s[0]).every((x) => !Number.isNaN(x)), `${w} has NaN ${name}`);
  }
  return { lse: cpu.read(lse[0]) as Float32Array, dq: cpu.read(dq[0]) };
}

test('attention forward/backward: causal offset, GQA, key ranges, Dk != Dv', () => {
  attentionCase({ B: 1, T: 1, S: 1, H: 1, Hkv: 1, Dk: 1, Dv: 1, causal: false });
  attentionCase({ B: 1, T: 1, S: 1, H: 1, Hkv: 1, Dk: 1, Dv: 1, causal: true });
  attentionCase({ B: 2, T: 5, S: 5, H: 2, Hkv: 2, Dk: 3, Dv: 5, causal: true });
  attentionCase({ B: 2, T: 3, S: 11, H: 4, Hkv: 2, Dk: 7, Dv: 3, causal: true }); // KV cache of 8
  attentionCase({ B: 3, T: 7, S: 9, H: 6, Hkv: 3, Dk: 5, Dv: 9, causal: false, kr: [0, 9, 2, 4, 0, 1] });
  attentionCase({ B: 3, T: 70, S: 75, H: 4, Hkv: 1, Dk: 17, Dv: 8, causal: true, kr: [3, 75, 0, 70, 9, 72] }); // left padding, several query blocks
  attentionCase({ B: 2, T: 64, S: 80, H: 4, Hkv: 2, Dk: 32, Dv: 16, causal: true, kr: [5, 64, 0, 64] }); // prefill into a cache of capacity 80
  attentionCase({ B: 1, T: 1, S: 37, H: 8, Hkv: 2, Dk: 16, Dv: 16, causal: true, kr: [3, 20] }); // decode step
  // decode steps with the heads of a kv head as the rows of one block; an empty row in the middle
  attentionCase({ B: 3, T: 1, S: 50, H: 8, Hkv: 2, Dk: 32, Dv: 16, causal: true, kr: [0, 50, 7, 7, 49, 50] });
  attentionCase({ B: 2, T: 1, S: 21, H: 6, Hkv: 1, Dk: 5, Dv: 7, causal: false, kr: [2, 21, 0, 9] });
  attentionCase({ B: 2, T: 1, S: 21, H: 3, Hkv: 3, Dk: 16, Dv: 16, causal: true }); // no grouping
  attentionCase({ B: 2, T: 130, S: 130, H: 4, Hkv: 2, Dk: 32, Dv: 32, causal: true }); // large
  attentionCase({ B: 8, T: 64, S: 64, H: 8, Hkv: 8, Dk: 16, Dv: 16, causal: true }); // many groups: direct dK/dV
});

test('attention: fully masked rows give out 0, lse -Infinity, zero gradients, no NaN', () => {
  // T > S with causal: the first T - S queries see no key; an empty range masks a whole batch row
  const { lse, dq } = attentionCase({ B: 2, T: 6, S: 4, H: 2, Hkv: 1, Dk: 4, Dv: 3, causal: true, kr: [0, 4, 2, 2] });
  const B = 2, H = 2, T = 6, Dk = 4;
  for (let h = 0; h < H; h++) {
    assert.equal(lse[(0 * H + h) * T + 0], -Infinity);
    assert.equal(lse[(0 * H + h) * T + 1], -Infinity);
    assert.ok(Number.isFinite(lse[(0 * H + h) * T + 2]));
    for (let t = 0; t < T; t++) assert.equal(lse[(1 * H + h) * T + t], -Infinity);
  }
  for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) for (let d = 0; d < Dk; d++) {
    if (t < 2) assert.equal(dq[((0 * T + t) * H + h) * Dk + d], 0);
    assert.equal(dq[((1 * T + t) * H + h) * Dk + d], 0);
  }
  void B;
});

test('attention: wrong sizes throw', () => {
  const mk = (n: number) => cpu.alloc('f32', n);
  const a: AttentionArgs = { q: mk(2 * 3 * 4 * 8), k: mk(2 * 5 * 2 * 8), v: mk(2 * 5 * 2 * 8), B: 2, T: 3, S: 5, H: 4, Hkv: 2, Dk: 8, Dv: 8, scale: 0.3, causal: true };
  cpu.attention(a, mk(2 * 3 * 4 * 8), mk(2 * 4 * 3));
  assert.throws(() => cpu.attention({ ...a, q: mk(10) }, mk(192), mk(24)), /cpu\.attention: q \(B=2, T=3, H=4, Dk=8\) has 10 elements, needs 192/);
  assert.throws(() => cpu.attention(a, mk(192), mk(23)), /cpu\.attention: lse .* needs 24/);
  assert.throws(() => cpu.attention({ ...a, Hkv: 3 }, mk(192), mk(24)), /cpu\.attention: H=4 must be a positive multiple of Hkv=3/);
  assert.throws(() => cpu.attentionGrad(a, mk(192), mk(24), mk(192), mk(192), mk(100), mk(160)), /cpu\.attentionGrad: dk .* needs 160/);
  assert.throws(() => cpu.attention({ ...a, keyRange: cpu.alloc('i32', 3) }, mk(192), mk(24)), /cpu\.attention: keyRange \(2x2\) has 3 elements/);
  assert.throws(() => cpu.attentionGrad({ ...a, vInK: true }, mk(192), mk(24), mk(192), mk(192), mk(160), mk(160)), /inference-only/);
});

test('attention with values inside the keys (MLA latent) matches a separate copy of them', () => {
  // k rows hold [latent (Dv) | rope part]; v = the latent part copied out.
  const B = 2, T = 1, S = 40, H = 8, Hkv = 1, Dk = 48, Dv = 32;
  const kv = randn(B * S * Dk);
  const vSep: number[] = [];
  for (let r = 0; r < B * S; r++) vSep.push(...kv.slice(r * Dk, r * Dk + Dv));
  const q = randn(B * T * H * Dk);
  const kr = cpu.upload([0, 33, 4, 40], 'i32');
  const base = { B, T, S, H, Hkv, Dk, Dv, scale: 0.2, causal: true, keyRange: kr };
  const outA = cpu.alloc('f32', B * T * H * Dv), lseA = cpu.alloc('f32', B * H * T);
  cpu.attention({ ...base, q: cpu.upload(q, 'f32'), k: cpu.upload(kv, 'f32'), v: cpu.upload(kv, 'f32'), vInK: true }, outA, lseA);
  const outB = cpu.alloc('f32', B * T * H * Dv), lseB = cpu.alloc('f32', B * H * T);
  cpu.attention({ ...base, q: cpu.upload(q, 'f32'), k: cpu.upload(kv, 'f32'), v: cpu.upload(vSep, 'f32') }, outB, lseB);
  assert.ok(relErr(cpu.read(outA), cpu.read(outB)) < 1e-6, 'vInK out vs a separate v');
  assert.ok(relErr(cpu.read(lseA), cpu.read(lseB)) < 1e-6, 'vInK lse vs a separate v');
  const outR = ref.alloc('f32', B * T * H * Dv), lseR = ref.alloc('f32', B * H * T);
  ref.attention({ ...base, keyRange: ref.upload([0, 33, 4, 40], 'i32'), q: ref.upload(q, 'f32'), k: ref.upload(kv, 'f32'), v: ref.upload(kv, 'f32'), vInK: true }, outR, lseR);
  close('vInK out vs ref', outA, outR, 2e-5);
  close('vInK lse vs ref', lseA, lseR, 2e-5);
});

// ---- loss / optimiser -------------------------------------------------------------------------------

test('crossEntropy and crossEntropyGrad (ignoreIndex rows)', () => {
  for (const [rows, V] of [[1, 1], [3, 7], [9, 33], [64, 8192]]) {
    const X = pair(randn(rows * V, 6));
    const tg = randInt(rows, 0, V);
    if (rows > 2) tg[1] = -100;
    const T = pair(tg, 'i32');
    const LS = zeros(rows), L = zeros(rows), DL = pair(randPos(rows)), DX = zeros(rows * V);
    both((be, p) => {
      be.crossEntropy(p(X), p(T), p(LS), p(L), rows, V, -100);
      be.crossEntropyGrad(p(X), p(T), p(L), p(DL), p(DX), rows, V, -100);
    });
    close(`crossEntropy losses ${rows}x${V}`, LS[0], LS[1], 2e-6);
    close(`crossEntropy lse ${rows}x${V}`, L[0], L[1], 2e-6);
    close(`crossEntropyGrad ${rows}x${V}`, DX[0], DX[1], 1e-5);
  }
  const X = cpu.alloc('f32', 6), T = cpu.upload([1, 3], 'i32');
  assert.throws(() => cpu.crossEntropy(X, T, cpu.alloc('f32', 2), cpu.alloc('f32', 2), 2, 3, -100),
    /cpu\.crossEntropy: target of row 1 is 3, outside \[0, 3\)/);
});

test('adamw', () => {
  for (const n of [1, 15, 300007]) {
    const P = pair(randn(n)), G = pair(randn(n)), M = pair(randn(n, 0.1)), Vv = pair(randPos(n, 0, 0.01));
    for (const step of [1, 7]) {
      const o = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step, gradScale: 0.5 };
      both((be, p) => be.adamw(p(P), p(G), p(M), p(Vv), o));
      close(`adamw p n=${n} step=${step}`, P[0], P[1], 1e-6);
      close(`adamw m n=${n}`, M[0], M[1], 1e-6);
      close(`adamw v n=${n}`, Vv[0], Vv[1], 1e-6);
    }
  }
  assert.throws(() => cpu.adamw(cpu.alloc('f32', 3), cpu.alloc('f32', 3), cpu.alloc('f32', 3), cpu.alloc('f32', 3),
    { lr: 1, beta1: 0.9, beta2: 0.9, eps: 1e-8, weightDecay: 0, step: 0, gradScale: 1 }), /cpu\.adamw: step must be an integer >= 1/);
});

// ---- dtypes, threads ------------------------------------------------------------------------------

test('f64 is refused with a clear error; wrong dtypes throw', () => {
  assert.throws(() => cpu.alloc('f64', 3), /cpu backend supports f32 and i32; use RefBackend for f64/);
  assert.throws(() => cpu.upload([1, 2], 'f64'), /use RefBackend for f64/);
  const f64 = new HostStorage('f64', new Float64Array(4));
  assert.throws(() => cpu.unary('exp', f64, cpu.alloc('f32', 4)), /cpu\.unary: x is f64: cpu backend supports f32 and i32/);
  assert.throws(() => cpu.unary('exp', cpu.alloc('i32', 4), cpu.alloc('f32', 4)), /cpu\.unary: x must be f32, got i32/);
  assert.throws(() => cpu.gatherRows(cpu.alloc('f32', 4), cpu.alloc('f32', 1), cpu.alloc('f32', 4), 1, 4), /cpu\.gatherRows: idx .* must be i32/);
});

test('setThreads: results do not depend on the thread count', () => {
  const before = getThreads();
  assert.ok(before >= 1);
  const B = 2, T = 40, S = 40, H = 4, Hkv = 2, D = 8;
  const q = cpu.upload(randn(B * T * H * D), 'f32'), k = cpu.upload(randn(B * S * Hkv * D), 'f32'), v = cpu.upload(randn(B * S * Hkv * D), 'f32');
  const a: AttentionArgs = { q, k, v, B, T, S, H, Hkv, Dk: D, Dv: D, scale: 0.35, causal: true };
  const x = cpu.upload(randn(512 * 256), 'f32');
  const run = () => {
    const out = cpu.alloc('f32', B * T * H * D), lse = cpu.alloc('f32', B * H * T);
    cpu.attention(a, out, lse);
    const sm = cpu.alloc('f32', 512 * 256);
    cpu.softmax(x, sm, 512, 256, false);
    return [...cpu.read(out), ...cpu.read(lse), ...cpu.read(sm)];
  };
  try {
    assert.equal(setThreads(1), 1);
    const one = run();
    setThreads(2);
    assert.deepEqual(run(), one);
    assert.throws(() => setThreads(0), /positive integer/);
  } finally {
    setThreads(before);
  }
});
