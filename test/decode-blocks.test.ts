// Fused decoding blocks (Backend.mlaDecode, gqaDecode, mlpDecode, moeDecode; native/decode.cc):
// a pass of a few new tokens over a cache through them equals the same pass run op by op, which
// is their reference (the models' forward with the fused kernels hidden). For one token bit for
// bit: both run the same streaming products and row kernels. For several (rows of a batch, or
// drafted tokens being verified) within float rounding: the fused blocks stream the weights for
// a few rows where the op-by-op path calls sgemm, which sums in another order. The caches they
// write and the MoE loads agree too, and bad arguments are named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as Tn from '../src/tensor/index.js';
import type { Backend } from '../src/backend/backend.js';
import { defaultBackend } from '../src/backend/registry.js';
import { RefBackend } from '../src/backend/ref/ref.js';
import { parseConfig } from '../src/models/config.js';
import { createModel } from '../src/models/load.js';
import { FUSED_DECODE_MAX_TOKENS, type CausalLM } from '../src/models/common.js';
import { DeepseekV3ForCausalLM } from '../src/models/deepseek-v3.js';
import { relativeError } from '../src/models/conformance.js';
import { KVCache } from '../src/generate/kv-cache.js';
import { GOLDEN } from './util/shared.js';

const FUSED = ['mlaDecode', 'gqaDecode', 'mlpDecode', 'moeDecode'] as const;
type Fused = (typeof FUSED)[number];

/** Runs fn with the backend's fused blocks hidden (the op-by-op path). */
function opByOp<R>(backend: Backend, fn: () => R): R {
  const b = backend as unknown as Record<string, unknown>;
  for (const k of FUSED) b[k] = undefined;
  try {
    return fn();
  } finally {
    for (const k of FUSED) delete b[k];
  }
}

/** Runs fn counting the calls of each fused block. */
function counted<R>(backend: Backend, fn: () => R): { result: R; calls: Record<Fused, number> } {
  const b = backend as unknown as Record<string, unknown>;
  const calls = Object.fromEntries(FUSED.map((k) => [k, 0])) as Record<Fused, number>;
  for (const k of FUSED) {
    const f = backend[k] as ((...a: unknown[]) => void) | undefined;
    if (f) b[k] = (...a: unknown[]) => { calls[k]++; f.apply(backend, a); };
  }
  try {
    return { result: fn(), calls };
  } finally {
    for (const k of FUSED) delete b[k];
  }
}

function model(golden: string, overrides: Record<string, unknown> = {}, backend?: Backend): CausalLM {
  const json = JSON.parse(fs.readFileSync(path.join(GOLDEN, golden, 'config.json'), 'utf8'));
  // larger weights than the 0.02 default, so that every block moves the logits visibly
  const m = createModel(parseConfig({ ...json, initializer_range: 0.1, ...overrides }), { seed: 7, backend });
  // biases start at zero and norm weights at one: make them count, so that using them wrongly shows
  const rng = new Tn.Rng(11);
  for (const [name, t] of m.stateDict()) {
    const isNorm = /norm\.weight$/.test(name);
    if (!isNorm && !/bias$/.test(name)) continue;
    const values = Float32Array.from({ length: t.size }, () => (isNorm ? 1 : 0) + 0.2 * (rng.uniform() - 0.5));
    t.backend.copy(t.backend.upload(values, 'f32'), 0, t.storage, 0, t.size);
  }
  return m;
}

interface Steps { logits: Float32Array[]; caches: Float32Array[]; loads: Int32Array[] }

/** Prefill left-padded prompts of different lengths, then `steps` passes of T new tokens per row. */
function decode(m: CausalLM, prompts: number[][], steps: number, T = 1): Steps {
  return Tn.noGrad(() => {
    const backend = m.parameters()[0].backend;
    const B = prompts.length, P = Math.max(...prompts.map((p) => p.length)), V = m.config.vocab_size;
    const starts = Int32Array.from(prompts, (p) => P - p.length);
    const cache = new KVCache(B, P + steps * T, starts, backend);
    const ids = new Int32Array(B * P), pos = new Int32Array(B * P);
    prompts.forEach((p, b) => p.forEach((t, j) => { ids[b * P + starts[b] + j] = t; pos[b * P + starts[b] + j] = j; }));
    const prefill = m.forward(Tn.tensor(ids, [B, P], { backend, dtype: 'i32' }), { positions: Tn.tensor(pos, [B * P], { backend, dtype: 'i32' }), cache, lastOnly: true });
    const out: Steps = { logits: [Float32Array.from(prefill.logits.toArray())], caches: [], loads: [] };
    for (let s = 0; s < steps; s++) {
      const next = Int32Array.from({ length: B * T }, (_, i) => (s * 101 + i * 37 + 3) % V);
      const positions = Int32Array.from({ length: B * T }, (_, i) => prompts[Math.floor(i / T)].length + s * T + (i % T));
      const { logits } = m.forward(Tn.tensor(next, [B, T], { backend, dtype: 'i32' }), { positions: Tn.tensor(positions, [B * T], { backend, dtype: 'i32' }), cache });
      out.logits.push(Float32Array.from(logits.toArray()));
      if (m instanceof DeepseekV3ForCausalLM) out.loads.push(...m.moeLayers().map((l) => Int32Array.from(l.lastLoad)));
    }
    // the latent (V3) or keys and values (dense models) of every layer; a missing entry comes back empty
    for (let l = 0; l < m.config.num_hidden_layers; l++) {
      for (const key of [`layer${l}`, `layer${l}.k`, `layer${l}.v`]) out.caches.push(Float32Array.from(cache.buffer(key, 0, 0).toArray()));
    }
    return out;
  });
}

function prompts(B: number, vocab: number): number[][] {
  return Array.from({ length: B }, (_, b) => Array.from({ length: 5 + 3 * b }, (_, i) => (i * 29 + b * 13 + 5) % vocab));
}

const MODELS: [string, string, Record<string, unknown>][] = [
  ['DeepSeek-V3 (q_lora, MoE in groups, shared expert)', 'deepseek_v3_tiny', {}],
  ['DeepSeek-V3 without q_lora, with attention biases', 'deepseek_v3_tiny_noqlora', { attention_bias: true }],
  ['DeepSeek-V3 with YaRN', 'deepseek_v3_tiny_yarn', {}],
  ['Qwen2 (q/k/v biases, grouped-query)', 'qwen2_tiny', {}],
  ['Llama with attention biases', 'llama_tiny', { attention_bias: true }],
];

// (rows, tokens per row): decoding one and three sequences, and passes of several new tokens
// per row as speculative decoding's verification makes
const SHAPES: [number, number][] = [[1, 1], [3, 1], [1, 3], [2, 2]];

for (const [name, golden, overrides] of MODELS) {
  test(`fused decoding blocks equal the op-by-op pass: ${name}`, () => {
    const m = model(golden, overrides);
    const backend = m.parameters()[0].backend;
    const isV3 = m instanceof DeepseekV3ForCausalLM;
    const L = m.config.num_hidden_layers;
    for (const [B, T] of SHAPES) {
      const where = `${name} B=${B} T=${T}`;
      const ps = prompts(B, m.config.vocab_size);
      const reference = opByOp(backend, () => decode(m, ps, 4, T));
      const { result: fused, calls } = counted(backend, () => decode(m, ps, 4, T));
      // every pass after the prefill, every layer, went through the fused blocks
      if (isV3) {
        assert.equal(calls.mlaDecode, 4 * L, `${where}: mlaDecode calls`);
        assert.equal(calls.moeDecode + calls.mlpDecode, 4 * L);
        assert.ok(calls.moeDecode > 0);
      } else {
        assert.equal(calls.gqaDecode, 4 * L, `${where}: gqaDecode calls`);
        assert.equal(calls.mlpDecode, 4 * L);
      }
      assert.deepEqual(fused.loads, reference.loads, `${where}: experts chosen`);
      fused.logits.forEach((got, s) => {
        if (B * T === 1) assert.deepEqual(got, reference.logits[s], `${where}: step ${s} logits differ for one token`);
        const err = relativeError(got, reference.logits[s]);
        assert.ok(err < 1e-5, `${where} step ${s}: relative error ${err}`);
      });
      assert.equal(fused.caches.length, reference.caches.length);
      fused.caches.forEach((c, i) => {
        if (B * T === 1) assert.deepEqual(c, reference.caches[i], `${where}: cache ${i} differs`);
        const err = relativeError(c, reference.caches[i]);
        assert.ok(err < 1e-5, `${where} cache ${i}: relative error ${err}`);
      });
    }
  });
}

test('fused decoding blocks agree with the op-by-op pass on the plain TypeScript reference backend', () => {
  const ref = new RefBackend();
  for (const golden of ['deepseek_v3_tiny', 'qwen2_tiny']) {
    const m = model(golden), mRef = model(golden, {}, ref);
    for (const [B, T] of [[1, 1], [2, 2]]) {
      const ps = prompts(B, m.config.vocab_size);
      const { result: fused, calls } = counted(m.parameters()[0].backend, () => decode(m, ps, 3, T));
      assert.ok(Object.values(calls).some((c) => c > 0));
      const reference = decode(mRef, ps, 3, T);
      assert.deepEqual(fused.loads, reference.loads, `${golden} B=${B} T=${T}: experts chosen`);
      fused.logits.forEach((got, s) => {
        const err = relativeError(got, reference.logits[s]);
        assert.ok(err < 1e-5, `${golden} B=${B} T=${T} step ${s}: relative error ${err} against the reference backend`);
      });
    }
  }
});

test('a prefill of a few tokens per row with left padding runs fused and matches', () => {
  for (const golden of ['deepseek_v3_tiny', 'qwen2_tiny']) {
    const m = model(golden);
    const backend = m.parameters()[0].backend;
    const ps = [[5], [6, 7]]; // B = 2, T = 2: row 0's pad position sees no key
    const reference = opByOp(backend, () => decode(m, ps, 3));
    const { result: fused, calls } = counted(backend, () => decode(m, ps, 3));
    assert.equal(calls[golden.startsWith('deepseek') ? 'mlaDecode' : 'gqaDecode'], 4 * m.config.num_hidden_layers, golden);
    fused.logits.forEach((got, s) => {
      const err = relativeError(got, reference.logits[s]);
      assert.ok(err < 1e-5, `${golden} pass ${s}: relative error ${err}`);
    });
  }
});

test('passes of more than FUSED_DECODE_MAX_TOKENS new tokens, and prefill, run op by op', () => {
  const m = model('deepseek_v3_tiny');
  const backend = m.parameters()[0].backend;
  const L = m.config.num_hidden_layers;
  const over = [[FUSED_DECODE_MAX_TOKENS + 1, 1], [1, FUSED_DECODE_MAX_TOKENS + 1], [3, 2]];
  for (const [B, T] of over) {
    const { calls } = counted(backend, () => decode(m, prompts(B, 512), 2, T));
    assert.deepEqual(Object.values(calls), [0, 0, 0, 0], `B=${B} T=${T}`);
  }
  for (const [B, T] of [[FUSED_DECODE_MAX_TOKENS, 1], [1, FUSED_DECODE_MAX_TOKENS]]) {
    const { calls } = counted(backend, () => decode(m, prompts(B, 512), 2, T));
    assert.equal(calls.mlaDecode, 2 * L, `B=${B} T=${T}`); // the prefill pass (5+ tokens per row) is not among them
  }
});

test('fused decoding blocks name bad arguments', () => {
  const backend = defaultBackend();
  if (!backend.gqaDecode || !backend.moeDecode || !backend.mlaDecode) return; // a backend without them
  const f = (n: number) => backend.upload(new Float32Array(n).fill(0.1), 'f32');
  const i = (a: number[]) => backend.upload(Int32Array.from(a), 'i32');
  const B = 1, C = 8, H = 2, Hkv = 1, D = 4, cap = 6;
  const gqa = {
    N: 1, B, T: 1, C, x: f(C), norm: f(C), eps: 1e-6, H, Hkv, D, capacity: cap, at: 2, keyRange: i([0, 3]), positions: i([2]),
    cos: f(16 * 2), sin: f(16 * 2), interleaved: false, scale: 0.5,
    q: { weight: f(H * D * C), bias: null }, k: { weight: f(Hkv * D * C), bias: null }, v: { weight: f(Hkv * D * C), bias: null },
    o: { weight: f(C * H * D), bias: null }, kCache: f(cap * Hkv * D), vCache: f(cap * Hkv * D),
  };
  backend.gqaDecode({ ...gqa }, f(C)); // well-formed: runs
  assert.throws(() => backend.gqaDecode!({ ...gqa, k: { weight: f(3), bias: null } }, f(C)), /k_proj \(4x8\) has 3 elements/);
  assert.throws(() => backend.gqaDecode!({ ...gqa, keyRange: i([0, 2]) }, f(C)), /keyRange of row 0 is \[0, 2\); this pass needs \[start <= 3, 3\)/);
  const cache = f(cap * Hkv * D);
  assert.throws(() => backend.gqaDecode!({ ...gqa, kCache: cache }, cache), /the caches must not share memory with x or out/);
  assert.throws(() => backend.gqaDecode!({ ...gqa, T: 2 }, f(C)), /1 tokens are not 1 rows of 2/);
  assert.throws(() => backend.gqaDecode!({ ...gqa, positions: i([40]) }, f(C)), /positions\[0\] = 40 is outside \[0, 16\)/);
  assert.throws(() => backend.gqaDecode!({ ...gqa, at: 6 }, f(C)), /writing 1 token\(s\) at index 6 overflows the cache's 6 positions/);
  assert.throws(() => backend.gqaDecode!({ ...gqa, Hkv: 3 }, f(C)), /query heads \(2\) must be a multiple of key\/value heads \(3\)/);

  const E = 7, I = 4;
  const moe = {
    N: 1, C, x: f(C), norm: f(C), eps: 1e-6, I, E, K: 2, G: 2, topkGroup: 1, normTopk: true, scaling: 1,
    router: f(E * C), bias: f(E), gate: Array.from({ length: E }, () => f(I * C)), up: Array.from({ length: E }, () => f(I * C)),
    down: Array.from({ length: E }, () => f(C * I)), shared: null, chosen: backend.empty('i32', 2),
  };
  assert.throws(() => backend.moeDecode!(moe, f(C)), /7 experts do not split into 2 groups/);
  assert.throws(() => backend.moeDecode!({ ...moe, G: 1, down: moe.down.slice(1) }, f(C)), /7 gate, 7 up and 6 down weights for 7 experts/);

  const mla = {
    N: 1, B, T: 1, C, x: f(C), norm: f(C), eps: 1e-6, H, Dn: 2, Dr: 2, Dv: 2, Lq: 0, Lkv: 4, mlaEps: 1e-6, capacity: cap, at: 0,
    keyRange: i([0, 1]), positions: i([0]), cos: f(16), sin: f(16), interleaved: true, scale: 0.5,
    qA: null, qANorm: null, qB: null, q: null, kvA: { weight: f(6 * C), bias: null }, kvANorm: f(4), kvB: f(H * 4 * 4),
    o: { weight: f(C * H * 2), bias: null }, latent: f(cap * 6),
  };
  assert.throws(() => backend.mlaDecode!(mla, f(C)), /without q_lora_rank the block needs q_proj/);
  assert.throws(() => backend.mlaDecode!({ ...mla, q: f(H * 4 * C), kvB: f(5) }, f(C)), /kv_b_proj \(8x4\) has 5 elements/);
});
