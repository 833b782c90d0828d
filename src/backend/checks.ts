// Argument checks and shape arithmetic shared by the host backends (native and reference):
// every kernel validates sizes before touching memory, with errors named `<backend>.<kernel>`.
import type { Storage } from './backend.js';

export interface KernelChecks {
  fail(kernel: string, msg: string): never;
  checkCount(kernel: string, what: string, n: number): void;
  /** The common length of the named buffers; throws listing them all when they differ. */
  sameLength(kernel: string, ...named: [string, Storage][]): number;
}

export function kernelChecks(backend: string): KernelChecks {
  const fail = (kernel: string, msg: string): never => {
    throw new Error(`${backend}.${kernel}: ${msg}`);
  };
  return {
    fail,
    checkCount(kernel, what, n) {
      if (!Number.isInteger(n) || n < 0) fail(kernel, `${what} must be a non-negative integer, got ${n}`);
    },
    sameLength(kernel, ...named) {
      const n = named[0][1].length;
      for (const [what, s] of named) {
        if (s.length !== n) fail(kernel, `length mismatch: ${named.map(([w, t]) => `${w}=${t.length}`).join(', ')} (${what})`);
      }
      return n;
    },
  };
}

/** Number of elements of a shape. */
export function product(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides of a dense shape. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) { strides[i] = s; s *= shape[i]; }
  return strides;
}
