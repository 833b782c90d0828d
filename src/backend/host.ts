// Host memory storage, shared by the CPU backends (native and TS reference): a typed array.
import type { DType, HostArray, Storage } from './backend.js';

export class HostStorage implements Storage {
  constructor(readonly dtype: DType, readonly data: HostArray) {}
  get length(): number { return this.data.length; }
}

export function hostArray(dtype: DType, length: number): HostArray {
  switch (dtype) {
    case 'f32': return new Float32Array(length);
    case 'f64': return new Float64Array(length);
    case 'i32': return new Int32Array(length);
  }
}

/** The typed array behind a host storage; a clear error for anything else. */
export function host(s: Storage): HostArray {
  if (!(s instanceof HostStorage)) throw new Error(`expected host memory, got a ${s.constructor.name} (tensors from different backends mixed?)`);
  return s.data;
}
