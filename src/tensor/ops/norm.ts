// RMSNorm (fused): y = x / sqrt(mean(x²) + eps) * w over the last axis.
import { assertSameBackend, makeResult, Tensor } from '../tensor.js';

export function rmsNorm(x: Tensor, w: Tensor, eps: number): Tensor {
  const backend = assertSameBackend('rmsNorm', x, w);
  const cols = x.shape[x.ndim - 1];
  if (w.size !== cols) throw new Error(`rmsNorm: weight of shape [${w.shape}] for rows of ${cols}${w.name ? ` (${w.name})` : ''}`);
  const rows = x.size / cols;
  const y = backend.empty(x.dtype, x.size);
  const rstd = backend.empty(x.dtype, rows);
  backend.rmsNorm(x.storage, w.storage, y, rstd, rows, cols, eps);
  return makeResult(y, x.shape, backend, 'rmsNorm', [x, w], (g) => {
    const dx = backend.empty(g.dtype, x.size);
    const dw = backend.alloc(g.dtype, cols);
    backend.rmsNormGrad(x.storage, w.storage, rstd, g.storage, dx, dw, rows, cols);
    return [new Tensor(dx, x.shape, backend), new Tensor(dw, w.shape, backend)];
  });
}
