// Module: a tree of named parameters, named as in Hugging Face checkpoints
// ("model.layers.0.self_attn.q_a_proj.weight"), so that loading and saving need no renaming.
import { Tensor } from '../tensor/index.js';

export abstract class Module {
  private readonly params = new Map<string, Tensor>();
  private readonly buffers = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();
  /** False in inference mode (no effect on the ops here; models may consult it). */
  training = true;

  /** Registers a trainable parameter. */
  protected param(name: string, t: Tensor): Tensor {
    t.requireGrad(true);
    this.params.set(name, t);
    return t;
  }
  /** Registers a saved, non-trainable tensor (e.g. MoE e_score_correction_bias). */
  protected buffer(name: string, t: Tensor): Tensor {
    this.buffers.set(name, t);
    return t;
  }
  protected module<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  /** Every parameter with its full name (depth-first, registration order). */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, t] of this.params) out.push([prefix + n, t]);
    for (const [n, m] of this.children) out.push(...m.namedParameters(`${prefix}${n}.`));
    return out;
  }
  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, t] of this.buffers) out.push([prefix + n, t]);
    for (const [n, m] of this.children) out.push(...m.namedBuffers(`${prefix}${n}.`));
    return out;
  }
  parameters(): Tensor[] { return this.namedParameters().map(([, t]) => t); }
  /** Parameters and buffers by checkpoint name. */
  stateDict(): Map<string, Tensor> { return new Map([...this.namedParameters(), ...this.namedBuffers()]); }

  /** Sets each parameter's `name` to its full checkpoint name (for error messages). */
  nameTensors(): this {
    for (const [n, t] of [...this.namedParameters(), ...this.namedBuffers()]) t.name = n;
    return this;
  }

  /**
   * Copies host values into the parameters/buffers by checkpoint name (the tensors keep
   * their identity, so modules' fields stay valid). Fails loudly on a missing or unused key,
   * or a shape mismatch, unless `strict` is false (then missing keys are returned).
   */
  loadState(get: (name: string, shape: readonly number[]) => ArrayLike<number> | undefined, strict = true): string[] {
    const missing: string[] = [];
    for (const [name, t] of this.stateDict()) {
      const data = get(name, t.shape);
      if (data === undefined) { missing.push(name); continue; }
      if (data.length !== t.size) throw new Error(`${name}: checkpoint has ${data.length} values, the model expects shape [${t.shape}]`);
      t.backend.copy(t.backend.upload(data, t.dtype), 0, t.storage, 0, t.size);
    }
    if (strict && missing.length) throw new Error(`checkpoint lacks ${missing.length} tensors the model needs: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`);
    return missing;
  }

  train(flag = true): this {
    this.training = flag;
    for (const m of this.children.values()) m.train(flag);
    return this;
  }
  eval(): this { return this.train(false); }

  /** Clears every parameter's gradient. */
  zeroGrad(): void { for (const p of this.parameters()) p.grad = null; }
}

/** A list of modules named 0, 1, 2… as in PyTorch's nn.ModuleList. */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[];
  constructor(items: M[]) {
    super();
    this.items = items;
    items.forEach((m, i) => this.module(String(i), m));
  }
  get length(): number { return this.items.length; }
  at(i: number): M { return this.items[i]; }
}
