// Rotary position embedding tables: inverse frequencies (default, linear, YaRN, Llama 3) and
// the cos/sin tables the rope op reads. YaRN follows "YaRN: Efficient Context Window Extension"
// as Hugging Face transformers implements it for DeepSeek-V3.
import type { Backend } from '../backend/backend.js';
import { Tensor, tensor } from '../tensor/index.js';
import type { RopeConfig } from '../models/config.js';

/** The rope settings a model needs: config.ts normalises them from either HF config style. */
export type RopeParams = RopeConfig;

/** YaRN's attention-temperature correction: 0.1·m·ln(s) + 1 for scale s > 1. */
export function yarnMscale(scale: number, mscale = 1): number {
  return scale <= 1 ? 1 : 0.1 * mscale * Math.log(scale) + 1;
}

/** Inverse frequencies (dim/2 of them) and the factor that multiplies cos and sin. */
export function ropeFrequencies(p: RopeParams, dim: number, maxPositions: number): { invFreq: Float64Array; attentionFactor: number } {
  const half = dim / 2;
  const base = new Float64Array(half);
  for (let i = 0; i < half; i++) base[i] = 1 / p.theta ** ((2 * i) / dim);
  const type: string = p.type ?? 'default';
  if (type === 'default') return { invFreq: base, attentionFactor: 1 };
  const factor = p.factor ?? 1;
  if (type === 'linear') return { invFreq: base.map((f) => f / factor), attentionFactor: 1 };
  if (type === 'yarn') {
    const original = p.originalMaxPositions ?? maxPositions;
    const attentionFactor = p.attentionFactor
      ?? (p.mscale && p.mscaleAllDim ? yarnMscale(factor, p.mscale) / yarnMscale(factor, p.mscaleAllDim) : yarnMscale(factor));
    // Dimensions that rotate fewer than betaSlow times over the original context are
    // interpolated (divided by factor); more than betaFast times, kept; a linear ramp between.
    const correctionDim = (rotations: number): number =>
      (dim * Math.log(original / (rotations * 2 * Math.PI))) / (2 * Math.log(p.theta));
    let low = correctionDim(p.betaFast ?? 32);
    let high = correctionDim(p.betaSlow ?? 1);
    if (p.truncate ?? true) { low = Math.floor(low); high = Math.ceil(high); }
    low = Math.max(low, 0);
    high = Math.min(high, dim - 1);
    if (low === high) high += 0.001;
    const invFreq = new Float64Array(half);
    for (let i = 0; i < half; i++) {
      const ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
      const extrapolation = 1 - ramp;
      invFreq[i] = (base[i] / factor) * (1 - extrapolation) + base[i] * extrapolation;
    }
    return { invFreq, attentionFactor };
  }
  if (type === 'llama3') {
    const original = p.originalMaxPositions ?? 8192;
    const lowWavelen = original / (p.lowFreqFactor ?? 1);
    const highWavelen = original / (p.highFreqFactor ?? 4);
    const invFreq = base.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highWavelen) return f;
      if (wavelen > lowWavelen) return f / factor;
      const smooth = (original / wavelen - (p.lowFreqFactor ?? 1)) / ((p.highFreqFactor ?? 4) - (p.lowFreqFactor ?? 1));
      return (1 - smooth) * (f / factor) + smooth * f;
    });
    return { invFreq, attentionFactor: 1 };
  }
  throw new Error(`unsupported rope type '${type}' (supported: default, linear, yarn, llama3)`);
}

/** cos/sin tables (maxPositions, dim/2), attention factor folded in. */
export class RotaryTables {
  readonly cos: Tensor;
  readonly sin: Tensor;
  constructor(p: RopeParams, readonly dim: number, readonly maxPositions: number, backend?: Backend) {
    const { invFreq, attentionFactor } = ropeFrequencies(p, dim, maxPositions);
    const half = dim / 2;
    const c = new Float64Array(maxPositions * half);
    const s = new Float64Array(maxPositions * half);
    for (let pos = 0; pos < maxPositions; pos++) {
      for (let i = 0; i < half; i++) {
        // Angles in float32 as the reference computes them (position × inv_freq in fp32).
        const angle = Math.fround(Math.fround(pos) * Math.fround(invFreq[i]));
        c[pos * half + i] = Math.cos(angle) * attentionFactor;
        s[pos * half + i] = Math.sin(angle) * attentionFactor;
      }
    }
    this.cos = tensor(c, [maxPositions, half], { backend });
    this.sin = tensor(s, [maxPositions, half], { backend });
  }
}
