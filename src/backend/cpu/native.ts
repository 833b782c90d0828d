// Loads the native CPU backend addon (build/Release/r1ts_native.node, built by `npm install`
// through node-gyp from binding.gyp and native/*.cc).
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

type F32 = Float32Array;
type I32 = Int32Array;
type Num = Float32Array | Int32Array;

/** The addon's functions. Arguments are validated by CpuBackend before any call. */
export interface NativeAddon {
  setThreads(n: number): number;
  getThreads(): number;
  info(): {
    threads: number; openblasConfig: string; openblasThreads: number; openblasParallel: number;
    ompProcs: number; attentionKernels: 'avx512' | 'sgemm'; baseline: string; avx512: boolean;
  };
  convert(src: Num, srcOffset: number, dst: Num, dstOffset: number, n: number): void;
  /** layout = [rank, shape, srcStrides, dstStrides] */
  stridedCopy(src: Num, srcOffset: number, dst: Num, dstOffset: number, layout: Float64Array): void;
  gemm(transA: boolean, transB: boolean, m: number, n: number, k: number, alpha: number, beta: number,
    a: F32, aOffset: number, lda: number, strideA: number,
    b: F32, bOffset: number, ldb: number, strideB: number,
    c: F32, cOffset: number, ldc: number, strideC: number, batch: number): void;
  /** layout = [rank, shape, aStrides, bStrides]; out contiguous */
  binary(op: number, a: F32, b: F32, out: F32, layout: Float64Array): void;
  compare(op: number, a: F32, b: F32, out: F32, layout: Float64Array): void;
  unary(op: number, x: F32, out: F32, n: number): void;
  unaryGrad(op: number, x: F32, dy: F32, dx: F32, n: number): void;
  affine(x: F32, alpha: number, beta: number, out: F32, n: number): void;
  where(cond: Num, a: F32, b: F32, out: F32, n: number): void;
  swiglu(gate: F32, up: F32, out: F32, n: number): void;
  swigluGrad(gate: F32, up: F32, dy: F32, dGate: F32, dUp: F32, n: number): void;
  adamw(p: F32, g: F32, m: F32, v: F32, n: number, lr: number, beta1: number, beta2: number, eps: number,
    weightDecay: number, step: number, gradScale: number): void;
  sumAxis(x: F32, out: F32, outer: number, R: number, inner: number): void;
  maxAxis(x: F32, out: F32, argmax: I32 | null, outer: number, R: number, inner: number): void;
  sumSquares(x: F32, n: number): number;
  softmax(x: F32, out: F32, rows: number, cols: number, log: boolean): void;
  softmaxGrad(y: F32, dy: F32, dx: F32, rows: number, cols: number, log: boolean): void;
  rmsNorm(x: F32, w: F32, out: F32, rstd: F32, rows: number, cols: number, eps: number): void;
  rmsNormGrad(x: F32, w: F32, rstd: F32, dy: F32, dx: F32, dw: F32, rows: number, cols: number): void;
  crossEntropy(logits: F32, targets: I32, losses: F32, lse: F32, rows: number, V: number, ignoreIndex: number): void;
  crossEntropyGrad(logits: F32, targets: I32, lse: F32, dloss: F32, dlogits: F32, rows: number, V: number,
    ignoreIndex: number): void;
  rope(x: F32, out: F32, cos: F32, sin: F32, positions: I32, N: number, H: number, D: number,
    interleaved: boolean, inverse: boolean): void;
  gatherRows(src: Num, idx: I32, out: Num, n: number, cols: number): void;
  scatterAddRows(src: F32, idx: I32, weights: F32 | null, out: F32, n: number, cols: number): void;
  moeExperts(x: F32, idx: I32, weights: F32, gate: F32[], up: F32[], down: F32[], out: F32, n: number, k: number, C: number, I: number): void;
  rowDot(a: F32, idx: I32, b: F32, out: F32, n: number, cols: number): void;
  gatherLast(x: Num, idx: I32, out: Num, rows: number, cols: number, k: number): void;
  scatterAddLast(src: F32, idx: I32, out: F32, rows: number, cols: number, k: number): void;
  topk(x: F32, values: F32, indices: I32, rows: number, cols: number, k: number): void;
  attention(q: F32, k: F32, v: F32, keyRange: I32 | null, B: number, T: number, S: number, H: number,
    Hkv: number, Dk: number, Dv: number, scale: number, causal: boolean, vInK: boolean, out: F32, lse: F32): void;
  attentionGrad(q: F32, k: F32, v: F32, keyRange: I32 | null, B: number, T: number, S: number, H: number,
    Hkv: number, Dk: number, Dv: number, scale: number, causal: boolean, vInK: boolean, out: F32, lse: F32, dOut: F32,
    dq: F32, dk: F32, dv: F32): void;
  // Fused decoding blocks (native/decode.cc): weights as listed there, null where absent; dims as listed there.
  mlaDecode(x: F32, out: F32, weights: (F32 | null)[], dims: Float64Array, cos: F32, sin: F32, positions: I32, keyRange: I32,
    latent: F32): void;
  gqaDecode(x: F32, out: F32, weights: (F32 | null)[], dims: Float64Array, cos: F32, sin: F32, positions: I32, keyRange: I32,
    kCache: F32, vCache: F32): void;
  mlpDecode(x: F32, out: F32, weights: (F32 | null)[], dims: Float64Array): void;
  moeDecode(x: F32, out: F32, weights: (F32 | null)[], dims: Float64Array, gate: F32[], up: F32[], down: F32[], chosen: I32): void;
}

const ADDON_PATH = join('build', 'Release', 'r1ts_native.node');

/** The nearest directory at or above `start` with a package.json named r1ts. */
function packageRoot(start: string): string | null {
  let dir = start;
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'r1ts') return dir;
      } catch { /* not ours; keep looking */ }
    }
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

let cached: NativeAddon | null = null;

/** The addon, loaded on first use; throws an Error saying how to build it when it is missing. */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  // Compiled layout: <root>/dist/src/backend/cpu/native.js, so the root is 4 levels up; search
  // upward to be robust, then from the working directory (code compiled outside the tree), and
  // R1TS_NATIVE_ADDON may name the .node file outright.
  const here = dirname(fileURLToPath(import.meta.url));
  const root = packageRoot(here) ?? packageRoot(process.cwd()) ?? join(here, '..', '..', '..', '..');
  const file = process.env.R1TS_NATIVE_ADDON || join(root, ADDON_PATH);
  // OpenMP threads that spin at barriers steal the core from the thread doing the work when
  // anything else runs on the machine (measured with a second busy process on 2 cores: a
  // training step 6.2 s spinning, 0.72 s passive). libgomp reads this when the addon loads it.
  if (process.env.OMP_WAIT_POLICY === undefined && process.env.GOMP_SPINCOUNT === undefined) {
    process.env.OMP_WAIT_POLICY = 'PASSIVE';
  }
  try {
    const require = createRequire(join(root, 'package.json'));
    cached = require(file) as NativeAddon;
    return cached;
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new Error(
      `the native CPU backend addon is not built or failed to load (${file}): ${why}\n` +
      'Build it with `npm install` in the package root (needs g++, make, python3 and OpenBLAS: ' +
      '`apt-get install -y --no-install-recommends libopenblas-openmp-dev g++ make python3`), ' +
      'or use RefBackend.',
      { cause: e },
    );
  }
}

/** Threads used by the native kernels and OpenBLAS (default: R1TS_THREADS or the CPU count). */
export function setThreads(n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new Error(`setThreads: n must be a positive integer, got ${n}`);
  return loadNative().setThreads(n);
}

export function getThreads(): number {
  return loadNative().getThreads();
}
