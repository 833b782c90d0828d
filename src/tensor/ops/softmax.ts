// Softmax and log-softmax over the last axis.
import { makeResult, Tensor } from '../tensor.js';

function softmaxImpl(x: Tensor, log: boolean): Tensor {
  const cols = x.shape[x.ndim - 1];
  const rows = x.size / cols;
  const y = x.backend.empty(x.dtype, x.size);
  x.backend.softmax(x.storage, y, rows, cols, log);
  const out: Tensor = makeResult(y, x.shape, x.backend, log ? 'logSoftmax' : 'softmax', [x], (g) => {
    const dx = x.backend.empty(g.dtype, x.size);
    x.backend.softmaxGrad(y, g.storage, dx, rows, cols, log);
    return [new Tensor(dx, x.shape, x.backend)];
  });
  return out;
}

export const softmax = (x: Tensor): Tensor => softmaxImpl(x, false);
export const logSoftmax = (x: Tensor): Tensor => softmaxImpl(x, true);
