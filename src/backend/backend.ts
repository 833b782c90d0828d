// The Backend: the small set of primitive kernels everything else is composed from.
//
// Every kernel works on opaque Storage handles, so a backend may keep its bytes anywhere
// (host typed arrays on the CPU, device memory on a GPU). Only `read`/`upload` cross the
// host boundary. Shapes and sizes are plain host numbers. All buffers are dense; layouts
// are described by the caller (row-major sizes, strides in elements).
//
// Conventions: "rows × cols" kernels work on the last axis of a contiguous buffer.
// Outputs are written, never accumulated, unless the name or doc says "accumulate".
// Integer buffers (i32) hold token ids and indices.

export type DType = 'f32' | 'f64' | 'i32';
/** Host arrays matching each dtype. */
export type HostArray = Float32Array | Float64Array | Int32Array;

/** A backend-owned buffer. Backends extend it with their own fields. */
export interface Storage {
  readonly dtype: DType;
  /** Number of elements. */
  readonly length: number;
}

export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'max' | 'min' | 'pow';
/** Elementwise unary ops; `unaryGrad` gives dx = dy * f'(x) for each. */
export type UnaryOp =
  | 'neg' | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'square' | 'abs'
  | 'sigmoid' | 'silu' | 'tanh' | 'relu' | 'recip';
export type CompareOp = 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge';

export interface GemmArgs {
  /** C[b] = alpha * op(A[b]) · op(B[b]) + beta * C[b], for b in 0..batch-1; op = transpose if flag. */
  transA: boolean;
  transB: boolean;
  /** Rows of op(A) and C. */
  m: number;
  /** Columns of op(B) and C. */
  n: number;
  /** Columns of op(A) = rows of op(B). */
  k: number;
  alpha: number;
  beta: number;
  a: Storage; aOffset: number; lda: number; strideA: number;
  b: Storage; bOffset: number; ldb: number; strideB: number;
  c: Storage; cOffset: number; ldc: number; strideC: number;
  batch: number;
}

export interface AttentionArgs {
  // q (B, T, H, Dk)   k (B, S, Hkv, Dk)   v (B, S, Hkv, Dv)   out (B, T, H, Dv)   lse (B, H, T)
  // Query head h reads key/value head floor(h / (H / Hkv)) (grouped-query attention).
  // Row b's keys are [first_b, last_b) (`keyRange`, i32 (B, 2); default [0, S)): left padding
  // of batched prompts, and a KV cache of capacity S holding last_b tokens so far.
  // Causal: query t sits at position t + last_b − T and sees keys s ≤ t + last_b − T.
  // A query that sees no key outputs 0 with lse = −∞.
  q: Storage; k: Storage; v: Storage;
  B: number; T: number; S: number; H: number; Hkv: number; Dk: number; Dv: number;
  scale: number;
  causal: boolean;
  keyRange?: Storage | null;
  /**
   * Values are the first Dv entries of each key row (v is ignored; Dv ≤ Dk): MLA decoding
   * over the cached latent, which serves as both. Forward only.
   */
  vInK?: boolean;
}

export interface Backend {
  readonly name: string;
  /** Which dtypes the backend can hold; kernels other than copies require f32 (ref: f32 or f64). */
  readonly dtypes: readonly DType[];

  // ---- memory -----------------------------------------------------------------------------
  /** A zero-filled buffer. */
  alloc(dtype: DType, length: number): Storage;
  /**
   * A buffer whose contents are unspecified, for outputs a kernel overwrites entirely (skips
   * zeroing; on the CPU the memory is recycled from freed tensors without page faults).
   */
  empty(dtype: DType, length: number): Storage;
  /** A buffer holding a copy of `data` (converted to dtype). */
  upload(data: ArrayLike<number>, dtype: DType): Storage;
  /** A host copy of the buffer's contents. */
  read(s: Storage): HostArray;
  fill(s: Storage, value: number): void;
  /** dst[dstOffset + i] = src[srcOffset + i] for i < n; converts between dtypes. */
  copy(src: Storage, srcOffset: number, dst: Storage, dstOffset: number, n: number): void;
  /**
   * General strided copy, converting dtypes: for every index vector i over `shape`,
   * dst[dstOffset + Σ i_d·dstStrides_d] = src[srcOffset + Σ i_d·srcStrides_d].
   * Covers transpose/permute, slicing, concatenation, and broadcast-expansion (stride 0).
   */
  stridedCopy(
    src: Storage, srcOffset: number, srcStrides: readonly number[],
    dst: Storage, dstOffset: number, dstStrides: readonly number[],
    shape: readonly number[],
  ): void;

  // ---- dense linear algebra ------------------------------------------------------------------
  gemm(args: GemmArgs): void;

  // ---- elementwise ----------------------------------------------------------------------------
  /**
   * out (contiguous, `shape`) = a op b, where a and b are read through strides (0 on broadcast
   * axes). a/b strides have the same rank as shape.
   */
  binary(op: BinaryOp, a: Storage, aStrides: readonly number[], b: Storage, bStrides: readonly number[],
    out: Storage, shape: readonly number[]): void;
  /** Like binary, producing 1.0 / 0.0 in an f32 output. */
  compare(op: CompareOp, a: Storage, aStrides: readonly number[], b: Storage, bStrides: readonly number[],
    out: Storage, shape: readonly number[]): void;
  unary(op: UnaryOp, x: Storage, out: Storage): void;
  /** dx = dy * f'(x), elementwise. */
  unaryGrad(op: UnaryOp, x: Storage, dy: Storage, dx: Storage): void;
  /** out = alpha * x + beta, elementwise. */
  affine(x: Storage, alpha: number, beta: number, out: Storage): void;
  /** out = cond != 0 ? a : b, elementwise, all the same length. */
  where(cond: Storage, a: Storage, b: Storage, out: Storage): void;

  // ---- reductions (x viewed as (outer, R, inner), reducing R) -------------------------------
  sumAxis(x: Storage, out: Storage, outer: number, R: number, inner: number): void;
  /** Max over R; `argmax` (i32, optional) receives the index in 0..R-1 of the first maximum. */
  maxAxis(x: Storage, out: Storage, argmax: Storage | null, outer: number, R: number, inner: number): void;
  /** Σ x², as a host number (for global gradient norms). */
  sumSquares(x: Storage): number;

  // ---- row kernels over the last axis -------------------------------------------------------
  /** Softmax (or log-softmax when `log`) over the last axis of (rows, cols). */
  softmax(x: Storage, out: Storage, rows: number, cols: number, log: boolean): void;
  /** Given y = (log)softmax(x) and dy, dx. softmax: dx = y*(dy - Σ dy*y); log: dx = dy - exp(y)*Σ dy. */
  softmaxGrad(y: Storage, dy: Storage, dx: Storage, rows: number, cols: number, log: boolean): void;
  /** out = x * rsqrt(mean(x²) + eps) * w; rstd (rows) receives rsqrt(mean(x²)+eps). */
  rmsNorm(x: Storage, w: Storage, out: Storage, rstd: Storage, rows: number, cols: number, eps: number): void;
  /** dx is written; dw (cols) is accumulated into. */
  rmsNormGrad(x: Storage, w: Storage, rstd: Storage, dy: Storage, dx: Storage, dw: Storage,
    rows: number, cols: number): void;
  /** out = silu(gate) * up. */
  swiglu(gate: Storage, up: Storage, out: Storage): void;
  swigluGrad(gate: Storage, up: Storage, dy: Storage, dGate: Storage, dUp: Storage): void;
  /**
   * Rotary embedding on x (N, H, D) where row n has position positions[n] (i32, length N).
   * cos/sin are (maxPos, D/2) tables. Pair j (frequency j) is (x[2j], x[2j+1]) when
   * `interleaved`, else (x[j], x[j + D/2]). Rotation: (a, b) → (a·c − b·s, a·s + b·c);
   * `inverse` rotates by the negative angle (the backward pass).
   */
  rope(x: Storage, out: Storage, cos: Storage, sin: Storage, positions: Storage,
    N: number, H: number, D: number, interleaved: boolean, inverse: boolean): void;

  // ---- indexing -----------------------------------------------------------------------------
  /** out[i, :] = src[idx[i], :] for i < n (idx i32). */
  gatherRows(src: Storage, idx: Storage, out: Storage, n: number, cols: number): void;
  /** out[idx[i], :] += (weights ? weights[i] : 1) * src[i, :] for i < n (accumulate). */
  scatterAddRows(src: Storage, idx: Storage, weights: Storage | null, out: Storage, n: number, cols: number): void;
  /**
   * The routed experts of a MoE layer, for inference (no gradient): for each token t < n and
   * slot j < k, with e = idx[t, j],
   *   out[t, :] += weights[t, j] · down[e] (silu(gate[e] x[t]) ⊙ up[e] x[t])   (accumulates)
   * x (n, C); gate[e], up[e] (I, C) and down[e] (C, I), row-major as Linear weights; idx i32 and
   * weights (n, k). One call for what is otherwise a gather, three grouped GEMMs and a scatter.
   */
  moeExperts(x: Storage, idx: Storage, weights: Storage, gate: readonly Storage[], up: readonly Storage[],
    down: readonly Storage[], out: Storage, n: number, k: number, C: number, I: number): void;
  /** out[i] = Σ_c a[idx[i], c] * b[i, c] (the gradient of a scatter weight). */
  rowDot(a: Storage, idx: Storage, b: Storage, out: Storage, n: number, cols: number): void;
  /** out[r, j] = x[r, idx[r, j]] for x (rows, cols), idx (rows, k). */
  gatherLast(x: Storage, idx: Storage, out: Storage, rows: number, cols: number, k: number): void;
  /** out[r, idx[r, j]] += src[r, j] (accumulate). */
  scatterAddLast(src: Storage, idx: Storage, out: Storage, rows: number, cols: number, k: number): void;
  /**
   * The k largest of each row of x (rows, cols), in descending order; ties keep the lower
   * index first. values f32 (rows, k), indices i32 (rows, k).
   */
  topk(x: Storage, values: Storage, indices: Storage, rows: number, cols: number, k: number): void;

  // ---- fused kernels ------------------------------------------------------------------------
  /**
   * Scaled-dot-product attention (see AttentionArgs); writes out and lse (log-sum-exp of the
   * scaled scores per query, needed by the backward). Memory is linear in S.
   */
  attention(a: AttentionArgs, out: Storage, lse: Storage): void;
  /** Recomputes probabilities from lse; writes dq, dk, dv (not accumulated). */
  attentionGrad(a: AttentionArgs, out: Storage, lse: Storage, dOut: Storage,
    dq: Storage, dk: Storage, dv: Storage): void;
  /**
   * Cross-entropy of logits (rows, V) against targets (i32, rows); rows whose target equals
   * ignoreIndex give loss 0. Writes per-row losses and per-row log-sum-exp.
   */
  crossEntropy(logits: Storage, targets: Storage, losses: Storage, lse: Storage,
    rows: number, V: number, ignoreIndex: number): void;
  /** dlogits[r] = dloss[r] * (softmax(logits[r]) − onehot(target[r])); ignored rows get 0. */
  crossEntropyGrad(logits: Storage, targets: Storage, lse: Storage, dloss: Storage, dlogits: Storage,
    rows: number, V: number, ignoreIndex: number): void;
  /**
   * One AdamW step in place (decoupled weight decay):
   *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g²
   *   p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) + lr * wd * p
   * `gradScale` multiplies g first (gradient clipping folded in).
   */
  adamw(p: Storage, g: Storage, m: Storage, v: Storage, o: AdamWStep): void;

  // ---- fused decoding blocks (optional) -----------------------------------------------------
  // One call per block of a decoder layer, input norm and residual included, for a few new
  // tokens (B rows of T each): out (B·T, C) = x + block(RMSNorm(x)). Decoding one or a few
  // sequences spends more on the ~25 calls, allocations and copies of a block run op by op than
  // on its arithmetic. A backend without them runs the blocks op by op (the models' own
  // forward), which is also their reference in the tests.
  /** DeepSeek-V3's Multi-head Latent Attention over the latent cache (W^UK, W^UV absorbed). */
  mlaDecode?(a: MlaDecodeArgs, out: Storage): void;
  /** Llama / Qwen2 grouped-query attention over a key/value cache. */
  gqaDecode?(a: GqaDecodeArgs, out: Storage): void;
  /** A SwiGLU MLP block. */
  mlpDecode?(a: MlpDecodeArgs, out: Storage): void;
  /** A DeepSeekMoE block: router, group-limited top-K, routed and shared experts. */
  moeDecode?(a: MoeDecodeArgs, out: Storage): void;
}

/** A linear layer's weight (out, in) and bias (out) or null. */
export interface LinearParams { weight: Storage; bias: Storage | null }

/** What every fused decoding block reads: x (N, C), N tokens, and its input RMSNorm (weight (C), ε). */
export interface DecodeBlockArgs {
  N: number; C: number;
  x: Storage;
  norm: Storage; eps: number;
}

/**
 * An attention block's cache side, for N = B·T tokens (row b's T new tokens are x's rows b·T ..
 * b·T + T − 1): they are written at indices [at, at + T) of a buffer of `capacity` positions per
 * row, and row b's keys are [keyRange[b, 0], at + T), causal among the new tokens; positions i32
 * (N); rope tables cos/sin (maxPos, D/2), pairs interleaved or split in halves.
 */
export interface DecodeCacheArgs {
  B: number; T: number;
  capacity: number; at: number;
  keyRange: Storage; positions: Storage;
  cos: Storage; sin: Storage; interleaved: boolean;
  scale: number;
}

export interface MlaDecodeArgs extends DecodeBlockArgs, DecodeCacheArgs {
  H: number; Dn: number; Dr: number; Dv: number;
  /** q_lora_rank, or 0 when queries come from a single q_proj. */
  Lq: number;
  Lkv: number;
  /** ε of q_a_layernorm and kv_a_layernorm. */
  mlaEps: number;
  qA: LinearParams | null; qANorm: Storage | null; qB: Storage | null; q: Storage | null;
  kvA: LinearParams; kvANorm: Storage; kvB: Storage; o: LinearParams;
  /** The latent cache (B, capacity, 1, Lkv + Dr): [RMSNorm(c_KV) ; RoPE(k_R)] per token. */
  latent: Storage;
}

export interface GqaDecodeArgs extends DecodeBlockArgs, DecodeCacheArgs {
  H: number; Hkv: number; D: number;
  q: LinearParams; k: LinearParams; v: LinearParams; o: LinearParams;
  /** (B, capacity, Hkv, D) each. */
  kCache: Storage; vCache: Storage;
}

export interface MlpDecodeArgs extends DecodeBlockArgs {
  I: number;
  gate: Storage; up: Storage; down: Storage;
}

export interface MoeDecodeArgs extends DecodeBlockArgs {
  /** moe_intermediate_size; experts E, K per token, G groups of which topkGroup are kept. */
  I: number; E: number; K: number; G: number; topkGroup: number;
  normTopk: boolean; scaling: number;
  /** Router weight (E, C) and selection bias (E). */
  router: Storage; bias: Storage;
  gate: readonly Storage[]; up: readonly Storage[]; down: readonly Storage[];
  shared: { I: number; gate: Storage; up: Storage; down: Storage } | null;
  /** i32 (N, K): receives each token's chosen experts. */
  chosen: Storage;
}

export interface AdamWStep {
  lr: number; beta1: number; beta2: number; eps: number; weightDecay: number;
  /** 1-based step number, for bias correction. */
  step: number;
  gradScale: number;
}
