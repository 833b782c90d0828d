// AdamW (fused kernel), global-norm gradient clipping, and optimizer state save/restore.
import { Tensor, zeros } from '../tensor/index.js';

export interface AdamWConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const defaultAdamW: AdamWConfig = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };

/** Serialisable optimizer state: step count and the moments, by parameter name. */
export interface AdamWState {
  step: number;
  moments: Record<string, { m: Float32Array; v: Float32Array }>;
}

export class AdamW {
  readonly config: AdamWConfig;
  step = 0;
  private readonly m: Tensor[];
  private readonly v: Tensor[];

  /**
   * `params` as [name, tensor]; names key the saved state. Parameters named by
   * `noDecay` (default: 1-D tensors — norms and biases) get no weight decay.
   */
  constructor(readonly params: readonly [string, Tensor][], config: Partial<AdamWConfig> = {},
    readonly noDecay: (name: string, t: Tensor) => boolean = (_n, t) => t.ndim < 2) {
    this.config = { ...defaultAdamW, ...config };
    this.m = params.map(([, p]) => zeros(p.shape, { backend: p.backend, dtype: p.dtype }));
    this.v = params.map(([, p]) => zeros(p.shape, { backend: p.backend, dtype: p.dtype }));
  }

  /**
   * One update with the current gradients. `lr` overrides the configured rate (schedules);
   * `gradScale` multiplies every gradient (clipping folded into the same pass).
   */
  update(opts: { lr?: number; gradScale?: number } = {}): void {
    this.step++;
    const c = this.config;
    this.params.forEach(([name, p], i) => {
      if (!p.grad) return; // a parameter unused this step (e.g. an idle expert) keeps its moments
      p.backend.adamw(p.storage, p.grad.storage, this.m[i].storage, this.v[i].storage, {
        lr: opts.lr ?? c.lr, beta1: c.beta1, beta2: c.beta2, eps: c.eps,
        weightDecay: this.noDecay(name, p) ? 0 : c.weightDecay,
        step: this.step, gradScale: opts.gradScale ?? 1,
      });
    });
  }

  zeroGrad(): void { for (const [, p] of this.params) p.grad = null; }

  getState(): AdamWState {
    const moments: AdamWState['moments'] = {};
    this.params.forEach(([name], i) => {
      moments[name] = { m: Float32Array.from(this.m[i].toArray()), v: Float32Array.from(this.v[i].toArray()) };
    });
    return { step: this.step, moments };
  }

  setState(state: AdamWState): void {
    this.params.forEach(([name, p], i) => {
      const s = state.moments[name];
      if (!s) throw new Error(`optimizer state has no moments for parameter ${name}`);
      if (s.m.length !== p.size || s.v.length !== p.size) {
        throw new Error(`optimizer state for ${name} has ${s.m.length} values, the parameter has shape [${p.shape}]`);
      }
      p.backend.copy(p.backend.upload(s.m, p.dtype), 0, this.m[i].storage, 0, p.size);
      p.backend.copy(p.backend.upload(s.v, p.dtype), 0, this.v[i].storage, 0, p.size);
    });
    this.step = state.step;
  }
}

/** The global L2 norm of all gradients. */
export function gradNorm(params: readonly Tensor[]): number {
  let sq = 0;
  for (const p of params) if (p.grad) sq += p.backend.sumSquares(p.grad.storage);
  return Math.sqrt(sq);
}

/**
 * Global-norm clipping as a scale factor (applied inside the optimizer's pass):
 * returns { norm, scale } with scale = min(1, maxNorm / norm).
 */
export function clipScale(params: readonly Tensor[], maxNorm: number): { norm: number; scale: number } {
  const norm = gradNorm(params);
  if (!Number.isFinite(norm)) throw new Error(`gradient norm is ${norm}: the loss diverged or an input was not finite`);
  return { norm, scale: maxNorm > 0 && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1 };
}
