// The basic layers: Linear, Embedding, RMSNorm, and the SwiGLU MLP shared by every model here.
import type { Backend, LinearParams } from '../backend/backend.js';
import { embedding, full, linear, randn, rmsNorm, Rng, swiglu, Tensor, zeros } from '../tensor/index.js';
import { Module } from './module.js';

export interface InitOptions { rng: Rng; std: number; backend?: Backend }

/** y = x Wᵀ + b with W (out, in), initialised N(0, std) as Hugging Face models are. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, bias: boolean, init: InitOptions) {
    super();
    this.weight = this.param('weight', randn([outFeatures, inFeatures], init.rng, init.std, 0, { backend: init.backend }));
    this.bias = bias ? this.param('bias', zeros([outFeatures], { backend: init.backend })) : null;
  }
  forward(x: Tensor): Tensor { return linear(x, this.weight, this.bias); }
  /** Weight and bias as a fused kernel takes them. */
  get kernelArgs(): LinearParams { return { weight: this.weight.storage, bias: this.bias?.storage ?? null }; }
}

export class Embedding extends Module {
  readonly weight: Tensor;
  constructor(readonly numEmbeddings: number, readonly dim: number, init: InitOptions) {
    super();
    this.weight = this.param('weight', randn([numEmbeddings, dim], init.rng, init.std, 0, { backend: init.backend }));
  }
  forward(ids: Tensor): Tensor { return embedding(this.weight, ids); }
}

export class RMSNorm extends Module {
  readonly weight: Tensor;
  constructor(readonly dim: number, readonly eps: number, backend?: Backend) {
    super();
    this.weight = this.param('weight', full([dim], 1, { backend }));
  }
  forward(x: Tensor): Tensor { return rmsNorm(x, this.weight, this.eps); }
}

/** down(silu(gate(x)) * up(x)): the feed-forward block of Llama, Qwen2 and DeepSeek-V3. */
export class SwiGLUMLP extends Module {
  readonly gate_proj: Linear;
  readonly up_proj: Linear;
  readonly down_proj: Linear;
  constructor(hidden: number, intermediate: number, init: InitOptions) {
    super();
    this.gate_proj = this.module('gate_proj', new Linear(hidden, intermediate, false, init));
    this.up_proj = this.module('up_proj', new Linear(hidden, intermediate, false, init));
    this.down_proj = this.module('down_proj', new Linear(intermediate, hidden, false, init));
  }
  forward(x: Tensor): Tensor {
    return this.down_proj.forward(swiglu(this.gate_proj.forward(x), this.up_proj.forward(x)));
  }

  /** x + forward(norm(x)) for a few new tokens (B, T, C) at inference, in one backend call. */
  decodeStep(x: Tensor, norm: RMSNorm): Tensor {
    const [B, T, C] = x.shape;
    const out = x.backend.empty('f32', B * T * C);
    x.backend.mlpDecode!({
      N: B * T, C, x: x.storage, norm: norm.weight.storage, eps: norm.eps, I: this.gate_proj.outFeatures,
      gate: this.gate_proj.weight.storage, up: this.up_proj.weight.storage, down: this.down_proj.weight.storage,
    }, out);
    return new Tensor(out, x.shape, x.backend);
  }
}
