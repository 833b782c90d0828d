// Generation: the KV cache (MLA latent cache with absorbed projections for DeepSeek-V3) equals
// the uncached forward; greedy decoding reproduces transformers' greedy tokens; batches of
// different prompt lengths decode as each prompt alone; sampling is seeded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as T from '../src/tensor/index.js';
import { noGrad } from '../src/tensor/index.js';
import { openSafetensors } from '../src/io/safetensors.js';
import { parseConfig, DeepseekV3Config, Qwen2Config } from '../src/models/config.js';
import { DeepseekV3ForCausalLM } from '../src/models/deepseek-v3.js';
import { DenseForCausalLM } from '../src/models/llama.js';
import type { CausalLM } from '../src/models/common.js';
import { loadModel } from '../src/models/load.js';
import { relativeError, findGoldenFolders } from '../src/models/conformance.js';
import { generate } from '../src/generate/generate.js';
import { KVCache } from '../src/generate/kv-cache.js';
import { GOLDEN } from './util/shared.js';

function goldenConfig(name: string, overrides: Record<string, unknown> = {}): unknown {
  return { ...JSON.parse(fs.readFileSync(path.join(GOLDEN, name, 'config.json'), 'utf8')), ...overrides };
}

/** Logits of the last position for each prefix length, computed without a cache. */
function uncachedLast(model: CausalLM, ids: number[], from: number): Float32Array[] {
  return noGrad(() => {
    const out: Float32Array[] = [];
    for (let n = from; n <= ids.length; n++) {
      const { logits } = model.forward(T.tensor(Int32Array.from(ids.slice(0, n)), [1, n], { dtype: 'i32' }), { lastOnly: true });
      out.push(Float32Array.from(logits.toArray()));
    }
    return out;
  });
}

/** The same, through the cache: prefill `from` tokens, then one token at a time. */
function cachedLast(model: CausalLM, ids: number[], from: number): { logits: Float32Array[]; cache: KVCache } {
  return noGrad(() => {
    const backend = model.parameters()[0].backend;
    const cache = new KVCache(1, ids.length, new Int32Array(1), backend);
    const out: Float32Array[] = [];
    let { logits } = model.forward(T.tensor(Int32Array.from(ids.slice(0, from)), [1, from], { dtype: 'i32' }), { cache, lastOnly: true });
    out.push(Float32Array.from(logits.toArray()));
    for (let n = from; n < ids.length; n++) {
      ({ logits } = model.forward(T.tensor(Int32Array.from([ids[n]]), [1, 1], { dtype: 'i32' }), { cache, lastOnly: true }));
      out.push(Float32Array.from(logits.toArray()));
    }
    return { logits: out, cache };
  });
}

for (const [name, make] of [
  ['deepseek-v3 (q_lora, MTP)', () => new DeepseekV3ForCausalLM(parseConfig(goldenConfig('deepseek_v3_tiny'), 't') as DeepseekV3Config, { seed: 2 })],
  ['deepseek-v3 (YaRN, no q_lora)', () => new DeepseekV3ForCausalLM(parseConfig(goldenConfig('deepseek_v3_tiny_yarn', { q_lora_rank: null }), 't') as DeepseekV3Config, { seed: 3 })],
  ['qwen2', () => new DenseForCausalLM(parseConfig(goldenConfig('qwen2_tiny'), 't') as Qwen2Config, { seed: 4 })],
] as [string, () => CausalLM][]) {
  test(`KV cache equals the uncached forward: ${name}`, () => {
    const model = make();
    const ids = Array.from({ length: 20 }, (_, i) => (i * 37 + 11) % 512);
    const a = uncachedLast(model, ids, 6);
    const { logits: b, cache } = cachedLast(model, ids, 6);
    a.forEach((x, i) => assert.ok(relativeError(b[i], x) < 1e-5, `step ${i}: ${relativeError(b[i], x)}`));
    if (model instanceof DeepseekV3ForCausalLM) {
      // Only the latent is cached: kv_lora_rank + qk_rope_head_dim values per token per layer.
      const c = model.config;
      assert.equal(cache.valuesPerToken(), c.num_hidden_layers * (c.kv_lora_rank + c.qk_rope_head_dim));
    }
  });
}

test('greedy decoding with the cache reproduces transformers for every golden model', () => {
  for (const dir of findGoldenFolders(GOLDEN)) {
    const model = loadModel(dir);
    const g = openSafetensors(path.join(dir, 'golden.safetensors'));
    const prompt = g.readI32('greedy_prompt');
    const expected = g.readI32('greedy_output');
    const [B, P] = g.info('greedy_prompt').shape;
    const N = expected.length / B - P;
    g.close();
    const prompts = Array.from({ length: B }, (_, b) => Array.from(prompt.slice(b * P, (b + 1) * P)));
    const out = generate(model, prompts, { maxNewTokens: N });
    out.forEach((c, b) => assert.deepEqual(c.tokens, Array.from(expected.slice(b * (P + N) + P, (b + 1) * (P + N))), `${path.basename(dir)} row ${b}`));
  }
});

test('a batch of different prompt lengths decodes as each prompt alone', () => {
  const model = new DeepseekV3ForCausalLM(parseConfig(goldenConfig('deepseek_v3_tiny'), 't') as DeepseekV3Config, { seed: 7 });
  const prompts = [[5, 9, 13], [100, 7, 300, 2, 45, 6, 77], [42]];
  const batched = generate(model, prompts, { maxNewTokens: 8 });
  prompts.forEach((p, b) => {
    const alone = generate(model, [p], { maxNewTokens: 8 })[0];
    assert.deepEqual(batched[b].tokens, alone.tokens, `row ${b}`);
    batched[b].logprobs.forEach((lp, i) => assert.ok(Math.abs(lp - alone.logprobs[i]) < 1e-4));
  });
});

test('sampling: seeded, top-k 1 is greedy, stop tokens end a row', () => {
  const model = new DenseForCausalLM(parseConfig(goldenConfig('qwen2_tiny'), 't') as Qwen2Config, { seed: 4 });
  const prompts = [[1, 2, 3], [4, 5]];
  const s = { temperature: 1, topP: 0.9, topK: 0 };
  const a = generate(model, prompts, { maxNewTokens: 10, sampling: s, seed: 11 });
  const b = generate(model, prompts, { maxNewTokens: 10, sampling: s, seed: 11 });
  assert.deepEqual(a.map((c) => c.tokens), b.map((c) => c.tokens));
  const c = generate(model, prompts, { maxNewTokens: 10, sampling: s, seed: 12 });
  assert.notDeepEqual(a.map((x) => x.tokens), c.map((x) => x.tokens));
  const greedy = generate(model, prompts, { maxNewTokens: 10 });
  const top1 = generate(model, prompts, { maxNewTokens: 10, sampling: { temperature: 0.7, topP: 1, topK: 1 }, seed: 3 });
  assert.deepEqual(top1.map((x) => x.tokens), greedy.map((x) => x.tokens));
  const stop = greedy[0].tokens[3];
  const stopped = generate(model, prompts, { maxNewTokens: 10, stopTokens: [stop] });
  assert.equal(stopped[0].finishReason, 'stop_token');
  assert.equal(stopped[0].tokens.at(-1), stop);
  assert.ok(stopped[0].tokens.length <= 4);
  assert.throws(() => generate(model, [[1]], { maxNewTokens: 1000 }), /max_position_embeddings/);
});
