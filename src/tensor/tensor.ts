// Tensor: a dense buffer on a backend plus a shape, and the autograd bookkeeping.
//
// Tensors are always contiguous (row-major). Reshape shares the buffer; transposes and
// slices copy through the backend's strided-copy kernel. This keeps every kernel simple
// (no stride handling beyond the copy and broadcast kernels) at the cost of a copy where a
// view would do; the models are written so that the hot path needs few of them.
import type { Backend, DType, HostArray, Storage } from '../backend/backend.js';
import { defaultBackend } from '../backend/registry.js';
import { product as numel } from '../backend/checks.js';

/** A node of the autograd graph: the op that produced a tensor and how to differentiate it. */
export interface GradNode {
  readonly op: string;
  /** Inputs the gradient flows to (null where none is needed). */
  inputs: (Tensor | null)[];
  /** Given d(loss)/d(output), returns d(loss)/d(input) per input (null: no gradient). */
  backward: (gradOut: Tensor) => (Tensor | null)[];
}

let gradEnabled = true;

/** Runs fn without recording the autograd graph (inference, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try { return fn(); } finally { gradEnabled = prev; }
}
export function isGradEnabled(): boolean { return gradEnabled; }

// Live-tensor accounting, a leak detector for tests, is off unless asked for: a
// FinalizationRegistry entry per tensor costs the garbage collector more with every entry, and
// its cleanup callbacks only run when the event loop turns, which a synchronous training loop
// never lets it do. With every tensor registered, the mean training step of the mini V3 went
// from 0.66 s (steps 1–100) to 0.95 s (steps 201–300); without, 0.59 and 0.64 s.
let liveCounter = 0;
let liveTracking = false;
const liveRegistry = new FinalizationRegistry<void>(() => { liveCounter--; });
/** Count tensors from now on, for liveTensorCount(). */
export function trackLiveTensors(on = true): void { liveTracking = on; }
/** Number of tensors created while tracking was on and not yet garbage collected. */
export function liveTensorCount(): number {
  if (!liveTracking) throw new Error('liveTensorCount: call trackLiveTensors() first');
  return liveCounter;
}

export class Tensor {
  readonly shape: readonly number[];
  readonly size: number;
  /** d(loss)/d(this), filled by backward() on tensors that require grad and are leaves. */
  grad: Tensor | null = null;
  requiresGrad: boolean;
  /** The op that produced this tensor, when it was recorded for autograd. */
  node: GradNode | null = null;
  /** Optional name (parameters carry their checkpoint name). */
  name?: string;

  constructor(readonly storage: Storage, shape: readonly number[], readonly backend: Backend, requiresGrad = false) {
    this.shape = Object.freeze([...shape]);
    this.size = numel(shape);
    if (this.size > storage.length) {
      throw new Error(`tensor of shape [${shape}] needs ${this.size} elements, storage has ${storage.length}`);
    }
    this.requiresGrad = requiresGrad;
    if (liveTracking) {
      liveCounter++;
      liveRegistry.register(this);
    }
  }

  get dtype(): DType { return this.storage.dtype; }
  get ndim(): number { return this.shape.length; }
  /** Size of an axis; negative axes count from the end. */
  dim(axis: number): number { return this.shape[normAxis(axis, this.ndim)]; }

  /** A host copy of the data. */
  toArray(): HostArray {
    const all = this.backend.read(this.storage);
    return all.length === this.size ? all : all.subarray(0, this.size);
  }
  /** The value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new Error(`item() needs a tensor with one element, got shape [${this.shape}]`);
    return this.toArray()[0];
  }
  /** Nested arrays, for printing and tests. */
  toNested(): unknown {
    const data = Array.from(this.toArray());
    const build = (axis: number, offset: number): unknown => {
      if (axis === this.ndim) return data[offset];
      const stride = numel(this.shape.slice(axis + 1));
      return Array.from({ length: this.shape[axis] }, (_, i) => build(axis + 1, offset + i * stride));
    };
    return build(0, 0);
  }

  /** A tensor sharing this buffer, cut from the graph. */
  detach(): Tensor { return new Tensor(this.storage, this.shape, this.backend, false); }

  /** Marks a leaf as trainable (returns this). */
  requireGrad(flag = true): this {
    if (this.node && flag) throw new Error('requireGrad() applies to leaf tensors; this one was produced by an op');
    this.requiresGrad = flag;
    return this;
  }

  toString(): string { return `Tensor(${this.dtype}, [${this.shape}])`; }
}

/** Makes an op's output, recording the node when any input needs a gradient. */
export function makeResult(
  storage: Storage, shape: readonly number[], backend: Backend,
  op: string, inputs: (Tensor | null)[], backward: (g: Tensor) => (Tensor | null)[],
): Tensor {
  const needs = gradEnabled && inputs.some((t) => t !== null && t.requiresGrad);
  const out = new Tensor(storage, shape, backend, needs);
  if (needs) out.node = { op, inputs, backward };
  return out;
}

export { product as numel, contiguousStrides } from '../backend/checks.js';

export function normAxis(axis: number, ndim: number): number {
  const a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim) throw new Error(`axis ${axis} out of range for a tensor of rank ${ndim}`);
  return a;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function assertShape(t: Tensor, shape: readonly number[], what: string): void {
  if (!sameShape(t.shape, shape)) throw new Error(`${what}: expected shape [${shape}], got [${t.shape}]`);
}

export function assertSameBackend(op: string, ...ts: Tensor[]): Backend {
  const b = ts[0].backend;
  for (const t of ts) {
    if (t.backend !== b) throw new Error(`${op}: tensors live on different backends (${b.name} and ${t.backend.name})`);
  }
  return b;
}

/** A new tensor on the default backend (or a given one) from host data. */
export function tensor(data: ArrayLike<number> | number, shape?: readonly number[],
  opts: { dtype?: DType; backend?: Backend; requiresGrad?: boolean } = {}): Tensor {
  const backend = opts.backend ?? defaultBackend();
  const arr: ArrayLike<number> = typeof data === 'number' ? [data] : data;
  const shp = shape ?? (typeof data === 'number' ? [] : [arr.length]);
  if (numel(shp) !== arr.length) throw new Error(`tensor(): ${arr.length} values do not fill shape [${shp}]`);
  const dtype = opts.dtype ?? (arr instanceof Int32Array ? 'i32' : 'f32');
  return new Tensor(backend.upload(arr, dtype), shp, backend, opts.requiresGrad ?? false);
}

export function zeros(shape: readonly number[], opts: { dtype?: DType; backend?: Backend } = {}): Tensor {
  const backend = opts.backend ?? defaultBackend();
  return new Tensor(backend.alloc(opts.dtype ?? 'f32', numel(shape)), shape, backend);
}

export function full(shape: readonly number[], value: number, opts: { dtype?: DType; backend?: Backend } = {}): Tensor {
  const t = zeros(shape, opts);
  if (value !== 0) t.backend.fill(t.storage, value);
  return t;
}
