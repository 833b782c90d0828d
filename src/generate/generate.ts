// Batched generation with a KV cache: left-pad the prompts, prefill once, then decode one
// token per row per step until every row has stopped (stop token, stop string or length).
import { noGrad, reshape, Tensor, tensor } from '../tensor/index.js';
import { Rng } from '../tensor/random.js';
import type { CausalLM } from '../models/common.js';
import { KVCache } from './kv-cache.js';
import { GREEDY, sampleToken, SamplingParams } from './sampler.js';

export interface GenerateOptions {
  maxNewTokens: number;
  sampling?: SamplingParams;
  /** Generation stops for a row when it produces one of these ids (kept in the output). */
  stopTokens?: number[];
  /** ...or when its decoded completion contains one of these strings (needs `decode`). */
  stopStrings?: string[];
  decode?: (ids: number[]) => string;
  seed?: number;
  rng?: Rng;
  /** Token used to left-pad shorter prompts (never attended to). */
  padId?: number;
}

export type FinishReason = 'stop_token' | 'stop_string' | 'length';

export interface Completion {
  /** The generated ids (prompt excluded). */
  tokens: number[];
  /** log p(token) under the model (temperature 1) for each generated token. */
  logprobs: number[];
  finishReason: FinishReason;
}

/** Generates a completion for each prompt (token ids), all rows in one batch. */
export function generate(model: CausalLM, prompts: number[][], opts: GenerateOptions): Completion[] {
  if (prompts.length === 0) return [];
  if (prompts.some((p) => p.length === 0)) throw new Error('generate: every prompt needs at least one token');
  const backend = model.parameters()[0].backend;
  const sampling = opts.sampling ?? GREEDY;
  const rng = opts.rng ?? new Rng(opts.seed ?? 0);
  const stopTokens = new Set(opts.stopTokens ?? []);
  if (opts.stopStrings?.length && !opts.decode) throw new Error('generate: stopStrings need a decode function');
  const B = prompts.length;
  const P = Math.max(...prompts.map((p) => p.length));
  const maxPositions = model.config.max_position_embeddings;
  if (P + opts.maxNewTokens > maxPositions) {
    throw new Error(`generate: prompt (${P}) + maxNewTokens (${opts.maxNewTokens}) exceed max_position_embeddings ${maxPositions}`);
  }

  return noGrad(() => {
    const starts = Int32Array.from(prompts, (p) => P - p.length);
    const cache = new KVCache(B, P + opts.maxNewTokens, starts, backend);
    // Prefill: left-padded prompts; pads get position 0 and are masked out as keys.
    const ids = new Int32Array(B * P).fill(opts.padId ?? 0);
    const pos = new Int32Array(B * P);
    prompts.forEach((p, b) => p.forEach((tok, j) => {
      ids[b * P + starts[b] + j] = tok;
      pos[b * P + starts[b] + j] = j;
    }));
    let logits = lastLogits(model, tensor(ids, [B, P], { backend, dtype: 'i32' }), tensor(pos, [B * P], { backend, dtype: 'i32' }), cache);

    const out: Completion[] = prompts.map(() => ({ tokens: [], logprobs: [], finishReason: 'length' as FinishReason }));
    const done = new Array<boolean>(B).fill(false);
    for (let step = 0; step < opts.maxNewTokens; step++) {
      const V = logits.length / B;
      const next = new Int32Array(B);
      for (let b = 0; b < B; b++) {
        if (done[b]) continue;
        const s = sampleToken(logits.subarray(b * V, (b + 1) * V), sampling, rng);
        next[b] = s.token;
        const c = out[b];
        c.tokens.push(s.token);
        c.logprobs.push(s.logprob);
        if (stopTokens.has(s.token)) { done[b] = true; c.finishReason = 'stop_token'; }
        else if (opts.stopStrings?.length && endsWithStop(opts.decode!(c.tokens), opts.stopStrings)) { done[b] = true; c.finishReason = 'stop_string'; }
      }
      if (done.every(Boolean) || step === opts.maxNewTokens - 1) break;
      const positions = Int32Array.from(prompts, (p, b) => p.length + out[b].tokens.length - 1);
      logits = lastLogits(model, tensor(next, [B, 1], { backend, dtype: 'i32' }), tensor(positions, [B], { backend, dtype: 'i32' }), cache);
    }
    return out;
  });
}

function lastLogits(model: CausalLM, ids: Tensor, positions: Tensor, cache: KVCache): Float32Array {
  const { logits } = model.forward(ids, { positions, cache, lastOnly: true });
  return Float32Array.from(reshape(logits, [ids.shape[0], -1]).toArray());
}

function endsWithStop(text: string, stops: string[]): boolean {
  return stops.some((s) => text.includes(s));
}
