// The reference backend: plain TypeScript loops, obviously correct rather than fast.
//
// Every native kernel is tested against this one, and gradient checks run on it in float64.
// All arithmetic is done in JS numbers (float64) and stored into the output's typed array,
// so f64 buffers give float64 results end to end and f32 buffers round once per stored value.
// Float kernels accept f32 or f64 buffers (mixing is allowed: each output keeps its own dtype);
// index buffers must be i32. Sizes are checked wherever a mistake would silently read or write
// the wrong elements.
import type {
  AdamWStep, AttentionArgs, Backend, BinaryOp, CompareOp, DType, GemmArgs, HostArray, Storage, UnaryOp,
} from '../backend.js';
import { HostStorage, host, hostArray } from '../host.js';
import { kernelChecks, product } from '../checks.js';

type FloatArray = Float32Array | Float64Array;

// ---- argument checks ----------------------------------------------------------------------------

const checks = kernelChecks('ref');
// An explicitly typed `never` function, so that TypeScript narrows after calls to it.
const fail: (kernel: string, msg: string) => never = checks.fail;
const { checkCount, sameLength } = checks;

/** The float array behind s, checking it holds at least `need` elements. */
function fbuf(kernel: string, what: string, s: Storage, need?: number): FloatArray {
  const d = host(s);
  if (!(d instanceof Float32Array || d instanceof Float64Array)) {
    fail(kernel, `${what} must be f32 or f64, got ${s.dtype}`);
  }
  if (need !== undefined && d.length < need) fail(kernel, `${what} has ${d.length} elements, needs ${need}`);
  return d;
}

/** The i32 array behind s, checking it holds at least `need` elements. */
function ibuf(kernel: string, what: string, s: Storage, need?: number): Int32Array {
  const d = host(s);
  if (!(d instanceof Int32Array)) fail(kernel, `${what} must be i32, got ${s.dtype}`);
  if (need !== undefined && d.length < need) fail(kernel, `${what} has ${d.length} elements, needs ${need}`);
  return d;
}

/** Any host array, checking it holds at least `need` elements. */
function abuf(kernel: string, what: string, s: Storage, need?: number): HostArray {
  const d = host(s);
  if (need !== undefined && d.length < need) fail(kernel, `${what} has ${d.length} elements, needs ${need}`);
  return d;
}

function checkIndex(kernel: string, what: string, pos: number, value: number, limit: number): void {
  if (!(value >= 0 && value < limit)) fail(kernel, `${what}[${pos}] = ${value} is outside [0, ${limit})`);
}

/** Lowest and highest element offset reachable through (shape, strides) from offset. */
function span(offset: number, strides: readonly number[], shape: readonly number[]): [number, number] {
  let lo = offset, hi = offset;
  for (let d = 0; d < shape.length; d++) {
    const ext = (shape[d] - 1) * strides[d];
    if (ext < 0) lo += ext; else hi += ext;
  }
  return [lo, hi];
}

function checkStrided(kernel: string, what: string, s: Storage, offset: number,
  strides: readonly number[], shape: readonly number[]): void {
  if (strides.length !== shape.length) fail(kernel, `${what} strides [${strides}] do not match shape rank ${shape.length} ([${shape}])`);
  for (const x of strides) if (!Number.isInteger(x)) fail(kernel, `${what} strides [${strides}] must be integers`);
  if (product(shape) === 0) return;
  const [lo, hi] = span(offset, strides, shape);
  if (lo < 0 || hi >= s.length) {
    fail(kernel, `${what} (offset ${offset}, strides [${strides}], shape [${shape}]) reaches [${lo}, ${hi}], buffer has ${s.length} elements`);
  }
}

/**
 * Calls f(flat, offA, offB) for every index vector over shape in row-major order, where
 * offA/offB are Σ i_d·stridesA_d / Σ i_d·stridesB_d.
 */
function forEachIndex(shape: readonly number[], sa: readonly number[], sb: readonly number[],
  f: (flat: number, offA: number, offB: number) => void): void {
  const rank = shape.length;
  const total = product(shape);
  if (total === 0) return;
  const idx = new Array<number>(rank).fill(0);
  let offA = 0, offB = 0;
  for (let flat = 0; flat < total; flat++) {
    f(flat, offA, offB);
    // increment the index vector (odometer), innermost axis fastest
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      offA += sa[d];
      offB += sb[d];
      if (idx[d] < shape[d]) break;
      offA -= sa[d] * shape[d];
      offB -= sb[d] * shape[d];
      idx[d] = 0;
    }
  }
}

/** When an input aliases the output, read from a snapshot so writes cannot feed back. */
function unalias<T extends HostArray>(input: T, out: HostArray): T {
  return (input as HostArray) === out ? (input.slice() as T) : input;
}

// ---- scalar math ---------------------------------------------------------------------------------

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

function binaryOp(op: BinaryOp): (a: number, b: number) => number {
  switch (op) {
    case 'add': return (a, b) => a + b;
    case 'sub': return (a, b) => a - b;
    case 'mul': return (a, b) => a * b;
    case 'div': return (a, b) => a / b;
    case 'max': return (a, b) => (a !== a || b !== b ? NaN : Math.max(a, b));
    case 'min': return (a, b) => (a !== a || b !== b ? NaN : Math.min(a, b));
    case 'pow': return (a, b) => a ** b;
    default: throw new Error(`ref.binary: unknown op '${op as string}'`);
  }
}

function compareOp(op: CompareOp): (a: number, b: number) => boolean {
  switch (op) {
    case 'eq': return (a, b) => a === b;
    case 'ne': return (a, b) => a !== b;
    case 'lt': return (a, b) => a < b;
    case 'le': return (a, b) => a <= b;
    case 'gt': return (a, b) => a > b;
    case 'ge': return (a, b) => a >= b;
    default: throw new Error(`ref.compare: unknown op '${op as string}'`);
  }
}

function unaryFn(op: UnaryOp): (x: number) => number {
  switch (op) {
    case 'neg': return (x) => -x;
    case 'exp': return (x) => Math.exp(x);
    case 'log': return (x) => Math.log(x);
    case 'sqrt': return (x) => Math.sqrt(x);
    case 'rsqrt': return (x) => 1 / Math.sqrt(x);
    case 'square': return (x) => x * x;
    case 'abs': return (x) => Math.abs(x);
    case 'sigmoid': return (x) => sigmoid(x);
    case 'silu': return (x) => x * sigmoid(x);
    case 'tanh': return (x) => Math.tanh(x);
    case 'relu': return (x) => (x > 0 ? x : 0);
    case 'recip': return (x) => 1 / x;
    default: throw new Error(`ref.unary: unknown op '${op as string}'`);
  }
}

/** f'(x). */
function unaryDeriv(op: UnaryOp): (x: number) => number {
  switch (op) {
    case 'neg': return () => -1;
    case 'exp': return (x) => Math.exp(x);
    case 'log': return (x) => 1 / x;
    case 'sqrt': return (x) => 0.5 / Math.sqrt(x);
    case 'rsqrt': return (x) => -0.5 * x ** -1.5;
    case 'square': return (x) => 2 * x;
    case 'abs': return (x) => Math.sign(x);
    case 'sigmoid': return (x) => { const s = sigmoid(x); return s * (1 - s); };
    case 'silu': return (x) => { const s = sigmoid(x); return s * (1 + x * (1 - s)); };
    case 'tanh': return (x) => { const t = Math.tanh(x); return 1 - t * t; };
    case 'relu': return (x) => (x > 0 ? 1 : 0);
    case 'recip': return (x) => -1 / (x * x);
    default: throw new Error(`ref.unaryGrad: unknown op '${op as string}'`);
  }
}

// ---- attention helpers ---------------------------------------------------------------------------

interface AttnViews {
  q: FloatArray; k: FloatArray; v: FloatArray; keyRange: Int32Array | null; group: number;
  /** Where value (b, s, hk) starts, and its row layout (separate v, or inside k). */
  vAt: (b: number, s: number, hk: number) => number;
}

function attnViews(kernel: string, a: AttentionArgs): AttnViews {
  const { B, T, S, H, Hkv, Dk, Dv } = a;
  for (const [what, n] of Object.entries({ B, T, S, H, Hkv, Dk, Dv })) checkCount(kernel, what, n);
  if (Hkv <= 0 || H % Hkv !== 0) fail(kernel, `H=${H} must be a positive multiple of Hkv=${Hkv}`);
  const q = fbuf(kernel, 'q', a.q, B * T * H * Dk);
  const k = fbuf(kernel, 'k', a.k, B * S * Hkv * Dk);
  if (a.vInK && Dv > Dk) fail(kernel, `values inside keys need Dv=${Dv} <= Dk=${Dk}`);
  const v = a.vInK ? k : fbuf(kernel, 'v', a.v, B * S * Hkv * Dv);
  const keyRange = a.keyRange ? ibuf(kernel, 'keyRange', a.keyRange, 2 * B) : null;
  const vAt = a.vInK
    ? (b: number, s: number, hk: number) => ((b * S + s) * Hkv + hk) * Dk
    : (b: number, s: number, hk: number) => ((b * S + s) * Hkv + hk) * Dv;
  return { q, k, v, keyRange, group: H / Hkv, vAt };
}

/** The keys query t of batch row b may see: [from, to). */
function visibleKeys(a: AttentionArgs, keyRange: Int32Array | null, b: number, t: number): { from: number; to: number } {
  const clamp = (x: number): number => Math.min(Math.max(x, 0), a.S);
  const from = keyRange ? clamp(keyRange[2 * b]) : 0;
  const last = keyRange ? clamp(keyRange[2 * b + 1]) : a.S;
  const to = a.causal ? Math.min(last, t + (last - a.T) + 1) : last;
  return { from, to: Math.max(from, to) };
}

// ---- the backend ---------------------------------------------------------------------------------

export class RefBackend implements Backend {
  readonly name = 'ref';
  readonly dtypes: readonly DType[] = ['f32', 'f64', 'i32'];

  // ---- memory ----

  empty(dtype: DType, length: number): Storage {
    return this.alloc(dtype, length);
  }

  alloc(dtype: DType, length: number): Storage {
    checkCount('alloc', 'length', length);
    return new HostStorage(dtype, hostArray(dtype, length));
  }

  upload(data: ArrayLike<number>, dtype: DType): Storage {
    const arr = hostArray(dtype, data.length);
    for (let i = 0; i < data.length; i++) arr[i] = data[i];
    return new HostStorage(dtype, arr);
  }

  read(s: Storage): HostArray {
    return host(s).slice();
  }

  fill(s: Storage, value: number): void {
    host(s).fill(value);
  }

  copy(src: Storage, srcOffset: number, dst: Storage, dstOffset: number, n: number): void {
    checkCount('copy', 'n', n);
    checkCount('copy', 'srcOffset', srcOffset);
    checkCount('copy', 'dstOffset', dstOffset);
    const s = abuf('copy', 'src', src, srcOffset + n);
    const d = abuf('copy', 'dst', dst, dstOffset + n);
    const from = s === d ? s.slice(srcOffset, srcOffset + n) : s.subarray(srcOffset, srcOffset + n);
    for (let i = 0; i < n; i++) d[dstOffset + i] = from[i];
  }

  stridedCopy(
    src: Storage, srcOffset: number, srcStrides: readonly number[],
    dst: Storage, dstOffset: number, dstStrides: readonly number[],
    shape: readonly number[],
  ): void {
    for (const d of shape) checkCount('stridedCopy', 'shape entry', d);
    checkStrided('stridedCopy', 'src', src, srcOffset, srcStrides, shape);
    checkStrided('stridedCopy', 'dst', dst, dstOffset, dstStrides, shape);
    const d = host(dst);
    const s = unalias(host(src), d);
    forEachIndex(shape, srcStrides, dstStrides, (_, so, dO) => { d[dstOffset + dO] = s[srcOffset + so]; });
  }

  // ---- dense linear algebra ----

  gemm(g: GemmArgs): void {
    const { transA, transB, m, n, k, alpha, beta, batch, lda, ldb, ldc } = g;
    for (const [what, x] of Object.entries({ m, n, k, batch, aOffset: g.aOffset, bOffset: g.bOffset, cOffset: g.cOffset })) {
      checkCount('gemm', what, x);
    }
    // Stored shapes (row-major): A is (m, k) or, transposed, (k, m); B is (k, n) or (n, k); C is (m, n).
    const [aRows, aCols] = transA ? [k, m] : [m, k];
    const [bRows, bCols] = transB ? [n, k] : [k, n];
    if (lda < Math.max(1, aCols)) fail('gemm', `lda=${lda} < ${aCols} (stored A is ${aRows}x${aCols})`);
    if (ldb < Math.max(1, bCols)) fail('gemm', `ldb=${ldb} < ${bCols} (stored B is ${bRows}x${bCols})`);
    if (ldc < Math.max(1, n)) fail('gemm', `ldc=${ldc} < n=${n}`);
    const extent = (rows: number, cols: number, ld: number, stride: number) =>
      rows === 0 || cols === 0 || batch === 0 ? 0 : (batch - 1) * stride + (rows - 1) * ld + cols;
    const A = fbuf('gemm', `A (${aRows}x${aCols}, lda ${lda}, offset ${g.aOffset}, stride ${g.strideA}, batch ${batch})`,
      g.a, g.aOffset + extent(aRows, aCols, lda, g.strideA));
    const Bm = fbuf('gemm', `B (${bRows}x${bCols}, ldb ${ldb}, offset ${g.bOffset}, stride ${g.strideB}, batch ${batch})`,
      g.b, g.bOffset + extent(bRows, bCols, ldb, g.strideB));
    const C = fbuf('gemm', `C (${m}x${n}, ldc ${ldc}, offset ${g.cOffset}, stride ${g.strideC}, batch ${batch})`,
      g.c, g.cOffset + extent(m, n, ldc, g.strideC));
    if (g.strideA < 0 || g.strideB < 0 || g.strideC < 0) fail('gemm', 'batch strides must be non-negative');
    const Ar = unalias(A, C), Br = unalias(Bm, C);
    for (let bt = 0; bt < batch; bt++) {
      const a0 = g.aOffset + bt * g.strideA, b0 = g.bOffset + bt * g.strideB, c0 = g.cOffset + bt * g.strideC;
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let acc = 0;
          for (let p = 0; p < k; p++) {
            const av = transA ? Ar[a0 + p * lda + i] : Ar[a0 + i * lda + p];
            const bv = transB ? Br[b0 + j * ldb + p] : Br[b0 + p * ldb + j];
            acc += av * bv;
          }
          const ci = c0 + i * ldc + j;
          C[ci] = beta === 0 ? alpha * acc : alpha * acc + beta * C[ci];
        }
      }
    }
  }

  // ---- elementwise ----

  binary(op: BinaryOp, a: Storage, aStrides: readonly number[], b: Storage, bStrides: readonly number[],
    out: Storage, shape: readonly number[]): void {
    const f = binaryOp(op);
    const o = this.elementwiseSetup('binary', a, aStrides, b, bStrides, out, shape);
    const A = unalias(fbuf('binary', 'a', a), o), Bv = unalias(fbuf('binary', 'b', b), o);
    forEachIndex(shape, aStrides, bStrides, (i, ia, ib) => { o[i] = f(A[ia], Bv[ib]); });
  }

  compare(op: CompareOp, a: Storage, aStrides: readonly number[], b: Storage, bStrides: readonly number[],
    out: Storage, shape: readonly number[]): void {
    const f = compareOp(op);
    const o = this.elementwiseSetup('compare', a, aStrides, b, bStrides, out, shape);
    const A = unalias(fbuf('compare', 'a', a), o), Bv = unalias(fbuf('compare', 'b', b), o);
    forEachIndex(shape, aStrides, bStrides, (i, ia, ib) => { o[i] = f(A[ia], Bv[ib]) ? 1 : 0; });
  }

  private elementwiseSetup(kernel: string, a: Storage, aStrides: readonly number[], b: Storage,
    bStrides: readonly number[], out: Storage, shape: readonly number[]): FloatArray {
    if (shape.length > 8) fail(kernel, `rank ${shape.length} > 8`);
    for (const d of shape) checkCount(kernel, 'shape entry', d);
    checkStrided(kernel, 'a', a, 0, aStrides, shape);
    checkStrided(kernel, 'b', b, 0, bStrides, shape);
    const total = product(shape);
    return fbuf(kernel, `out (shape [${shape}])`, out, total);
  }

  unary(op: UnaryOp, x: Storage, out: Storage): void {
    const f = unaryFn(op);
    const n = sameLength('unary', ['x', x], ['out', out]);
    const X = fbuf('unary', 'x', x), O = fbuf('unary', 'out', out);
    for (let i = 0; i < n; i++) O[i] = f(X[i]);
  }

  unaryGrad(op: UnaryOp, x: Storage, dy: Storage, dx: Storage): void {
    const f = unaryDeriv(op);
    const n = sameLength('unaryGrad', ['x', x], ['dy', dy], ['dx', dx]);
    const X = fbuf('unaryGrad', 'x', x), DY = fbuf('unaryGrad', 'dy', dy), DX = fbuf('unaryGrad', 'dx', dx);
    for (let i = 0; i < n; i++) DX[i] = DY[i] * f(X[i]);
  }

  affine(x: Storage, alpha: number, beta: number, out: Storage): void {
    const n = sameLength('affine', ['x', x], ['out', out]);
    const X = fbuf('affine', 'x', x), O = fbuf('affine', 'out', out);
    for (let i = 0; i < n; i++) O[i] = alpha * X[i] + beta;
  }

  where(cond: Storage, a: Storage, b: Storage, out: Storage): void {
    const n = sameLength('where', ['cond', cond], ['a', a], ['b', b], ['out', out]);
    const C = host(cond), A = fbuf('where', 'a', a), Bv = fbuf('where', 'b', b), O = fbuf('where', 'out', out);
    for (let i = 0; i < n; i++) O[i] = C[i] !== 0 ? A[i] : Bv[i];
  }

  // ---- reductions ----

  sumAxis(x: Storage, out: Storage, outer: number, R: number, inner: number): void {
    for (const [w, v] of Object.entries({ outer, R, inner })) checkCount('sumAxis', w, v);
    const X = fbuf('sumAxis', `x (${outer}x${R}x${inner})`, x, outer * R * inner);
    const O = fbuf('sumAxis', `out (${outer}x${inner})`, out, outer * inner);
    const Xr = unalias(X, O);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        let acc = 0;
        for (let r = 0; r < R; r++) acc += Xr[(o * R + r) * inner + i];
        O[o * inner + i] = acc;
      }
    }
  }

  maxAxis(x: Storage, out: Storage, argmax: Storage | null, outer: number, R: number, inner: number): void {
    for (const [w, v] of Object.entries({ outer, R, inner })) checkCount('maxAxis', w, v);
    if (R === 0 && outer * inner > 0) fail('maxAxis', 'cannot take the max over an empty axis (R=0)');
    const X = fbuf('maxAxis', `x (${outer}x${R}x${inner})`, x, outer * R * inner);
    const O = fbuf('maxAxis', `out (${outer}x${inner})`, out, outer * inner);
    const AM = argmax ? ibuf('maxAxis', `argmax (${outer}x${inner})`, argmax, outer * inner) : null;
    const Xr = unalias(X, O);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        let best = Xr[o * R * inner + i], bi = 0;
        for (let r = 1; r < R && best === best; r++) {
          const v = Xr[(o * R + r) * inner + i];
          // strictly greater keeps the first maximum; a NaN wins (and propagates) at its first position
          if (v > best || v !== v) { best = v; bi = r; }
        }
        O[o * inner + i] = best;
        if (AM) AM[o * inner + i] = bi;
      }
    }
  }

  sumSquares(x: Storage): number {
    const X = fbuf('sumSquares', 'x', x);
    let acc = 0;
    for (let i = 0; i < X.length; i++) acc += X[i] * X[i];
    return acc;
  }

  // ---- row kernels ----

  softmax(x: Storage, out: Storage, rows: number, cols: number, log: boolean): void {
    const n = this.rowsCheck('softmax', rows, cols);
    const X = fbuf('softmax', `x (${rows}x${cols})`, x, n), O = fbuf('softmax', `out (${rows}x${cols})`, out, n);
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      let mx = -Infinity;
      for (let c = 0; c < cols; c++) mx = Math.max(mx, X[base + c]);
      let sum = 0;
      for (let c = 0; c < cols; c++) sum += Math.exp(X[base + c] - mx);
      if (log) {
        const lse = mx + Math.log(sum);
        for (let c = 0; c < cols; c++) O[base + c] = X[base + c] - lse;
      } else {
        // read every input of the row before writing (out may alias x)
        const e = new Float64Array(cols);
        for (let c = 0; c < cols; c++) e[c] = Math.exp(X[base + c] - mx) / sum;
        for (let c = 0; c < cols; c++) O[base + c] = e[c];
      }
    }
  }

  softmaxGrad(y: Storage, dy: Storage, dx: Storage, rows: number, cols: number, log: boolean): void {
    const n = this.rowsCheck('softmaxGrad', rows, cols);
    const Y = fbuf('softmaxGrad', `y (${rows}x${cols})`, y, n);
    const DY = fbuf('softmaxGrad', `dy (${rows}x${cols})`, dy, n);
    const DX = fbuf('softmaxGrad', `dx (${rows}x${cols})`, dx, n);
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      let s = 0;
      for (let c = 0; c < cols; c++) s += log ? DY[base + c] : DY[base + c] * Y[base + c];
      for (let c = 0; c < cols; c++) {
        const i = base + c;
        DX[i] = log ? DY[i] - Math.exp(Y[i]) * s : Y[i] * (DY[i] - s);
      }
    }
  }

  rmsNorm(x: Storage, w: Storage, out: Storage, rstd: Storage, rows: number, cols: number, eps: number): void {
    const n = this.rowsCheck('rmsNorm', rows, cols);
    const X = fbuf('rmsNorm', `x (${rows}x${cols})`, x, n);
    const W = fbuf('rmsNorm', `w (${cols})`, w, cols);
    const O = fbuf('rmsNorm', `out (${rows}x${cols})`, out, n);
    const RS = fbuf('rmsNorm', `rstd (${rows})`, rstd, rows);
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      let ss = 0;
      for (let c = 0; c < cols; c++) ss += X[base + c] * X[base + c];
      const rs = 1 / Math.sqrt(ss / cols + eps);
      for (let c = 0; c < cols; c++) O[base + c] = X[base + c] * rs * W[c];
      RS[r] = rs;
    }
  }

  rmsNormGrad(x: Storage, w: Storage, rstd: Storage, dy: Storage, dx: Storage, dw: Storage,
    rows: number, cols: number): void {
    // y_c = x_c r w_c, r = (mean(x²)+eps)^-1/2, dr/dx_c = -r³ x_c / cols:
    //   dx_c = r w_c dy_c − (r³ x_c / cols) Σ_j dy_j w_j x_j;   dw_c += Σ_rows dy_c x_c r
    const n = this.rowsCheck('rmsNormGrad', rows, cols);
    const X = fbuf('rmsNormGrad', `x (${rows}x${cols})`, x, n);
    const W = fbuf('rmsNormGrad', `w (${cols})`, w, cols);
    const RS = fbuf('rmsNormGrad', `rstd (${rows})`, rstd, rows);
    const DY = fbuf('rmsNormGrad', `dy (${rows}x${cols})`, dy, n);
    const DX = fbuf('rmsNormGrad', `dx (${rows}x${cols})`, dx, n);
    const DW = fbuf('rmsNormGrad', `dw (${cols})`, dw, cols);
    const dwAcc = new Float64Array(cols);
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      const rs = RS[r];
      let dot = 0;
      for (let c = 0; c < cols; c++) dot += DY[base + c] * W[c] * X[base + c];
      const k = (rs * rs * rs * dot) / cols;
      for (let c = 0; c < cols; c++) {
        const xc = X[base + c], dyc = DY[base + c];
        dwAcc[c] += dyc * xc * rs;
        DX[base + c] = rs * W[c] * dyc - k * xc;
      }
    }
    for (let c = 0; c < cols; c++) DW[c] += dwAcc[c];
  }

  swiglu(gate: Storage, up: Storage, out: Storage): void {
    const n = sameLength('swiglu', ['gate', gate], ['up', up], ['out', out]);
    const G = fbuf('swiglu', 'gate', gate), U = fbuf('swiglu', 'up', up), O = fbuf('swiglu', 'out', out);
    for (let i = 0; i < n; i++) O[i] = G[i] * sigmoid(G[i]) * U[i];
  }

  swigluGrad(gate: Storage, up: Storage, dy: Storage, dGate: Storage, dUp: Storage): void {
    const n = sameLength('swigluGrad', ['gate', gate], ['up', up], ['dy', dy], ['dGate', dGate], ['dUp', dUp]);
    const G = fbuf('swigluGrad', 'gate', gate), U = fbuf('swigluGrad', 'up', up), DY = fbuf('swigluGrad', 'dy', dy);
    const DG = fbuf('swigluGrad', 'dGate', dGate), DU = fbuf('swigluGrad', 'dUp', dUp);
    for (let i = 0; i < n; i++) {
      const g = G[i], u = U[i], d = DY[i];
      const s = sigmoid(g);
      DG[i] = d * u * s * (1 + g * (1 - s));
      DU[i] = d * g * s;
    }
  }

  rope(x: Storage, out: Storage, cos: Storage, sin: Storage, positions: Storage,
    N: number, H: number, D: number, interleaved: boolean, inverse: boolean): void {
    for (const [w, v] of Object.entries({ N, H, D })) checkCount('rope', w, v);
    if (D % 2 !== 0) fail('rope', `head dim D=${D} must be even`);
    const half = D / 2;
    const n = N * H * D;
    const X = fbuf('rope', `x (${N}x${H}x${D})`, x, n), O = fbuf('rope', `out (${N}x${H}x${D})`, out, n);
    const C = fbuf('rope', 'cos', cos), Sn = fbuf('rope', 'sin', sin);
    if (half > 0 && (C.length % half !== 0 || C.length !== Sn.length)) {
      fail('rope', `cos (${C.length}) and sin (${Sn.length}) must both be (maxPos, D/2=${half}) tables`);
    }
    const maxPos = half > 0 ? C.length / half : 0;
    const P = ibuf('rope', `positions (${N})`, positions, N);
    const sign = inverse ? -1 : 1;
    for (let t = 0; t < N; t++) {
      const pos = P[t];
      if (H * half > 0) checkIndex('rope', 'positions', t, pos, maxPos);
      for (let h = 0; h < H; h++) {
        const base = (t * H + h) * D;
        for (let j = 0; j < half; j++) {
          const c = C[pos * half + j], s = sign * Sn[pos * half + j];
          const ia = interleaved ? base + 2 * j : base + j;
          const ib = interleaved ? base + 2 * j + 1 : base + j + half;
          const a = X[ia], b = X[ib];
          O[ia] = a * c - b * s;
          O[ib] = a * s + b * c;
        }
      }
    }
  }

  private rowsCheck(kernel: string, rows: number, cols: number): number {
    checkCount(kernel, 'rows', rows);
    checkCount(kernel, 'cols', cols);
    return rows * cols;
  }

  // ---- indexing ----

  gatherRows(src: Storage, idx: Storage, out: Storage, n: number, cols: number): void {
    this.rowsCheck('gatherRows', n, cols);
    const S = fbuf('gatherRows', 'src', src);
    const I = ibuf('gatherRows', `idx (${n})`, idx, n);
    const O = fbuf('gatherRows', `out (${n}x${cols})`, out, n * cols);
    const srcRows = cols > 0 ? Math.floor(S.length / cols) : Infinity;
    const Sr = unalias(S, O);
    for (let i = 0; i < n; i++) {
      const r = I[i];
      checkIndex('gatherRows', 'idx', i, r, srcRows);
      for (let c = 0; c < cols; c++) O[i * cols + c] = Sr[r * cols + c];
    }
  }

  scatterAddRows(src: Storage, idx: Storage, weights: Storage | null, out: Storage, n: number, cols: number): void {
    this.rowsCheck('scatterAddRows', n, cols);
    const S = fbuf('scatterAddRows', `src (${n}x${cols})`, src, n * cols);
    const I = ibuf('scatterAddRows', `idx (${n})`, idx, n);
    const Wt = weights ? fbuf('scatterAddRows', `weights (${n})`, weights, n) : null;
    const O = fbuf('scatterAddRows', 'out', out);
    const outRows = cols > 0 ? Math.floor(O.length / cols) : Infinity;
    const Sr = unalias(S, O);
    for (let i = 0; i < n; i++) {
      const r = I[i];
      checkIndex('scatterAddRows', 'idx', i, r, outRows);
      const wv = Wt ? Wt[i] : 1;
      for (let c = 0; c < cols; c++) O[r * cols + c] += wv * Sr[i * cols + c];
    }
  }

  moeExperts(x: Storage, idx: Storage, weights: Storage, gate: readonly Storage[], up: readonly Storage[],
    down: readonly Storage[], out: Storage, n: number, k: number, C: number, I: number): void {
    const K = 'moeExperts';
    this.rowsCheck(K, n, k);
    this.rowsCheck(K, C, I);
    const E = gate.length;
    if (up.length !== E || down.length !== E) fail(K, `${E} gate, ${up.length} up and ${down.length} down weights`);
    const O = fbuf(K, `out (${n}x${C})`, out, n * C);
    const X = unalias(fbuf(K, `x (${n}x${C})`, x, n * C), O);
    const Ix = ibuf(K, `idx (${n}x${k})`, idx, n * k);
    const Wt = fbuf(K, `weights (${n}x${k})`, weights, n * k);
    const G = gate.map((g, e) => fbuf(K, `gate[${e}] (${I}x${C})`, g, I * C));
    const U = up.map((u, e) => fbuf(K, `up[${e}] (${I}x${C})`, u, I * C));
    const D = down.map((d, e) => fbuf(K, `down[${e}] (${C}x${I})`, d, C * I));
    const h = new Float64Array(I);
    for (let t = 0; t < n; t++) {
      for (let j = 0; j < k; j++) {
        const e = Ix[t * k + j];
        checkIndex(K, 'idx', t * k + j, e, E);
        for (let i = 0; i < I; i++) {
          let g = 0, u = 0;
          for (let c = 0; c < C; c++) { g += G[e][i * C + c] * X[t * C + c]; u += U[e][i * C + c] * X[t * C + c]; }
          h[i] = (g / (1 + Math.exp(-g))) * u;
        }
        for (let c = 0; c < C; c++) {
          let y = 0;
          for (let i = 0; i < I; i++) y += D[e][c * I + i] * h[i];
          O[t * C + c] += Wt[t * k + j] * y;
        }
      }
    }
  }

  rowDot(a: Storage, idx: Storage, b: Storage, out: Storage, n: number, cols: number): void {
    this.rowsCheck('rowDot', n, cols);
    const A = fbuf('rowDot', 'a', a);
    const I = ibuf('rowDot', `idx (${n})`, idx, n);
    const Bv = fbuf('rowDot', `b (${n}x${cols})`, b, n * cols);
    const O = fbuf('rowDot', `out (${n})`, out, n);
    const aRows = cols > 0 ? Math.floor(A.length / cols) : Infinity;
    const res = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const r = I[i];
      checkIndex('rowDot', 'idx', i, r, aRows);
      let acc = 0;
      for (let c = 0; c < cols; c++) acc += A[r * cols + c] * Bv[i * cols + c];
      res[i] = acc;
    }
    for (let i = 0; i < n; i++) O[i] = res[i];
  }

  gatherLast(x: Storage, idx: Storage, out: Storage, rows: number, cols: number, k: number): void {
    this.rowsCheck('gatherLast', rows, cols);
    checkCount('gatherLast', 'k', k);
    const X = fbuf('gatherLast', `x (${rows}x${cols})`, x, rows * cols);
    const I = ibuf('gatherLast', `idx (${rows}x${k})`, idx, rows * k);
    const O = fbuf('gatherLast', `out (${rows}x${k})`, out, rows * k);
    const Xr = unalias(X, O);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < k; j++) {
        const c = I[r * k + j];
        checkIndex('gatherLast', 'idx', r * k + j, c, cols);
        O[r * k + j] = Xr[r * cols + c];
      }
    }
  }

  scatterAddLast(src: Storage, idx: Storage, out: Storage, rows: number, cols: number, k: number): void {
    this.rowsCheck('scatterAddLast', rows, cols);
    checkCount('scatterAddLast', 'k', k);
    const S = fbuf('scatterAddLast', `src (${rows}x${k})`, src, rows * k);
    const I = ibuf('scatterAddLast', `idx (${rows}x${k})`, idx, rows * k);
    const O = fbuf('scatterAddLast', `out (${rows}x${cols})`, out, rows * cols);
    const Sr = unalias(S, O);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < k; j++) {
        const c = I[r * k + j];
        checkIndex('scatterAddLast', 'idx', r * k + j, c, cols);
        O[r * cols + c] += Sr[r * k + j];
      }
    }
  }

  topk(x: Storage, values: Storage, indices: Storage, rows: number, cols: number, k: number): void {
    this.rowsCheck('topk', rows, cols);
    checkCount('topk', 'k', k);
    if (k > cols) fail('topk', `k=${k} > cols=${cols}`);
    const X = fbuf('topk', `x (${rows}x${cols})`, x, rows * cols);
    const V = fbuf('topk', `values (${rows}x${k})`, values, rows * k);
    const I = ibuf('topk', `indices (${rows}x${k})`, indices, rows * k);
    const Xr = unalias(X, V);
    for (let r = 0; r < rows; r++) {
      const order = Array.from({ length: cols }, (_, c) => c);
      // descending by value, ties by ascending index; NaN counts as the largest value (as in torch)
      const val = (c: number) => Xr[r * cols + c];
      order.sort((p, q) => {
        const vp = val(p), vq = val(q);
        const np = vp !== vp, nq = vq !== vq;
        if (np !== nq) return np ? -1 : 1;
        if (!np && vp !== vq) return vp > vq ? -1 : 1;
        return p - q;
      });
      for (let j = 0; j < k; j++) {
        V[r * k + j] = Xr[r * cols + order[j]];
        I[r * k + j] = order[j];
      }
    }
  }

  // ---- fused kernels ----

  attention(a: AttentionArgs, out: Storage, lse: Storage): void {
    const { B, T, S, H, Hkv, Dk, Dv, scale } = a;
    const { q, k, v, keyRange, group, vAt } = attnViews('attention', a);
    const O = fbuf('attention', `out (B=${B}, T=${T}, H=${H}, Dv=${Dv})`, out, B * T * H * Dv);
    const L = fbuf('attention', `lse (B=${B}, H=${H}, T=${T})`, lse, B * H * T);
    const scores = new Float64Array(S);
    const acc = new Float64Array(Dv);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        const { from, to } = visibleKeys(a, keyRange, b, t);
        for (let h = 0; h < H; h++) {
          const hk = Math.floor(h / group);
          const qBase = ((b * T + t) * H + h) * Dk;
          const oBase = ((b * T + t) * H + h) * Dv;
          if (to === from) {
            for (let d = 0; d < Dv; d++) O[oBase + d] = 0;
            L[(b * H + h) * T + t] = -Infinity;
            continue;
          }
          let mx = -Infinity;
          for (let s = from; s < to; s++) {
            const kBase = ((b * S + s) * Hkv + hk) * Dk;
            let dot = 0;
            for (let d = 0; d < Dk; d++) dot += q[qBase + d] * k[kBase + d];
            scores[s] = dot * scale;
            if (scores[s] > mx) mx = scores[s];
          }
          let sum = 0;
          acc.fill(0);
          for (let s = from; s < to; s++) {
            const p = Math.exp(scores[s] - mx);
            sum += p;
            const vBase = vAt(b, s, hk);
            for (let d = 0; d < Dv; d++) acc[d] += p * v[vBase + d];
          }
          for (let d = 0; d < Dv; d++) O[oBase + d] = acc[d] / sum;
          L[(b * H + h) * T + t] = mx + Math.log(sum);
        }
      }
    }
  }

  attentionGrad(a: AttentionArgs, out: Storage, lse: Storage, dOut: Storage,
    dq: Storage, dk: Storage, dv: Storage): void {
    const { B, T, S, H, Hkv, Dk, Dv, scale } = a;
    if (a.vInK) fail('attentionGrad', 'values read from the keys (vInK) are an inference-only layout');
    const { q, k, v, keyRange, group } = attnViews('attentionGrad', a);
    const O = fbuf('attentionGrad', `out (B=${B}, T=${T}, H=${H}, Dv=${Dv})`, out, B * T * H * Dv);
    const L = fbuf('attentionGrad', `lse (B=${B}, H=${H}, T=${T})`, lse, B * H * T);
    const DO = fbuf('attentionGrad', `dOut (B=${B}, T=${T}, H=${H}, Dv=${Dv})`, dOut, B * T * H * Dv);
    const DQ = fbuf('attentionGrad', `dq (B=${B}, T=${T}, H=${H}, Dk=${Dk})`, dq, B * T * H * Dk);
    const DK = fbuf('attentionGrad', `dk (B=${B}, S=${S}, Hkv=${Hkv}, Dk=${Dk})`, dk, B * S * Hkv * Dk);
    const DV = fbuf('attentionGrad', `dv (B=${B}, S=${S}, Hkv=${Hkv}, Dv=${Dv})`, dv, B * S * Hkv * Dv);
    // accumulate in float64, then store
    const dqAcc = new Float64Array(B * T * H * Dk);
    const dkAcc = new Float64Array(B * S * Hkv * Dk);
    const dvAcc = new Float64Array(B * S * Hkv * Dv);
    const p = new Float64Array(S);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        const { from, to } = visibleKeys(a, keyRange, b, t);
        if (to === from) continue; // fully masked: out was 0 regardless of q, k, v
        for (let h = 0; h < H; h++) {
          const hk = Math.floor(h / group);
          const qBase = ((b * T + t) * H + h) * Dk;
          const oBase = ((b * T + t) * H + h) * Dv;
          const l = L[(b * H + h) * T + t];
          // Di = Σ_d dO·O
          let Di = 0;
          for (let d = 0; d < Dv; d++) Di += DO[oBase + d] * O[oBase + d];
          for (let s = from; s < to; s++) {
            const kBase = ((b * S + s) * Hkv + hk) * Dk;
            const vBase = ((b * S + s) * Hkv + hk) * Dv;
            let dot = 0;
            for (let d = 0; d < Dk; d++) dot += q[qBase + d] * k[kBase + d];
            p[s] = Math.exp(dot * scale - l);
            // dV[s] += p dO
            for (let d = 0; d < Dv; d++) dvAcc[vBase + d] += p[s] * DO[oBase + d];
            // dP = dO · V[s];  dS = p (dP − Di)
            let dP = 0;
            for (let d = 0; d < Dv; d++) dP += DO[oBase + d] * v[vBase + d];
            const dS = p[s] * (dP - Di);
            for (let d = 0; d < Dk; d++) {
              dqAcc[qBase + d] += scale * dS * k[kBase + d];
              dkAcc[kBase + d] += scale * dS * q[qBase + d];
            }
          }
        }
      }
    }
    for (let i = 0; i < dqAcc.length; i++) DQ[i] = dqAcc[i];
    for (let i = 0; i < dkAcc.length; i++) DK[i] = dkAcc[i];
    for (let i = 0; i < dvAcc.length; i++) DV[i] = dvAcc[i];
  }

  crossEntropy(logits: Storage, targets: Storage, losses: Storage, lse: Storage,
    rows: number, V: number, ignoreIndex: number): void {
    this.rowsCheck('crossEntropy', rows, V);
    const X = fbuf('crossEntropy', `logits (${rows}x${V})`, logits, rows * V);
    const Tg = ibuf('crossEntropy', `targets (${rows})`, targets, rows);
    const LS = fbuf('crossEntropy', `losses (${rows})`, losses, rows);
    const L = fbuf('crossEntropy', `lse (${rows})`, lse, rows);
    for (let r = 0; r < rows; r++) {
      const t = Tg[r];
      if (t === ignoreIndex) { LS[r] = 0; L[r] = 0; continue; }
      if (!(t >= 0 && t < V)) fail('crossEntropy', `target of row ${r} is ${t}, outside [0, ${V}) and not ignoreIndex ${ignoreIndex}`);
      const base = r * V;
      let mx = -Infinity;
      for (let c = 0; c < V; c++) mx = Math.max(mx, X[base + c]);
      let sum = 0;
      for (let c = 0; c < V; c++) sum += Math.exp(X[base + c] - mx);
      const l = mx + Math.log(sum);
      L[r] = l;
      LS[r] = l - X[base + t];
    }
  }

  crossEntropyGrad(logits: Storage, targets: Storage, lse: Storage, dloss: Storage, dlogits: Storage,
    rows: number, V: number, ignoreIndex: number): void {
    this.rowsCheck('crossEntropyGrad', rows, V);
    const X = fbuf('crossEntropyGrad', `logits (${rows}x${V})`, logits, rows * V);
    const Tg = ibuf('crossEntropyGrad', `targets (${rows})`, targets, rows);
    const L = fbuf('crossEntropyGrad', `lse (${rows})`, lse, rows);
    const DL = fbuf('crossEntropyGrad', `dloss (${rows})`, dloss, rows);
    const DX = fbuf('crossEntropyGrad', `dlogits (${rows}x${V})`, dlogits, rows * V);
    for (let r = 0; r < rows; r++) {
      const t = Tg[r];
      const base = r * V;
      if (t === ignoreIndex) { for (let c = 0; c < V; c++) DX[base + c] = 0; continue; }
      if (!(t >= 0 && t < V)) fail('crossEntropyGrad', `target of row ${r} is ${t}, outside [0, ${V}) and not ignoreIndex ${ignoreIndex}`);
      const l = L[r], d = DL[r];
      for (let c = 0; c < V; c++) {
        const sm = Math.exp(X[base + c] - l);
        DX[base + c] = d * (sm - (c === t ? 1 : 0));
      }
    }
  }

  adamw(p: Storage, g: Storage, m: Storage, v: Storage, o: AdamWStep): void {
    const n = sameLength('adamw', ['p', p], ['g', g], ['m', m], ['v', v]);
    if (!(Number.isInteger(o.step) && o.step >= 1)) fail('adamw', `step must be an integer >= 1 (1-based), got ${o.step}`);
    const P = fbuf('adamw', 'p', p), G = fbuf('adamw', 'g', g), M = fbuf('adamw', 'm', m), Vv = fbuf('adamw', 'v', v);
    const { lr, beta1, beta2, eps, weightDecay, step, gradScale } = o;
    const bc1 = 1 - beta1 ** step, bc2 = 1 - beta2 ** step;
    for (let i = 0; i < n; i++) {
      const gi = G[i] * gradScale;
      const mi = beta1 * M[i] + (1 - beta1) * gi;
      const vi = beta2 * Vv[i] + (1 - beta2) * gi * gi;
      M[i] = mi;
      Vv[i] = vi;
      const p0 = P[i];
      P[i] = p0 - lr * (mi / bc1) / (Math.sqrt(vi / bc2) + eps) - lr * weightDecay * p0;
    }
  }
}
