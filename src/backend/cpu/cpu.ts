// The native CPU backend: HostStorage typed arrays handed to the C++ addon (native/*.cc), which
// works on them in place (OpenBLAS for GEMM, OpenMP-threaded, vectorised loops for the rest).
//
// Every size, offset, stride and index is checked here before the addon is called: native code
// trusts its arguments, so a mistake must become a thrown Error naming the kernel and the sizes,
// never an out-of-bounds access. Inputs that overlap an output in a way the kernel cannot handle
// in place are snapshotted first (same results as the reference backend, which reads snapshots).
import type {
  AdamWStep, AttentionArgs, Backend, BinaryOp, CompareOp, DecodeBlockArgs, DecodeCacheArgs, DType, GemmArgs, GqaDecodeArgs,
  HostArray, LinearParams, MlaDecodeArgs, MlpDecodeArgs, MoeDecodeArgs, Storage, UnaryOp,
} from '../backend.js';
import { HostStorage, host } from '../host.js';
import { loadNative, getThreads, setThreads, type NativeAddon } from './native.js';
import { contiguousStrides, kernelChecks, product } from '../checks.js';

export { setThreads, getThreads };

const F64_MSG = 'cpu backend supports f32 and i32; use RefBackend for f64';

const BINARY_OPS: readonly BinaryOp[] = ['add', 'sub', 'mul', 'div', 'max', 'min', 'pow'];
const COMPARE_OPS: readonly CompareOp[] = ['eq', 'ne', 'lt', 'le', 'gt', 'ge'];
const UNARY_OPS: readonly UnaryOp[] = [
  'neg', 'exp', 'log', 'sqrt', 'rsqrt', 'square', 'abs', 'sigmoid', 'silu', 'tanh', 'relu', 'recip',
];

// ---- argument checks ----------------------------------------------------------------------------

const checks = kernelChecks('cpu');
// An explicitly typed `never` function, so that TypeScript narrows after calls to it.
const fail: (kernel: string, msg: string) => never = checks.fail;
const { checkCount, sameLength } = checks;

/** int32 range for sizes handed to BLAS. */
function checkInt32(kernel: string, what: string, n: number): void {
  if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff) fail(kernel, `${what} must be an integer in [0, 2^31), got ${n}`);
}

/** An argument's name for error messages; a function when building it costs (calls made per token). */
type What = string | (() => string);
const named = (what: What): string => (typeof what === 'string' ? what : what());

function data(kernel: string, what: What, s: Storage): HostArray {
  if (s == null) fail(kernel, `${named(what)} is missing`);
  const d = host(s);
  if (d instanceof Float64Array) fail(kernel, `${named(what)} is f64: ${F64_MSG}`);
  return d;
}

function f32(kernel: string, what: What, s: Storage, need?: number): Float32Array {
  const d = data(kernel, what, s);
  if (!(d instanceof Float32Array)) fail(kernel, `${named(what)} must be f32, got ${s.dtype}`);
  if (need !== undefined && d.length < need) fail(kernel, `${named(what)} has ${d.length} elements, needs ${need}`);
  return d;
}

function i32(kernel: string, what: What, s: Storage, need?: number): Int32Array {
  const d = data(kernel, what, s);
  if (!(d instanceof Int32Array)) fail(kernel, `${named(what)} must be i32, got ${s.dtype}`);
  if (need !== undefined && d.length < need) fail(kernel, `${named(what)} has ${d.length} elements, needs ${need}`);
  return d;
}

/** f32 or i32. */
function num(kernel: string, what: string, s: Storage, need?: number): Float32Array | Int32Array {
  const d = data(kernel, what, s) as Float32Array | Int32Array;
  if (need !== undefined && d.length < need) fail(kernel, `${what} has ${d.length} elements, needs ${need}`);
  return d;
}

function checkIndices(kernel: string, what: string, idx: Int32Array, n: number, limit: number): void {
  for (let i = 0; i < n; i++) {
    const v = idx[i];
    if (!(v >= 0 && v < limit)) fail(kernel, `${what}[${i}] = ${v} is outside [0, ${limit})`);
  }
}

function checkStrided(kernel: string, what: string, len: number, offset: number,
  strides: readonly number[], shape: readonly number[]): void {
  if (strides.length !== shape.length) fail(kernel, `${what} strides [${strides}] do not match shape rank ${shape.length} ([${shape}])`);
  for (const x of strides) if (!Number.isInteger(x)) fail(kernel, `${what} strides [${strides}] must be integers`);
  if (product(shape) === 0) return;
  let lo = offset, hi = offset;
  for (let d = 0; d < shape.length; d++) {
    const ext = (shape[d] - 1) * strides[d];
    if (ext < 0) lo += ext; else hi += ext;
  }
  if (lo < 0 || hi >= len) {
    fail(kernel, `${what} (offset ${offset}, strides [${strides}], shape [${shape}]) reaches [${lo}, ${hi}], buffer has ${len} elements`);
  }
}

// ---- aliasing -----------------------------------------------------------------------------------

function overlaps(x: HostArray, y: HostArray): boolean {
  return x.buffer === y.buffer && x.byteOffset < y.byteOffset + y.byteLength && y.byteOffset < x.byteOffset + x.byteLength;
}

function identical(x: HostArray, y: HostArray): boolean {
  return x.buffer === y.buffer && x.byteOffset === y.byteOffset && x.length === y.length;
}

/** x, or a snapshot of it when it overlaps any of outs. */
function unalias<T extends HostArray>(x: T, ...outs: HostArray[]): T {
  for (const o of outs) if (overlaps(x, o)) return x.slice() as T;
  return x;
}

/** x, or a snapshot of it when it overlaps an output other than exactly (same-index access is safe). */
function unaliasSameIndex<T extends HostArray>(x: T, ...outs: HostArray[]): T {
  for (const o of outs) if (overlaps(x, o) && !identical(x, o)) return x.slice() as T;
  return x;
}

// ---- layouts ------------------------------------------------------------------------------------

/**
 * Drops size-1 axes and merges axes that are contiguous for every operand, giving
 * Float64Array [rank, shape..., strides of operand 0..., strides of operand 1..., ...].
 * Returns null when the shape is empty (no elements).
 */
function collapse(shape: readonly number[], strides: readonly (readonly number[])[]): Float64Array | null {
  if (product(shape) === 0) return null;
  const dims: number[] = [];
  const st: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const r = dims.length;
    if (r > 0 && strides.every((s, o) => st[o][r - 1] === s[d] * shape[d])) {
      dims[r - 1] *= shape[d];
      strides.forEach((s, o) => { st[o][r - 1] = s[d]; });
    } else {
      dims.push(shape[d]);
      strides.forEach((s, o) => { st[o].push(s[d]); });
    }
  }
  if (dims.length === 0) { dims.push(1); st.forEach((s) => s.push(0)); }
  const r = dims.length;
  const meta = new Float64Array(1 + r * (1 + strides.length));
  meta[0] = r;
  meta.set(dims, 1);
  st.forEach((s, o) => meta.set(s, 1 + r * (1 + o)));
  return meta;
}

/**
 * Whether (dims, strides) reaches every offset at most once. Sufficient test: sorted by |stride|,
 * each stride must clear the extent of the smaller ones (a layout failing it may still be
 * injective; it only takes the slow path).
 */
function distinctOffsets(dims: readonly number[], strides: readonly number[]): boolean {
  const order = dims.map((_, i) => i).filter((i) => dims[i] > 1).sort((a, b) => Math.abs(strides[a]) - Math.abs(strides[b]));
  let extent = 0;
  for (const i of order) {
    if (Math.abs(strides[i]) <= extent) return false;
    extent += Math.abs(strides[i]) * (dims[i] - 1);
  }
  return true;
}

/** ignoreIndex as the addon compares it (an int64): a non-integer matches no target. */
function nativeIgnore(ignoreIndex: number): number {
  return Number.isInteger(ignoreIndex) && Math.abs(ignoreIndex) < 2 ** 53 ? ignoreIndex : 2 ** 40;
}

// ---- the backend ----------------------------------------------------------------------------------

export class CpuBackend implements Backend {
  readonly name = 'cpu';
  readonly dtypes: readonly DType[] = ['f32', 'i32'];
  private readonly n: NativeAddon;

  constructor() {
    this.n = loadNative();
  }

  /** Threads for native kernels and OpenBLAS (process-wide). */
  setThreads(n: number): number { return setThreads(n); }
  getThreads(): number { return getThreads(); }
  /** Build/runtime facts: OpenBLAS config, thread counts, vector ISA. */
  info(): ReturnType<NativeAddon['info']> { return this.n.info(); }

  // ---- memory ----

  alloc(dtype: DType, length: number): Storage {
    checkCount('alloc', 'length', length);
    switch (dtype) {
      case 'f32': return new HostStorage('f32', new Float32Array(length));
      case 'i32': return new HostStorage('i32', new Int32Array(length));
      case 'f64': fail('alloc', F64_MSG);
      default: fail('alloc', `unknown dtype '${dtype as string}'`);
    }
  }

  empty(dtype: DType, length: number): Storage {
    // Small buffers: V8's zeroed allocation is as cheap. Large ones: malloc'ed, not zeroed.
    if (length < 4096 || (dtype !== 'f32' && dtype !== 'i32')) return this.alloc(dtype, length);
    checkCount('empty', 'length', length);
    const bytes = Buffer.allocUnsafeSlow(length * 4);
    const view = dtype === 'f32' ? new Float32Array(bytes.buffer, bytes.byteOffset, length) : new Int32Array(bytes.buffer, bytes.byteOffset, length);
    return new HostStorage(dtype, view);
  }

  upload(data: ArrayLike<number>, dtype: DType): Storage {
    const s = this.alloc(dtype, data.length);
    const arr = (s as HostStorage).data;
    if (ArrayBuffer.isView(data) || Array.isArray(data)) arr.set(data as ArrayLike<number>);
    else for (let i = 0; i < data.length; i++) arr[i] = data[i];
    return s;
  }

  read(s: Storage): HostArray {
    return data('read', 'buffer', s).slice();
  }

  fill(s: Storage, value: number): void {
    data('fill', 'buffer', s).fill(value);
  }

  copy(src: Storage, srcOffset: number, dst: Storage, dstOffset: number, n: number): void {
    checkCount('copy', 'n', n);
    checkCount('copy', 'srcOffset', srcOffset);
    checkCount('copy', 'dstOffset', dstOffset);
    const s = num('copy', `src (offset ${srcOffset}, n ${n})`, src, srcOffset + n);
    const d = num('copy', `dst (offset ${dstOffset}, n ${n})`, dst, dstOffset + n);
    if (n === 0) return;
    if (s.constructor === d.constructor) {
      // TypedArray.set copies as if through a temporary when the two overlap (memmove)
      d.set(s.subarray(srcOffset, srcOffset + n), dstOffset);
    } else {
      this.n.convert(s, srcOffset, d, dstOffset, n);
    }
  }

  stridedCopy(
    src: Storage, srcOffset: number, srcStrides: readonly number[],
    dst: Storage, dstOffset: number, dstStrides: readonly number[],
    shape: readonly number[],
  ): void {
    const K = 'stridedCopy';
    if (shape.length > 8) fail(K, `rank ${shape.length} > 8`);
    for (const d of shape) checkCount(K, 'shape entry', d);
    checkCount(K, 'srcOffset', srcOffset);
    checkCount(K, 'dstOffset', dstOffset);
    const s0 = num(K, 'src', src), d = num(K, 'dst', dst);
    checkStrided(K, 'src', s0.length, srcOffset, srcStrides, shape);
    checkStrided(K, 'dst', d.length, dstOffset, dstStrides, shape);
    const layout = collapse(shape, [srcStrides, dstStrides]);
    if (!layout) return;
    const s = unalias(s0, d);
    const rank = layout[0];
    const dims = Array.from(layout.subarray(1, 1 + rank));
    const ss = Array.from(layout.subarray(1 + rank, 1 + 2 * rank));
    const ds = Array.from(layout.subarray(1 + 2 * rank, 1 + 3 * rank));
    if (distinctOffsets(dims, ds)) {
      this.n.stridedCopy(s, srcOffset, d, dstOffset, layout);
      return;
    }
    // A destination element written more than once (e.g. stride 0): the last write in row-major
    // order wins, which only a sequential walk guarantees. Rare; element by element in JS.
    const total = product(dims);
    const idx = new Array<number>(rank).fill(0);
    let so = srcOffset, dO = dstOffset;
    for (let f = 0; f < total; f++) {
      d[dO] = s[so]; // typed-array store: ToInt32 / float rounding, as in the reference
      for (let a = rank - 1; a >= 0; a--) {
        idx[a]++; so += ss[a]; dO += ds[a];
        if (idx[a] < dims[a]) break;
        so -= ss[a] * dims[a]; dO -= ds[a] * dims[a]; idx[a] = 0;
      }
    }
  }

  // ---- dense linear algebra ----

  gemm(g: GemmArgs): void {
    const K = 'gemm';
    const { transA, transB, m, n, k, alpha, beta, batch, lda, ldb, ldc } = g;
    for (const [what, x] of Object.entries({ m, n, k, batch, lda, ldb, ldc })) checkInt32(K, what, x);
    for (const [what, x] of Object.entries({ aOffset: g.aOffset, bOffset: g.bOffset, cOffset: g.cOffset, strideA: g.strideA, strideB: g.strideB, strideC: g.strideC })) {
      if (!Number.isInteger(x)) fail(K, `${what} must be an integer, got ${x}`);
      if (x < 0) fail(K, what.startsWith('stride') ? 'batch strides must be non-negative' : `${what} must be a non-negative integer, got ${x}`);
    }
    const [aRows, aCols] = transA ? [k, m] : [m, k];
    const [bRows, bCols] = transB ? [n, k] : [k, n];
    if (lda < Math.max(1, aCols)) fail(K, `lda=${lda} < ${aCols} (stored A is ${aRows}x${aCols})`);
    if (ldb < Math.max(1, bCols)) fail(K, `ldb=${ldb} < ${bCols} (stored B is ${bRows}x${bCols})`);
    if (ldc < Math.max(1, n)) fail(K, `ldc=${ldc} < n=${n}`);
    const extent = (rows: number, cols: number, ld: number, stride: number) =>
      rows === 0 || cols === 0 || batch === 0 ? 0 : (batch - 1) * stride + (rows - 1) * ld + cols;
    const A = f32(K, `A (${aRows}x${aCols}, lda ${lda}, offset ${g.aOffset}, stride ${g.strideA}, batch ${batch})`,
      g.a, g.aOffset + extent(aRows, aCols, lda, g.strideA));
    const B = f32(K, `B (${bRows}x${bCols}, ldb ${ldb}, offset ${g.bOffset}, stride ${g.strideB}, batch ${batch})`,
      g.b, g.bOffset + extent(bRows, bCols, ldb, g.strideB));
    const C = f32(K, `C (${m}x${n}, ldc ${ldc}, offset ${g.cOffset}, stride ${g.strideC}, batch ${batch})`,
      g.c, g.cOffset + extent(m, n, ldc, g.strideC));
    if (m === 0 || n === 0 || batch === 0) return;
    // C blocks of a batch overlapping each other: run the matrices one by one, in order
    this.n.gemm(transA, transB, m, n, k, alpha, beta, unalias(A, C), g.aOffset, lda, g.strideA,
      unalias(B, C), g.bOffset, ldb, g.strideB, C, g.cOffset, ldc, g.strideC, batch);
  }

  // ---- elementwise ----

  binary(op: BinaryOp, a: Storage, aStrides: readonly number[], b: Storage, bStrides: readonly number[],
    out: Storage, shape: readonly number[]): void {
    const code = BINARY_OPS.indexOf(op);
    if (code < 0) fail('binary', `unknown op '${op as string}'`);
    this.elementwise('binary', code, a, aStrides, b, bStrides, out, shape);
  }

  compare(op: CompareOp, a: Storage, aStrides: readonly number[], b: Storage, bStrides: readonly number[],
    out: Storage, shape: readonly number[]): void {
    const code = COMPARE_OPS.indexOf(op);
    if (code < 0) fail('compare', `unknown op '${op as string}'`);
    this.elementwise('compare', code, a, aStrides, b, bStrides, out, shape);
  }

  private elementwise(kernel: 'binary' | 'compare', code: number, a: Storage, aStrides: readonly number[],
    b: Storage, bStrides: readonly number[], out: Storage, shape: readonly number[]): void {
    if (shape.length > 8) fail(kernel, `rank ${shape.length} > 8`);
    for (const d of shape) checkCount(kernel, 'shape entry', d);
    const A0 = f32(kernel, 'a', a), B0 = f32(kernel, 'b', b);
    checkStrided(kernel, 'a', A0.length, 0, aStrides, shape);
    checkStrided(kernel, 'b', B0.length, 0, bStrides, shape);
    const total = product(shape);
    const O = f32(kernel, `out (shape [${shape}])`, out, total);
    const layout = collapse(shape, [aStrides, bStrides, contiguousStrides(shape)]);
    if (!layout) return;
    // An input may share memory with out only when it is read at the element being written.
    const rank = layout[0];
    const sameAsOut = (x: Float32Array, o: number) => {
      if (!overlaps(x, O)) return true;
      if (x.buffer !== O.buffer || x.byteOffset !== O.byteOffset) return false;
      for (let i = 0; i < rank; i++) if (layout[1 + rank * (1 + o) + i] !== layout[1 + rank * 3 + i]) return false;
      return true;
    };
    const A = sameAsOut(A0, 0) ? A0 : A0.slice();
    const B = sameAsOut(B0, 1) ? B0 : B0.slice();
    const meta = layout.subarray(0, 1 + 3 * rank);
    if (kernel === 'binary') this.n.binary(code, A, B, O, meta);
    else this.n.compare(code, A, B, O, meta);
  }

  unary(op: UnaryOp, x: Storage, out: Storage): void {
    const code = UNARY_OPS.indexOf(op);
    if (code < 0) fail('unary', `unknown op '${op as string}'`);
    const n = sameLength('unary', ['x', x], ['out', out]);
    const O = f32('unary', 'out', out);
    const X = unaliasSameIndex(f32('unary', 'x', x), O);
    this.n.unary(code, X, O, n);
  }

  unaryGrad(op: UnaryOp, x: Storage, dy: Storage, dx: Storage): void {
    const code = UNARY_OPS.indexOf(op);
    if (code < 0) fail('unaryGrad', `unknown op '${op as string}'`);
    const n = sameLength('unaryGrad', ['x', x], ['dy', dy], ['dx', dx]);
    const DX = f32('unaryGrad', 'dx', dx);
    const X = unaliasSameIndex(f32('unaryGrad', 'x', x), DX);
    const DY = unaliasSameIndex(f32('unaryGrad', 'dy', dy), DX);
    this.n.unaryGrad(code, X, DY, DX, n);
  }

  affine(x: Storage, alpha: number, beta: number, out: Storage): void {
    const n = sameLength('affine', ['x', x], ['out', out]);
    const O = f32('affine', 'out', out);
    const X = unaliasSameIndex(f32('affine', 'x', x), O);
    this.n.affine(X, alpha, beta, O, n);
  }

  where(cond: Storage, a: Storage, b: Storage, out: Storage): void {
    const n = sameLength('where', ['cond', cond], ['a', a], ['b', b], ['out', out]);
    const O = f32('where', 'out', out);
    const C = unaliasSameIndex(num('where', 'cond', cond), O);
    const A = unaliasSameIndex(f32('where', 'a', a), O), B = unaliasSameIndex(f32('where', 'b', b), O);
    this.n.where(C, A, B, O, n);
  }

  // ---- reductions ----

  sumAxis(x: Storage, out: Storage, outer: number, R: number, inner: number): void {
    for (const [w, v] of Object.entries({ outer, R, inner })) checkCount('sumAxis', w, v);
    const X0 = f32('sumAxis', `x (${outer}x${R}x${inner})`, x, outer * R * inner);
    const O = f32('sumAxis', `out (${outer}x${inner})`, out, outer * inner);
    const X = unalias(X0, O);
    if (outer * inner === 0) return;
    this.n.sumAxis(X, O, outer, R, inner);
  }

  maxAxis(x: Storage, out: Storage, argmax: Storage | null, outer: number, R: number, inner: number): void {
    for (const [w, v] of Object.entries({ outer, R, inner })) checkCount('maxAxis', w, v);
    if (R === 0 && outer * inner > 0) fail('maxAxis', 'cannot take the max over an empty axis (R=0)');
    const X0 = f32('maxAxis', `x (${outer}x${R}x${inner})`, x, outer * R * inner);
    const O = f32('maxAxis', `out (${outer}x${inner})`, out, outer * inner);
    const AM = argmax ? i32('maxAxis', `argmax (${outer}x${inner})`, argmax, outer * inner) : null;
    const X = unalias(X0, O, ...(AM ? [AM] : []));
    if (outer * inner === 0) return;
    this.n.maxAxis(X, O, AM, outer, R, inner);
  }

  sumSquares(x: Storage): number {
    const X = f32('sumSquares', 'x', x);
    return this.n.sumSquares(X, X.length);
  }

  // ---- row kernels ----

  private rowsCheck(kernel: string, rows: number, cols: number): number {
    checkCount(kernel, 'rows', rows);
    checkCount(kernel, 'cols', cols);
    return rows * cols;
  }

  softmax(x: Storage, out: Storage, rows: number, cols: number, log: boolean): void {
    const n = this.rowsCheck('softmax', rows, cols);
    const O = f32('softmax', `out (${rows}x${cols})`, out, n);
    const X = unaliasSameIndex(f32('softmax', `x (${rows}x${cols})`, x, n), O);
    if (n === 0) return;
    this.n.softmax(X, O, rows, cols, !!log);
  }

  softmaxGrad(y: Storage, dy: Storage, dx: Storage, rows: number, cols: number, log: boolean): void {
    const n = this.rowsCheck('softmaxGrad', rows, cols);
    const DX = f32('softmaxGrad', `dx (${rows}x${cols})`, dx, n);
    const Y = unaliasSameIndex(f32('softmaxGrad', `y (${rows}x${cols})`, y, n), DX);
    const DY = unaliasSameIndex(f32('softmaxGrad', `dy (${rows}x${cols})`, dy, n), DX);
    if (n === 0) return;
    this.n.softmaxGrad(Y, DY, DX, rows, cols, !!log);
  }

  rmsNorm(x: Storage, w: Storage, out: Storage, rstd: Storage, rows: number, cols: number, eps: number): void {
    const K = 'rmsNorm';
    const n = this.rowsCheck(K, rows, cols);
    const O = f32(K, `out (${rows}x${cols})`, out, n);
    const RS = f32(K, `rstd (${rows})`, rstd, rows);
    const X = unaliasSameIndex(unalias(f32(K, `x (${rows}x${cols})`, x, n), RS), O);
    const W = unalias(f32(K, `w (${cols})`, w, cols), O, RS);
    if (rows === 0) return;
    this.n.rmsNorm(X, W, O, RS, rows, cols, eps);
  }

  rmsNormGrad(x: Storage, w: Storage, rstd: Storage, dy: Storage, dx: Storage, dw: Storage,
    rows: number, cols: number): void {
    const K = 'rmsNormGrad';
    const n = this.rowsCheck(K, rows, cols);
    const DX = f32(K, `dx (${rows}x${cols})`, dx, n);
    const DW = f32(K, `dw (${cols})`, dw, cols);
    const X = unaliasSameIndex(unalias(f32(K, `x (${rows}x${cols})`, x, n), DW), DX);
    const DY = unaliasSameIndex(unalias(f32(K, `dy (${rows}x${cols})`, dy, n), DW), DX);
    const W = unalias(f32(K, `w (${cols})`, w, cols), DX, DW);
    const RS = unalias(f32(K, `rstd (${rows})`, rstd, rows), DX, DW);
    if (n === 0) return;
    this.n.rmsNormGrad(X, W, RS, DY, DX, DW, rows, cols);
  }

  swiglu(gate: Storage, up: Storage, out: Storage): void {
    const n = sameLength('swiglu', ['gate', gate], ['up', up], ['out', out]);
    const O = f32('swiglu', 'out', out);
    const G = unaliasSameIndex(f32('swiglu', 'gate', gate), O), U = unaliasSameIndex(f32('swiglu', 'up', up), O);
    this.n.swiglu(G, U, O, n);
  }

  swigluGrad(gate: Storage, up: Storage, dy: Storage, dGate: Storage, dUp: Storage): void {
    const K = 'swigluGrad';
    const n = sameLength(K, ['gate', gate], ['up', up], ['dy', dy], ['dGate', dGate], ['dUp', dUp]);
    const DG = f32(K, 'dGate', dGate), DU = f32(K, 'dUp', dUp);
    if (overlaps(DG, DU)) fail(K, 'dGate and dUp must not share memory');
    const G = unaliasSameIndex(f32(K, 'gate', gate), DG, DU);
    const U = unaliasSameIndex(f32(K, 'up', up), DG, DU);
    const DY = unaliasSameIndex(f32(K, 'dy', dy), DG, DU);
    this.n.swigluGrad(G, U, DY, DG, DU, n);
  }

  rope(x: Storage, out: Storage, cos: Storage, sin: Storage, positions: Storage,
    N: number, H: number, D: number, interleaved: boolean, inverse: boolean): void {
    const K = 'rope';
    for (const [w, v] of Object.entries({ N, H, D })) checkCount(K, w, v);
    if (D % 2 !== 0) fail(K, `head dim D=${D} must be even`);
    const half = D / 2;
    const n = N * H * D;
    const O = f32(K, `out (${N}x${H}x${D})`, out, n);
    const X = unaliasSameIndex(f32(K, `x (${N}x${H}x${D})`, x, n), O);
    const C = unalias(f32(K, 'cos', cos), O), Sn = unalias(f32(K, 'sin', sin), O);
    if (half > 0 && (C.length % half !== 0 || C.length !== Sn.length)) {
      fail(K, `cos (${C.length}) and sin (${Sn.length}) must both be (maxPos, D/2=${half}) tables`);
    }
    const maxPos = half > 0 ? C.length / half : 0;
    const P = i32(K, `positions (${N})`, positions, N);
    if (H * half === 0) return;
    checkIndices(K, 'positions', P, N, maxPos);
    this.n.rope(X, O, C, Sn, P, N, H, D, !!interleaved, !!inverse);
  }

  // ---- indexing ----

  gatherRows(src: Storage, idx: Storage, out: Storage, n: number, cols: number): void {
    const K = 'gatherRows';
    this.rowsCheck(K, n, cols);
    const S0 = num(K, 'src', src);
    const I = i32(K, `idx (${n})`, idx, n);
    const O = num(K, `out (${n}x${cols})`, out, n * cols);
    if (S0.constructor !== O.constructor) fail(K, `src (${src.dtype}) and out (${out.dtype}) must have the same dtype`);
    if (cols === 0 || n === 0) return;
    checkIndices(K, 'idx', I, n, Math.floor(S0.length / cols));
    this.n.gatherRows(unalias(S0, O), I, O, n, cols);
  }

  scatterAddRows(src: Storage, idx: Storage, weights: Storage | null, out: Storage, n: number, cols: number): void {
    const K = 'scatterAddRows';
    this.rowsCheck(K, n, cols);
    const O = f32(K, 'out', out);
    const S = unalias(f32(K, `src (${n}x${cols})`, src, n * cols), O);
    const I = unalias(i32(K, `idx (${n})`, idx, n), O);
    const W = weights ? unalias(f32(K, `weights (${n})`, weights, n), O) : null;
    if (cols === 0 || n === 0) return;
    checkIndices(K, 'idx', I, n, Math.floor(O.length / cols));
    this.n.scatterAddRows(S, I, W, O, n, cols);
  }

  moeExperts(x: Storage, idx: Storage, weights: Storage, gate: readonly Storage[], up: readonly Storage[],
    down: readonly Storage[], out: Storage, n: number, k: number, C: number, I: number): void {
    const K = 'moeExperts';
    this.rowsCheck(K, n, k);
    this.rowsCheck(K, C, I);
    const E = gate.length;
    if (up.length !== E || down.length !== E) fail(K, `${E} gate, ${up.length} up and ${down.length} down weights`);
    const O = f32(K, `out (${n}x${C})`, out, n * C);
    const X = unalias(f32(K, `x (${n}x${C})`, x, n * C), O);
    const Ix = i32(K, `idx (${n}x${k})`, idx, n * k);
    const W = f32(K, `weights (${n}x${k})`, weights, n * k);
    const G = gate.map((g, e) => f32(K, `gate[${e}] (${I}x${C})`, g, I * C));
    const U = up.map((u, e) => f32(K, `up[${e}] (${I}x${C})`, u, I * C));
    const D = down.map((d, e) => f32(K, `down[${e}] (${C}x${I})`, d, C * I));
    if (n === 0 || k === 0 || C === 0) return;
    checkIndices(K, 'idx', Ix, n * k, E);
    this.n.moeExperts(X, Ix, W, G, U, D, O, n, k, C, I);
  }

  rowDot(a: Storage, idx: Storage, b: Storage, out: Storage, n: number, cols: number): void {
    const K = 'rowDot';
    this.rowsCheck(K, n, cols);
    const O = f32(K, `out (${n})`, out, n);
    const A = unalias(f32(K, 'a', a), O);
    const I = unalias(i32(K, `idx (${n})`, idx, n), O);
    const B = unalias(f32(K, `b (${n}x${cols})`, b, n * cols), O);
    if (n === 0) return;
    if (cols > 0) checkIndices(K, 'idx', I, n, Math.floor(A.length / cols));
    this.n.rowDot(A, I, B, O, n, cols);
  }

  gatherLast(x: Storage, idx: Storage, out: Storage, rows: number, cols: number, k: number): void {
    const K = 'gatherLast';
    this.rowsCheck(K, rows, cols);
    checkCount(K, 'k', k);
    const X0 = num(K, `x (${rows}x${cols})`, x, rows * cols);
    const I0 = i32(K, `idx (${rows}x${k})`, idx, rows * k);
    const O = num(K, `out (${rows}x${k})`, out, rows * k);
    if (X0.constructor !== O.constructor) fail(K, `x (${x.dtype}) and out (${out.dtype}) must have the same dtype`);
    if (rows * k === 0) return;
    checkIndices(K, 'idx', I0, rows * k, cols);
    this.n.gatherLast(unalias(X0, O), unalias(I0, O), O, rows, cols, k);
  }

  scatterAddLast(src: Storage, idx: Storage, out: Storage, rows: number, cols: number, k: number): void {
    const K = 'scatterAddLast';
    this.rowsCheck(K, rows, cols);
    checkCount(K, 'k', k);
    const O = f32(K, `out (${rows}x${cols})`, out, rows * cols);
    const S = unalias(f32(K, `src (${rows}x${k})`, src, rows * k), O);
    const I = unalias(i32(K, `idx (${rows}x${k})`, idx, rows * k), O);
    if (rows * k === 0) return;
    checkIndices(K, 'idx', I, rows * k, cols);
    this.n.scatterAddLast(S, I, O, rows, cols, k);
  }

  topk(x: Storage, values: Storage, indices: Storage, rows: number, cols: number, k: number): void {
    const K = 'topk';
    this.rowsCheck(K, rows, cols);
    checkCount(K, 'k', k);
    if (k > cols) fail(K, `k=${k} > cols=${cols}`);
    const V = f32(K, `values (${rows}x${k})`, values, rows * k);
    const I = i32(K, `indices (${rows}x${k})`, indices, rows * k);
    if (overlaps(V, I)) fail(K, 'values and indices must not share memory');
    const X = unalias(f32(K, `x (${rows}x${cols})`, x, rows * cols), V, I);
    if (rows * k === 0) return;
    this.n.topk(X, V, I, rows, cols, k);
  }

  // ---- fused kernels ----

  private attnCounts(kernel: string, a: AttentionArgs): void {
    const { B, T, S, H, Hkv, Dk, Dv } = a;
    for (const [what, n] of Object.entries({ B, T, S, H, Hkv, Dk, Dv })) checkInt32(kernel, what, n);
    if (Hkv <= 0 || H % Hkv !== 0) fail(kernel, `H=${H} must be a positive multiple of Hkv=${Hkv}`);
    if (typeof a.scale !== 'number') fail(kernel, `scale must be a number, got ${a.scale}`);
  }

  private attnInputs(kernel: string, a: AttentionArgs, outs: HostArray[]) {
    const { B, T, S, H, Hkv, Dk, Dv } = a;
    const q = unalias(f32(kernel, `q (B=${B}, T=${T}, H=${H}, Dk=${Dk})`, a.q, B * T * H * Dk), ...outs);
    const k = unalias(f32(kernel, `k (B=${B}, S=${S}, Hkv=${Hkv}, Dk=${Dk})`, a.k, B * S * Hkv * Dk), ...outs);
    if (a.vInK && Dv > Dk) fail(kernel, `values inside keys need Dv=${Dv} <= Dk=${Dk}`);
    const v = a.vInK ? k : unalias(f32(kernel, `v (B=${B}, S=${S}, Hkv=${Hkv}, Dv=${Dv})`, a.v, B * S * Hkv * Dv), ...outs);
    const kr = a.keyRange ? unalias(i32(kernel, `keyRange (${B}x2)`, a.keyRange, 2 * B), ...outs) : null;
    return { q, k, v, kr };
  }

  attention(a: AttentionArgs, out: Storage, lse: Storage): void {
    const K = 'attention';
    this.attnCounts(K, a);
    const { B, T, H, Dv } = a;
    const O = f32(K, `out (B=${B}, T=${T}, H=${H}, Dv=${Dv})`, out, B * T * H * Dv);
    const L = f32(K, `lse (B=${B}, H=${H}, T=${T})`, lse, B * H * T);
    if (overlaps(O, L)) fail(K, 'out and lse must not share memory');
    const { q, k, v, kr } = this.attnInputs(K, a, [O, L]);
    this.n.attention(q, k, v, kr, a.B, a.T, a.S, a.H, a.Hkv, a.Dk, a.Dv, a.scale, !!a.causal, !!a.vInK, O, L);
  }

  attentionGrad(a: AttentionArgs, out: Storage, lse: Storage, dOut: Storage,
    dq: Storage, dk: Storage, dv: Storage): void {
    const K = 'attentionGrad';
    this.attnCounts(K, a);
    const { B, T, S, H, Hkv, Dk, Dv } = a;
    const DQ = f32(K, `dq (B=${B}, T=${T}, H=${H}, Dk=${Dk})`, dq, B * T * H * Dk);
    const DK = f32(K, `dk (B=${B}, S=${S}, Hkv=${Hkv}, Dk=${Dk})`, dk, B * S * Hkv * Dk);
    const DV = f32(K, `dv (B=${B}, S=${S}, Hkv=${Hkv}, Dv=${Dv})`, dv, B * S * Hkv * Dv);
    if (overlaps(DQ, DK) || overlaps(DQ, DV) || overlaps(DK, DV)) fail(K, 'dq, dk and dv must not share memory');
    const outs = [DQ, DK, DV];
    if (a.vInK) fail(K, 'values read from the keys (vInK) are an inference-only layout');
    const { q, k, v, kr } = this.attnInputs(K, a, outs);
    const O = unalias(f32(K, `out (B=${B}, T=${T}, H=${H}, Dv=${Dv})`, out, B * T * H * Dv), ...outs);
    const L = unalias(f32(K, `lse (B=${B}, H=${H}, T=${T})`, lse, B * H * T), ...outs);
    const DO = unalias(f32(K, `dOut (B=${B}, T=${T}, H=${H}, Dv=${Dv})`, dOut, B * T * H * Dv), ...outs);
    this.n.attentionGrad(q, k, v, kr, B, T, S, H, Hkv, Dk, Dv, a.scale, !!a.causal, false, O, L, DO, DQ, DK, DV);
  }

  crossEntropy(logits: Storage, targets: Storage, losses: Storage, lse: Storage,
    rows: number, V: number, ignoreIndex: number): void {
    const K = 'crossEntropy';
    this.rowsCheck(K, rows, V);
    const LS = f32(K, `losses (${rows})`, losses, rows);
    const L = f32(K, `lse (${rows})`, lse, rows);
    if (overlaps(LS, L)) fail(K, 'losses and lse must not share memory');
    const X = unalias(f32(K, `logits (${rows}x${V})`, logits, rows * V), LS, L);
    const Tg = unalias(i32(K, `targets (${rows})`, targets, rows), LS, L);
    this.checkTargets(K, Tg, rows, V, ignoreIndex);
    if (rows === 0) return;
    this.n.crossEntropy(X, Tg, LS, L, rows, V, nativeIgnore(ignoreIndex));
  }

  crossEntropyGrad(logits: Storage, targets: Storage, lse: Storage, dloss: Storage, dlogits: Storage,
    rows: number, V: number, ignoreIndex: number): void {
    const K = 'crossEntropyGrad';
    this.rowsCheck(K, rows, V);
    const DX = f32(K, `dlogits (${rows}x${V})`, dlogits, rows * V);
    const X = unaliasSameIndex(f32(K, `logits (${rows}x${V})`, logits, rows * V), DX);
    const Tg = unalias(i32(K, `targets (${rows})`, targets, rows), DX);
    const L = unalias(f32(K, `lse (${rows})`, lse, rows), DX);
    const DL = unalias(f32(K, `dloss (${rows})`, dloss, rows), DX);
    this.checkTargets(K, Tg, rows, V, ignoreIndex);
    if (rows * V === 0) return;
    this.n.crossEntropyGrad(X, Tg, L, DL, DX, rows, V, nativeIgnore(ignoreIndex));
  }

  private checkTargets(kernel: string, Tg: Int32Array, rows: number, V: number, ignoreIndex: number): void {
    if (!Number.isFinite(ignoreIndex)) fail(kernel, `ignoreIndex must be a number, got ${ignoreIndex}`);
    for (let r = 0; r < rows; r++) {
      const t = Tg[r];
      if (t !== ignoreIndex && !(t >= 0 && t < V)) {
        fail(kernel, `target of row ${r} is ${t}, outside [0, ${V}) and not ignoreIndex ${ignoreIndex}`);
      }
    }
  }

  adamw(p: Storage, g: Storage, m: Storage, v: Storage, o: AdamWStep): void {
    const K = 'adamw';
    const n = sameLength(K, ['p', p], ['g', g], ['m', m], ['v', v]);
    if (!(Number.isInteger(o.step) && o.step >= 1)) fail(K, `step must be an integer >= 1 (1-based), got ${o.step}`);
    const P = f32(K, 'p', p), M = f32(K, 'm', m), Vv = f32(K, 'v', v);
    if (overlaps(P, M) || overlaps(P, Vv) || overlaps(M, Vv)) fail(K, 'p, m and v must be distinct buffers');
    const G = unalias(f32(K, 'g', g), P, M, Vv);
    this.n.adamw(P, G, M, Vv, n, o.lr, o.beta1, o.beta2, o.eps, o.weightDecay, o.step, o.gradScale);
  }

  // ---- fused decoding blocks ----

  mlaDecode(a: MlaDecodeArgs, out: Storage): void {
    const K = 'mlaDecode';
    const { B, T, C, H, Dn, Dr, Dv, Lq, Lkv } = a;
    checkCount(K, 'H', H); checkCount(K, 'Dn', Dn); checkCount(K, 'Dr', Dr); checkCount(K, 'Dv', Dv);
    checkCount(K, 'Lq', Lq); checkCount(K, 'Lkv', Lkv);
    if (Dr % 2 !== 0) fail(K, `qk_rope_head_dim must be even, got ${Dr}`);
    checkInt32(K, 'H·(Dn+Dr)', H * (Dn + Dr)); checkInt32(K, 'H·(Dn+Dv)', H * (Dn + Dv)); checkInt32(K, 'H·Dv', H * Dv);
    checkInt32(K, 'H·(Lkv+Dr)', H * (Lkv + Dr));
    const { X, O, norm } = this.blockIO(K, a, out);
    const cacheIO = this.cacheIO(K, a, Dr);
    const latent = f32(K, () => `latent cache (${B}x${a.capacity}x1x${Lkv + Dr})`, a.latent, B * a.capacity * (Lkv + Dr));
    if (overlaps(latent, X) || overlaps(latent, O)) fail(K, 'the latent cache must not share memory with x or out');
    const Dq = Dn + Dr;
    let qA: F32 | null = null, qABias: F32 | null = null, qANorm: F32 | null = null, qB: F32 | null = null, q: F32 | null = null;
    if (Lq > 0) {
      if (!a.qA || !a.qANorm || !a.qB) fail(K, 'q_lora_rank > 0 needs q_a_proj, q_a_layernorm and q_b_proj');
      [qA, qABias] = linearParams(K, 'q_a_proj', a.qA, Lq, C);
      qANorm = f32(K, () => `q_a_layernorm (${Lq})`, a.qANorm, Lq);
      qB = f32(K, () => `q_b_proj (${H * Dq}x${Lq})`, a.qB, H * Dq * Lq);
    } else {
      if (!a.q) fail(K, 'without q_lora_rank the block needs q_proj');
      q = f32(K, () => `q_proj (${H * Dq}x${C})`, a.q, H * Dq * C);
    }
    const [kvA, kvABias] = linearParams(K, 'kv_a_proj_with_mqa', a.kvA, Lkv + Dr, C);
    const kvANorm = f32(K, () => `kv_a_layernorm (${Lkv})`, a.kvANorm, Lkv);
    const kvB = f32(K, () => `kv_b_proj (${H * (Dn + Dv)}x${Lkv})`, a.kvB, H * (Dn + Dv) * Lkv);
    const [o, oBias] = linearParams(K, 'o_proj', a.o, C, H * Dv);
    if (a.N === 0) return;
    const dims = Float64Array.of(B, T, C, H, Dn, Dr, Dv, Lq, Lkv, a.eps, a.mlaEps, a.scale, a.interleaved ? 1 : 0, a.capacity, a.at);
    this.n.mlaDecode(X, O, [norm, qA, qANorm, qB, q, kvA, kvANorm, kvB, o, qABias, kvABias, oBias], dims,
      cacheIO.cos, cacheIO.sin, cacheIO.positions, cacheIO.keyRange, latent);
  }

  gqaDecode(a: GqaDecodeArgs, out: Storage): void {
    const K = 'gqaDecode';
    const { B, T, C, H, Hkv, D } = a;
    checkCount(K, 'H', H); checkCount(K, 'Hkv', Hkv); checkCount(K, 'D', D);
    if (Hkv === 0 || H % Hkv !== 0) fail(K, `query heads (${H}) must be a multiple of key/value heads (${Hkv})`);
    if (D % 2 !== 0) fail(K, `head_dim must be even, got ${D}`);
    checkInt32(K, 'H·D', H * D); checkInt32(K, 'Hkv·D', Hkv * D);
    const { X, O, norm } = this.blockIO(K, a, out);
    const cacheIO = this.cacheIO(K, a, D);
    const kvLen = B * a.capacity * Hkv * D;
    const kCache = f32(K, () => `kCache (${B}x${a.capacity}x${Hkv}x${D})`, a.kCache, kvLen);
    const vCache = f32(K, () => `vCache (${B}x${a.capacity}x${Hkv}x${D})`, a.vCache, kvLen);
    if (overlaps(kCache, vCache)) fail(K, 'kCache and vCache must be distinct buffers');
    for (const c of [kCache, vCache]) if (overlaps(c, X) || overlaps(c, O)) fail(K, 'the caches must not share memory with x or out');
    const [q, qb] = linearParams(K, 'q_proj', a.q, H * D, C);
    const [k, kb] = linearParams(K, 'k_proj', a.k, Hkv * D, C);
    const [v, vb] = linearParams(K, 'v_proj', a.v, Hkv * D, C);
    const [o, ob] = linearParams(K, 'o_proj', a.o, C, H * D);
    if (a.N === 0) return;
    const dims = Float64Array.of(B, T, C, H, Hkv, D, a.eps, a.scale, a.interleaved ? 1 : 0, a.capacity, a.at);
    this.n.gqaDecode(X, O, [norm, q, k, v, o, qb, kb, vb, ob], dims, cacheIO.cos, cacheIO.sin, cacheIO.positions, cacheIO.keyRange,
      kCache, vCache);
  }

  mlpDecode(a: MlpDecodeArgs, out: Storage): void {
    const K = 'mlpDecode';
    const { N, C, I } = a;
    checkInt32(K, 'I', I);
    const { X, O, norm } = this.blockIO(K, a, out);
    const gate = f32(K, () => `gate_proj (${I}x${C})`, a.gate, I * C);
    const up = f32(K, () => `up_proj (${I}x${C})`, a.up, I * C);
    const down = f32(K, () => `down_proj (${C}x${I})`, a.down, C * I);
    if (N === 0) return;
    this.n.mlpDecode(X, O, [norm, gate, up, down], Float64Array.of(N, C, I, a.eps));
  }

  moeDecode(a: MoeDecodeArgs, out: Storage): void {
    const K = 'moeDecode';
    const { N, C, I, E, G, topkGroup } = a;
    const Kx = a.K;
    checkInt32(K, 'I', I); checkCount(K, 'E', E); checkCount(K, 'K', Kx); checkCount(K, 'G', G); checkCount(K, 'topkGroup', topkGroup);
    if (a.shared) checkInt32(K, 'shared I', a.shared.I);
    if (G === 0 || E % G !== 0) fail(K, `${E} experts do not split into ${G} groups`);
    if (topkGroup < 1 || topkGroup > G) fail(K, `topkGroup ${topkGroup} must be in [1, ${G}]`);
    if (Kx < 1 || Kx > topkGroup * (E / G)) fail(K, `${Kx} experts per token cannot come from ${topkGroup} groups of ${E / G}`);
    if (a.gate.length !== E || a.up.length !== E || a.down.length !== E) {
      fail(K, `${a.gate.length} gate, ${a.up.length} up and ${a.down.length} down weights for ${E} experts`);
    }
    const { X, O, norm } = this.blockIO(K, a, out);
    const router = f32(K, () => `gate.weight (${E}x${C})`, a.router, E * C);
    const bias = f32(K, () => `e_score_correction_bias (${E})`, a.bias, E);
    const gate = a.gate.map((g, e) => f32(K, () => `experts[${e}].gate_proj (${I}x${C})`, g, I * C));
    const up = a.up.map((u, e) => f32(K, () => `experts[${e}].up_proj (${I}x${C})`, u, I * C));
    const down = a.down.map((d, e) => f32(K, () => `experts[${e}].down_proj (${C}x${I})`, d, C * I));
    const Is = a.shared?.I ?? 0;
    const shared = a.shared
      ? [f32(K, () => `shared_experts.gate_proj (${Is}x${C})`, a.shared.gate, Is * C), f32(K, () => `shared_experts.up_proj (${Is}x${C})`, a.shared.up, Is * C),
        f32(K, () => `shared_experts.down_proj (${C}x${Is})`, a.shared.down, C * Is)]
      : [null, null, null];
    const chosen = i32(K, () => `chosen (${N}x${Kx})`, a.chosen, N * Kx);
    if (N === 0) return;
    const dims = Float64Array.of(N, C, I, Is, E, Kx, G, topkGroup, a.normTopk ? 1 : 0, a.scaling, a.eps);
    this.n.moeDecode(X, O, [norm, router, bias, ...shared], dims, gate, up, down, chosen);
  }

  /** x (N, C), out (N, C) (may be x itself), the input norm's weight (C). */
  private blockIO(K: string, a: DecodeBlockArgs, out: Storage): { X: F32; O: F32; norm: F32 } {
    checkInt32(K, 'N', a.N);
    checkInt32(K, 'C', a.C);
    if (!(a.eps >= 0)) fail(K, `eps must be a non-negative number, got ${a.eps}`);
    const n = a.N * a.C;
    const O = f32(K, () => `out (${a.N}x${a.C})`, out, n);
    const X = unaliasSameIndex(f32(K, () => `x (${a.N}x${a.C})`, a.x, n), O);
    return { X, O, norm: f32(K, () => `norm weight (${a.C})`, a.norm, a.C) };
  }

  /** N = B·T tokens, positions inside the rope tables, T writes inside the cache, key ranges ending at at + T. */
  private cacheIO(K: string, a: DecodeCacheArgs & { N: number }, D: number): { cos: F32; sin: F32; positions: I32; keyRange: I32 } {
    const half = D / 2;
    checkCount(K, 'B', a.B);
    checkCount(K, 'T', a.T);
    if (a.B * a.T !== a.N) fail(K, `${a.N} tokens are not ${a.B} rows of ${a.T}`);
    checkCount(K, 'capacity', a.capacity);
    if (!(Number.isInteger(a.at) && a.at >= 0 && a.at + a.T <= a.capacity)) {
      fail(K, `writing ${a.T} token(s) at index ${a.at} overflows the cache's ${a.capacity} positions`);
    }
    const cos = f32(K, 'cos table', a.cos), sin = f32(K, 'sin table', a.sin);
    if (cos.length !== sin.length || half === 0 || cos.length % half !== 0) {
      fail(K, `cos/sin tables of ${cos.length}/${sin.length} values do not hold rows of ${half}`);
    }
    const positions = i32(K, () => `positions (${a.N})`, a.positions, a.N);
    checkIndices(K, 'positions', positions, a.N, cos.length / half);
    const keyRange = i32(K, () => `keyRange (${a.B}x2)`, a.keyRange, 2 * a.B);
    // a row's keys end with this pass's tokens; they may start inside it (left padding of a
    // short prompt: its pad queries see no key and give zeros, as in the op-by-op path)
    const end = a.at + a.T;
    for (let b = 0; b < a.B; b++) {
      const s = keyRange[2 * b], e = keyRange[2 * b + 1];
      if (!(s >= 0 && s <= end && e === end)) fail(K, `keyRange of row ${b} is [${s}, ${e}); this pass needs [start <= ${end}, ${end})`);
    }
    if (!Number.isFinite(a.scale)) fail(K, `scale must be finite, got ${a.scale}`);
    return { cos, sin, positions, keyRange };
  }
}

type F32 = Float32Array;
type I32 = Int32Array;

/** A linear layer's weight (out × in) and bias (out) or null. */
function linearParams(K: string, name: string, p: LinearParams, outF: number, inF: number): [F32, F32 | null] {
  return [f32(K, () => `${name} (${outF}x${inF})`, p.weight, outF * inF), p.bias ? f32(K, () => `${name}.bias (${outF})`, p.bias, outF) : null];
}
