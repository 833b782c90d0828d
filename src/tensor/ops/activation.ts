// SwiGLU (fused): silu(gate) * up, the MLP nonlinearity of Llama, Qwen2 and DeepSeek-V3.
import { assertSameBackend, makeResult, sameShape, Tensor } from '../tensor.js';

export function swiglu(gate: Tensor, up: Tensor): Tensor {
  const backend = assertSameBackend('swiglu', gate, up);
  if (!sameShape(gate.shape, up.shape)) throw new Error(`swiglu: gate [${gate.shape}] and up [${up.shape}] differ`);
  const y = backend.empty(gate.dtype, gate.size);
  backend.swiglu(gate.storage, up.storage, y);
  return makeResult(y, gate.shape, backend, 'swiglu', [gate, up], (g) => {
    const dGate = backend.empty(g.dtype, gate.size);
    const dUp = backend.empty(g.dtype, gate.size);
    backend.swigluGrad(gate.storage, up.storage, g.storage, dGate, dUp);
    return [new Tensor(dGate, gate.shape, backend), new Tensor(dUp, up.shape, backend)];
  });
}
