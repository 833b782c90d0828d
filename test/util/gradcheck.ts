// Finite-difference gradient checking in float64 on the reference backend.
import assert from 'node:assert/strict';
import { RefBackend } from '../../src/backend/ref/ref.js';
import { host } from '../../src/backend/host.js';
import { backward, mul, noGrad, randn, Rng, sum, Tensor, tensor } from '../../src/tensor/index.js';

export const ref = new RefBackend();

/** A random f64 tensor on the reference backend that requires grad. */
export function param(shape: number[], rng: Rng, opts: { lo?: number; std?: number } = {}): Tensor {
  const t = randn(shape, rng, opts.std ?? 1, 0, { backend: ref, dtype: 'f64' });
  if (opts.lo !== undefined) {
    const d = host(t.storage);
    for (let i = 0; i < d.length; i++) d[i] = opts.lo + Math.abs(d[i]);
  }
  return t.requireGrad();
}

export function ids(values: number[], shape?: number[]): Tensor {
  return tensor(Int32Array.from(values), shape ?? [values.length], { backend: ref, dtype: 'i32' });
}

/**
 * Checks d/dx of sum(f(inputs) · W) (W random, fixed) against central differences for every
 * element of every input that requires grad. Relative tolerance on each gradient's norm of
 * difference, plus an elementwise absolute bound.
 */
export function gradcheck(name: string, f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: { eps?: number; tol?: number; seed?: number } = {}): void {
  const eps = opts.eps ?? 1e-6;
  const tol = opts.tol ?? 1e-6;
  const rng = new Rng(opts.seed ?? 1234);
  const probe = noGrad(() => f(...inputs));
  const w = randn([...probe.shape], rng, 1, 0, { backend: ref, dtype: 'f64' });
  const objective = (): Tensor => sum(mul(f(...inputs), w));

  for (const x of inputs) x.grad = null;
  backward(objective());
  for (const [k, x] of inputs.entries()) {
    if (!x.requiresGrad) continue;
    const data = host(x.storage);
    const numeric = new Float64Array(x.size);
    for (let i = 0; i < x.size; i++) {
      const orig = data[i];
      data[i] = orig + eps;
      const plus = noGrad(() => objective().item());
      data[i] = orig - eps;
      const minus = noGrad(() => objective().item());
      data[i] = orig;
      numeric[i] = (plus - minus) / (2 * eps);
    }
    // No gradient means zero: the input did not influence the output (e.g. an unused expert).
    const analytic = x.grad ? x.grad.toArray() : new Float64Array(x.size);
    let diff = 0, norm = 0;
    for (let i = 0; i < x.size; i++) { diff += (analytic[i] - numeric[i]) ** 2; norm += numeric[i] ** 2; }
    const rel = Math.sqrt(diff) / Math.max(Math.sqrt(norm), 1e-12);
    assert.ok(rel < tol || Math.sqrt(diff) < tol, `${name}: input ${k} gradient differs from finite differences (relative ${rel.toExponential(2)})\n analytic ${Array.from(analytic.slice(0, 6))}\n numeric  ${Array.from(numeric.slice(0, 6))}`);
  }
}
