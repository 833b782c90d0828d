// A seeded, splittable random generator so that runs are reproducible.
// xoshiro128** (Blackman & Vigna): fast, good quality, 128 bits of state that can be saved.
import type { Backend, DType } from '../backend/backend.js';
import { defaultBackend } from '../backend/registry.js';
import { numel, Tensor } from './tensor.js';

export interface RngState { s: number[]; spare: number | null }

export class Rng {
  private s: Uint32Array;
  private spare: number | null = null;

  constructor(seed = 0) {
    this.s = new Uint32Array(4);
    // SplitMix32 expands the seed into the state (never all zero).
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }
  /** Uniform in [0, 1). */
  uniform(): number { return ((this.nextU32() >>> 5) * 67108864 + (this.nextU32() >>> 6)) / 9007199254740992; }
  /** Uniform integer in [0, n). */
  int(n: number): number { return Math.floor(this.uniform() * n); }
  /** Standard normal (Box–Muller, caching the second value). */
  normal(): number {
    if (this.spare !== null) { const v = this.spare; this.spare = null; return v; }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
  /** Fisher–Yates shuffle in place. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) { const j = this.int(i + 1); [a[i], a[j]] = [a[j], a[i]]; }
    return a;
  }
  /** A new generator whose stream is independent of this one's continuation. */
  fork(): Rng { return new Rng(this.nextU32()); }

  /** Serialisable (JSON) state, for checkpoints. */
  getState(): RngState { return { s: [...this.s], spare: this.spare }; }
  setState(state: RngState): void {
    if (!state || !Array.isArray(state.s) || state.s.length !== 4 || !state.s.every((x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32)) {
      throw new Error(`Rng.setState: expected { s: four 32-bit unsigned integers, spare }, got ${JSON.stringify(state)}`);
    }
    this.s = Uint32Array.from(state.s);
    this.spare = typeof state.spare === 'number' ? state.spare : null;
  }
}

function rotl(x: number, k: number): number { return ((x << k) | (x >>> (32 - k))) >>> 0; }

interface RandOpts { backend?: Backend; dtype?: DType; requiresGrad?: boolean }

function fromFn(shape: readonly number[], f: () => number, opts: RandOpts): Tensor {
  const n = numel(shape);
  const host = new Float64Array(n);
  for (let i = 0; i < n; i++) host[i] = f();
  const backend = opts.backend ?? defaultBackend();
  return new Tensor(backend.upload(host, opts.dtype ?? 'f32'), shape, backend, opts.requiresGrad ?? false);
}

/** Normal(mean, std) entries. */
export function randn(shape: readonly number[], rng: Rng, std = 1, mean = 0, opts: RandOpts = {}): Tensor {
  return fromFn(shape, () => mean + std * rng.normal(), opts);
}
/** Uniform [lo, hi) entries. */
export function rand(shape: readonly number[], rng: Rng, lo = 0, hi = 1, opts: RandOpts = {}): Tensor {
  return fromFn(shape, () => lo + (hi - lo) * rng.uniform(), opts);
}
/** Uniform integers in [0, n), i32. */
export function randint(shape: readonly number[], n: number, rng: Rng, opts: { backend?: Backend } = {}): Tensor {
  return fromFn(shape, () => rng.int(n), { ...opts, dtype: 'i32' });
}
