// MTP speculative decoding: greedy output identical to plain generate() on random models (any
// acceptance), caches after a rejection equal to those of plain decoding, a high acceptance rate
// once the MTP module has learnt what the main model does, stop tokens honoured.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as T from '../src/tensor/index.js';
import { backward, noGrad } from '../src/tensor/index.js';
import { parseConfig, DeepseekV3Config } from '../src/models/config.js';
import { DeepseekV3ForCausalLM } from '../src/models/deepseek-v3.js';
import { relativeError } from '../src/models/conformance.js';
import { generate } from '../src/generate/generate.js';
import { KVCache } from '../src/generate/kv-cache.js';
import { generateSpeculative, mtpAcceptance, MtpSpeculator } from '../src/generate/speculative.js';
import { AdamW } from '../src/train/optim.js';
import { GOLDEN } from './util/shared.js';

function tinyConfig(overrides: Record<string, unknown> = {}): DeepseekV3Config {
  const raw = JSON.parse(fs.readFileSync(path.join(GOLDEN, 'deepseek_v3_tiny', 'config.json'), 'utf8'));
  return parseConfig({ ...raw, ...overrides }, 'tiny') as DeepseekV3Config;
}

const backendOf = (m: DeepseekV3ForCausalLM) => m.parameters()[0].backend;

const PROMPTS = [[5, 9, 13], [100, 7, 300, 2, 45, 6, 77], [42], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]];

test('greedy speculative output equals plain generate() on random models', () => {
  const models: [string, DeepseekV3ForCausalLM][] = [
    ['1 MTP module', new DeepseekV3ForCausalLM(tinyConfig(), { seed: 1 })],
    ['2 MTP modules, no q_lora', new DeepseekV3ForCausalLM(tinyConfig({ num_nextn_predict_layers: 2, q_lora_rank: null }), { seed: 2 })],
  ];
  for (const [name, model] of models) {
    for (const [pi, prompt] of PROMPTS.entries()) {
      const plain = generate(model, [prompt], { maxNewTokens: 12 })[0];
      for (const draftTokens of [1, 2, 3]) {
        const spec = generateSpeculative(model, prompt, { maxNewTokens: 12, draftTokens });
        const where = `${name}, prompt ${pi}, draftTokens ${draftTokens}`;
        assert.deepEqual(spec.tokens, plain.tokens, where);
        spec.logprobs.forEach((lp, i) => assert.ok(Math.abs(lp - plain.logprobs[i]) < 1e-4, `${where}: logprob ${i}`));
        assert.equal(spec.finishReason, 'length');
        const s = spec.stats;
        assert.ok(s.accepted <= s.drafted && s.acceptance >= 0 && s.acceptance <= 1, where);
        // Every step but the first (prefill) verifies; each emits accepted + 1 tokens.
        assert.equal(s.mainForwardPasses - 1 + s.accepted, 12 - 1, `${where}: passes ${s.mainForwardPasses}, accepted ${s.accepted}`);
      }
    }
  }
});

/** A layer's cached latent over the first `length` positions. */
function cached(cache: KVCache, key: string, width: number): Float32Array {
  return Float32Array.from(T.narrow(cache.buffer(key, 1, width), 1, 0, cache.length).toArray());
}

/**
 * The caches of plain decoding of `tokens` (all but the last fed to the main model): prefill
 * of the prompt, then one token per forward pass; MTP module m run once over positions
 * [0, lengths[m]) without speculation.
 */
function referenceCaches(model: DeepseekV3ForCausalLM, tokens: number[], P: number, lengths: number[]): { main: KVCache; mtp: KVCache[] } {
  return noGrad(() => {
    const ids = (a: number[]): T.Tensor => T.tensor(Int32Array.from(a), [1, a.length], { dtype: 'i32' });
    const n = tokens.length - 1;
    const main = new KVCache(1, n, new Int32Array(1), backendOf(model));
    const hs = [model.hiddenStates(ids(tokens.slice(0, P)), { cache: main })];
    for (let i = P; i < n; i++) hs.push(model.hiddenStates(ids([tokens[i]]), { cache: main }));
    let h = T.concat(hs, 1); // h_0 … h_{n−1}
    const mtp = lengths.map((len, m) => {
      const cache = new KVCache(1, Math.max(len, 1), new Int32Array(1), backendOf(model));
      if (len === 0) return cache;
      const next = tokens.slice(m + 1, m + 1 + len); // t_{i+m+1}
      h = model.mtpDraftStep(m, T.narrow(h, 1, 0, len), ids(next), cache).hidden;
      return cache;
    });
    return { main, mtp };
  });
}

test('after a rejection the caches equal those of plain decoding (main and MTP, 1 and 2 modules)', () => {
  for (const [D, draftTokens] of [[1, 1], [1, 3], [2, 2], [2, 3]]) {
    const model = new DeepseekV3ForCausalLM(tinyConfig({ num_nextn_predict_layers: D }), { seed: 10 + D });
    const c = model.config;
    const width = c.kv_lora_rank + c.qk_rope_head_dim;
    const prompt = [7, 3, 99, 12, 5];
    const spec = new MtpSpeculator(model, prompt, { capacity: 40, draftTokens });
    spec.prefill();
    let rejections = 0;
    for (let step = 0; step < 8; step++) {
      const r = spec.step(draftTokens);
      assert.equal(r.emitted.length, r.accepted + 1);
      if (r.accepted === r.drafted) continue;
      rejections++;
      const n = spec.tokens.length - 1;
      assert.equal(spec.mainCache.length, n, 'main cache: every confirmed token but the newest');
      const ref = referenceCaches(model, spec.tokens, prompt.length, spec.mtpCaches.map((x) => x.length));
      assert.equal(ref.main.length, spec.mainCache.length);
      for (let l = 0; l < c.num_hidden_layers; l++) {
        const err = relativeError(cached(spec.mainCache, `layer${l}`, width), cached(ref.main, `layer${l}`, width));
        assert.ok(err < 1e-5, `D=${D} k=${draftTokens} step ${step}: main layer ${l} differs (${err})`);
      }
      spec.mtpCaches.forEach((cache, m) => {
        // Module m keeps the positions i < n_before it read with confirmed tokens only
        // (t_{i+m+1}, i + m + 1 < n: t_n replaced a rejected draft). Module 0 reads the newly
        // confirmed positions' h_i next step.
        const before = n - r.accepted - 1;
        assert.equal(cache.length, Math.min(before, n - m - 1), `D=${D} k=${draftTokens}: MTP module ${m} length`);
        const key = `layer${c.num_hidden_layers + m}`;
        const err = relativeError(cached(cache, key, width), cached(ref.mtp[m], key, width));
        assert.ok(err < 1e-5, `D=${D} k=${draftTokens} step ${step}: MTP module ${m} differs (${err})`);
      });
    }
    assert.ok(rejections > 0, `D=${D} k=${draftTokens}: a random model should reject some drafts`);
  }
});

test('KVCache.truncate rolls back and refuses to grow', () => {
  const cache = new KVCache(1, 8, new Int32Array(1), new DeepseekV3ForCausalLM(tinyConfig()).parameters()[0].backend);
  cache.begin(5); cache.commit();
  cache.truncate(3);
  assert.equal(cache.length, 3);
  assert.deepEqual(Array.from(cache.range.toArray()), [0, 3]);
  assert.throws(() => cache.truncate(4), /holds 3 tokens/);
});

/** Trains main model and MTP module together on a repeating sequence (next token + MTP loss). */
function trainOnCycle(model: DeepseekV3ForCausalLM, cycle: number[], steps: number): number {
  const opt = new AdamW(model.namedParameters(), { lr: 1e-2, weightDecay: 0 });
  const rng = new T.Rng(5);
  const B = 4, L = 16;
  model.train();
  let last = Infinity;
  for (let s = 0; s < steps; s++) {
    const ids = new Int32Array(B * L);
    for (let b = 0; b < B; b++) {
      const off = Math.floor(rng.uniform() * cycle.length);
      for (let i = 0; i < L; i++) ids[b * L + i] = cycle[(off + i) % cycle.length];
    }
    opt.zeroGrad();
    const out = model.trainingLoss(T.tensor(ids, [B, L], { dtype: 'i32' }), { mtpWeight: 1 });
    backward(out.loss);
    opt.update();
    last = out.mtp ?? Infinity;
  }
  model.eval();
  return last;
}

const CYCLE = [3, 17, 42, 8, 99, 23, 5, 61, 200, 11, 7];
let trained: DeepseekV3ForCausalLM | null = null;
function trainedModel(): DeepseekV3ForCausalLM {
  if (!trained) {
    // Two main blocks (dense, then MoE) and the MTP module (MoE): trains in a few seconds.
    trained = new DeepseekV3ForCausalLM(tinyConfig({ num_hidden_layers: 2, vocab_size: 256 }), { seed: 3 });
    const mtpLoss = trainOnCycle(trained, CYCLE, 30);
    assert.ok(mtpLoss < 0.5, `MTP loss after training ${mtpLoss}`);
  }
  return trained;
}

test('a trained MTP module drafts well: acceptance > 0.5, same output, fewer main passes', () => {
  const model = trainedModel();
  const prompts = [CYCLE.slice(0, 4), CYCLE.slice(5, 10), [...CYCLE, ...CYCLE.slice(0, 2)]];
  for (const draftTokens of [1, 2]) {
    for (const prompt of prompts) {
      const plain = generate(model, [prompt], { maxNewTokens: 20 })[0];
      const spec = generateSpeculative(model, prompt, { maxNewTokens: 20, draftTokens });
      assert.deepEqual(spec.tokens, plain.tokens);
      assert.ok(spec.stats.acceptance > 0.5, `draftTokens ${draftTokens}: acceptance ${spec.stats.acceptance}`);
      assert.ok(spec.stats.mainForwardPasses < 15, `passes ${spec.stats.mainForwardPasses}`);
    }
  }
  const m = mtpAcceptance(model, prompts, 20, { repeats: 1 });
  assert.ok(m.identical);
  assert.ok(m.acceptance > 0.5 && m.meanPromptAcceptance > 0.5, `acceptance ${m.acceptance}`);
  assert.ok(m.speedup > 0 && m.tokensPerMainPass > 1.5, `tokens per main pass ${m.tokensPerMainPass}`);
});

test('stop tokens end generation, also inside a run of accepted drafts', () => {
  const model = trainedModel();
  const prompt = CYCLE.slice(0, 3);
  const full = generate(model, [prompt], { maxNewTokens: 16 })[0].tokens;
  for (const at of [0, 2, 5]) {
    const stop = full[at];
    const plain = generate(model, [prompt], { maxNewTokens: 16, stopTokens: [stop] })[0];
    for (const draftTokens of [1, 3]) {
      const spec = generateSpeculative(model, prompt, { maxNewTokens: 16, stopTokens: [stop], draftTokens });
      assert.equal(spec.finishReason, 'stop_token');
      assert.deepEqual(spec.tokens, plain.tokens);
      assert.equal(spec.tokens.at(-1), stop);
    }
  }
  const random = new DeepseekV3ForCausalLM(tinyConfig(), { seed: 1 });
  const r = generate(random, [[5, 9, 13]], { maxNewTokens: 10 })[0].tokens;
  const spec = generateSpeculative(random, [5, 9, 13], { maxNewTokens: 10, stopTokens: [r[4]] });
  assert.deepEqual(spec.tokens, r.slice(0, r.indexOf(r[4]) + 1));
  assert.equal(generateSpeculative(random, [5], { maxNewTokens: 0 }).tokens.length, 0);
  assert.throws(() => generateSpeculative(random, [1], { maxNewTokens: 1000 }), /max_position_embeddings/);
  assert.throws(() => generateSpeculative(new DeepseekV3ForCausalLM(tinyConfig(), { seed: 1, mtp: false }), [1], { maxNewTokens: 3 }), /MTP/);
});
