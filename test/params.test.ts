// Parameter specs and accounting: exact 671B figures, golden checkpoints' tensor lists, MTP.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { sharedDir } from './util/shared.js';
import { formatParameterCount, humanCount, paramsCommand, withSeparators } from '../src/cli/commands/params.js';
import { readSafetensorsHeader } from '../src/io/safetensors.js';
import { loadConfig, parseConfig, type DeepseekV3Config } from '../src/models/config.js';
import { countParameters, fusedExpertSpecs, numel, parameterSpecs } from '../src/models/params.js';

const shared = sharedDir();
const golden = path.join(shared, 'golden');
const config671 = path.join(shared, 'configs', 'deepseek-v3-671b.config.json');

test('DeepSeek-V3 671B: exact total and activated, MTP ≈ 11.6B', () => {
  const c = loadConfig(config671);
  const p = countParameters(c);
  assert.equal(p.total, 671_026_419_200);
  assert.equal(p.activated, 37_552_297_472);
  assert.equal(p.activatedWithoutEmbedding, 37_552_297_472 - 129280 * 7168);
  assert.equal(p.activatedWithoutEmbeddingAndHead, 37_552_297_472 - 2 * 129280 * 7168);
  assert.equal(p.components.embedding, 926_679_040);
  assert.equal(p.components.lm_head, 926_679_040);
  assert.equal(p.routerBias, 58 * 256); // e_score_correction_bias counted
  assert.equal(p.components.routed_experts, 58 * 256 * 3 * 7168 * 2048);
  assert.equal(p.activatedComponents.routed_experts, 58 * 8 * 3 * 7168 * 2048);
  assert.equal(p.mtp.modules, 1);
  assert.equal(p.mtp.total, 11_610_068_224);
  assert.ok(Math.abs(p.mtp.total / 1e9 - 11.6) < 0.05);
  assert.equal(p.mtp.sharedCopies, 2 * 129280 * 7168);
  const sum = Object.values(p.components).reduce((a, b) => a + b, 0);
  assert.equal(sum, p.total);
  assert.equal(p.components.mtp, 0);
  assert.equal(p.mtp.components.mtp, 7168 * 2 + 7168 * 2 * 7168 + 7168);
});

test('DeepSeek-V3 671B: names and shapes of one MoE layer and the MTP module', () => {
  const c = loadConfig(config671);
  const specs = parameterSpecs(c, { mtp: true, mtpSharedCopies: true });
  const by = new Map(specs.map((s) => [s.name, s]));
  assert.equal(by.size, specs.length, 'names unique');
  const shape = (n: string): number[] | undefined => by.get(n)?.shape;
  assert.deepEqual(shape('model.layers.0.mlp.gate_proj.weight'), [18432, 7168]);
  assert.deepEqual(shape('model.layers.3.self_attn.q_a_proj.weight'), [1536, 7168]);
  assert.deepEqual(shape('model.layers.3.self_attn.q_b_proj.weight'), [128 * 192, 1536]);
  assert.deepEqual(shape('model.layers.3.self_attn.kv_a_proj_with_mqa.weight'), [576, 7168]);
  assert.deepEqual(shape('model.layers.3.self_attn.kv_b_proj.weight'), [128 * 256, 512]);
  assert.deepEqual(shape('model.layers.3.self_attn.o_proj.weight'), [7168, 128 * 128]);
  assert.deepEqual(shape('model.layers.60.mlp.experts.255.down_proj.weight'), [7168, 2048]);
  assert.deepEqual(shape('model.layers.60.mlp.gate.e_score_correction_bias'), [256]);
  assert.deepEqual(shape('model.layers.60.mlp.shared_experts.up_proj.weight'), [2048, 7168]);
  assert.equal(by.get('model.layers.60.mlp.experts.7.up_proj.weight')!.expert, 7);
  assert.equal(by.get('model.layers.60.mlp.experts.7.up_proj.weight')!.component, 'routed_experts');
  // MTP module = layer 61
  assert.deepEqual(shape('model.layers.61.eh_proj.weight'), [7168, 14336]);
  assert.deepEqual(shape('model.layers.61.enorm.weight'), [7168]);
  assert.deepEqual(shape('model.layers.61.hnorm.weight'), [7168]);
  assert.deepEqual(shape('model.layers.61.shared_head.norm.weight'), [7168]);
  assert.deepEqual(shape('model.layers.61.mlp.experts.0.gate_proj.weight'), [2048, 7168]);
  assert.equal(by.get('model.layers.61.self_attn.o_proj.weight')!.mtp, 0);
  assert.equal(by.get('model.layers.61.embed_tokens.weight')!.sharedWith, 'model.embed_tokens.weight');
  assert.equal(by.get('model.layers.61.shared_head.head.weight')!.sharedWith, 'lm_head.weight');
  assert.ok(!by.has('model.layers.62.enorm.weight'));
  const noMtp = parameterSpecs(c);
  assert.ok(noMtp.every((s) => s.mtp === undefined && (s.layer === undefined || s.layer < 61)));
  assert.equal(noMtp.reduce((t, s) => t + numel(s.shape), 0), 671_026_419_200);
});

test('golden checkpoints: specs equal model.safetensors exactly (names, shapes); totals match', () => {
  for (const m of fs.readdirSync(golden)) {
    const dir = path.join(golden, m);
    if (!fs.existsSync(path.join(dir, 'model.safetensors'))) continue;
    const c = loadConfig(dir);
    const h = readSafetensorsHeader(path.join(dir, 'model.safetensors'));
    const specs = parameterSpecs(c);
    const want = new Map([...h.tensors.values()].map((t) => [t.name, t.shape]));
    const got = new Map(specs.map((s) => [s.name, s.shape]));
    const missing = [...want.keys()].filter((k) => !got.has(k));
    const extra = [...got.keys()].filter((k) => !want.has(k));
    assert.deepEqual(missing, [], `${m}: in the checkpoint, not in the specs`);
    assert.deepEqual(extra, [], `${m}: in the specs, not in the checkpoint`);
    for (const [k, s] of want) assert.deepEqual(got.get(k), s, `${m}: ${k}`);
    const fileTotal = [...h.tensors.values()].reduce((t, x) => t + numel(x.shape), 0);
    const p = countParameters(c);
    assert.equal(p.total, fileTotal, m);
    // transformers' num_parameters() leaves the router bias (a buffer) out
    const info = JSON.parse(fs.readFileSync(path.join(dir, 'golden.json'), 'utf8'));
    assert.equal(p.total - p.routerBias, info.num_parameters, `${m}: golden.json num_parameters`);
    // every trainable parameter has its gradient in golden.safetensors
    const g = readSafetensorsHeader(path.join(dir, 'golden.safetensors'));
    // (routed experts under transformers 5's fused in-memory names, see fusedExpertSpecs)
    const grads = new Map([...g.tensors.values()].filter((t) => t.name.startsWith('grad.')).map((t) => [t.name.slice(5), t.shape]));
    const trainable = new Map<string, number[]>();
    for (const s of specs) {
      if (s.name.endsWith('e_score_correction_bias')) continue;
      if (s.component === 'routed_experts' && c.model_type === 'deepseek_v3') {
        const f = fusedExpertSpecs(c, s.layer!);
        trainable.set(f.gateUp.name, f.gateUp.shape);
        trainable.set(f.down.name, f.down.shape);
      } else {
        trainable.set(s.name, s.shape);
      }
    }
    assert.deepEqual([...trainable.keys()].filter((n) => !grads.has(n)), [], `${m}: params without grad`);
    assert.deepEqual([...grads.keys()].filter((n) => !trainable.has(n)), [], `${m}: grads without param`);
    for (const [n, shape] of trainable) assert.deepEqual(grads.get(n), shape, `${m}: grad.${n}`);
  }
});

test('golden tiny DeepSeek-V3: MTP module count and names', () => {
  const c = loadConfig(path.join(golden, 'deepseek_v3_tiny')) as DeepseekV3Config;
  const p = countParameters(c);
  const C = 64;
  // enorm + hnorm + eh_proj + shared_head.norm + one MoE block (layer 3 ≥ first_k_dense_replace)
  const mtpOnly = 2 * C + C * 2 * C + C;
  const mainSpecs = parameterSpecs(c);
  const block = mainSpecs.filter((s) => s.layer === 2).reduce((t, s) => t + numel(s.shape), 0);
  assert.equal(p.mtp.total, mtpOnly + block);
  assert.equal(p.total, 257_728);
  const specs = parameterSpecs(c, { mtp: true });
  const mtp = specs.filter((s) => s.mtp === 0);
  assert.ok(mtp.every((s) => s.layer === 3 && s.name.startsWith('model.layers.3.')));
  for (const n of ['enorm.weight', 'hnorm.weight', 'eh_proj.weight', 'shared_head.norm.weight', 'mlp.gate.e_score_correction_bias', 'mlp.experts.7.down_proj.weight', 'self_attn.q_a_layernorm.weight']) {
    assert.ok(mtp.some((s) => s.name === `model.layers.3.${n}`), n);
  }
  assert.ok(!specs.some((s) => s.sharedWith !== undefined), 'shared copies only on request');
  // activated: 2 of 8 routed experts in each of 2 MoE layers
  assert.equal(p.total - p.activated, 2 * 6 * 3 * 32 * 64);
});

test('dense families: Qwen2 biases and tied head, Llama untied; no-q-lora DeepSeek', () => {
  const q = loadConfig(path.join(golden, 'qwen2_tiny'));
  const qs = parameterSpecs(q);
  assert.ok(qs.some((s) => s.name === 'model.layers.0.self_attn.q_proj.bias'));
  assert.ok(!qs.some((s) => s.name === 'model.layers.0.self_attn.o_proj.bias'));
  assert.ok(!qs.some((s) => s.name === 'lm_head.weight'));
  const qp = countParameters(q);
  assert.equal(qp.activated, qp.total);
  assert.equal(qp.components.lm_head, 0);
  const l = parseConfig({ model_type: 'llama', vocab_size: 10, hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2, attention_bias: true, mlp_bias: true });
  const ls = parameterSpecs(l).map((s) => s.name);
  for (const n of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) assert.ok(ls.includes(`model.layers.0.self_attn.${n}.bias`), n);
  for (const n of ['gate_proj', 'up_proj', 'down_proj']) assert.ok(ls.includes(`model.layers.0.mlp.${n}.bias`), n);
  assert.ok(ls.includes('lm_head.weight'));
  const n = loadConfig(path.join(golden, 'deepseek_v3_tiny_noqlora'));
  const ns = parameterSpecs(n).map((s) => s.name);
  assert.ok(ns.includes('model.layers.0.self_attn.q_proj.weight'));
  assert.ok(!ns.some((x) => x.includes('q_a_proj')));
});

test('params command prints the table with separators and B/M', async () => {
  assert.equal(withSeparators(671026419200), '671,026,419,200');
  assert.equal(humanCount(671026419200), '671.03B');
  assert.equal(humanCount(37552297472), '37.55B');
  assert.equal(humanCount(926679040), '926.68M');
  const text = formatParameterCount('671B', countParameters(loadConfig(config671)));
  for (const s of ['671,026,419,200', '37,552,297,472', '36,625,618,432', '35,698,939,392', '11,610,068,224', '671.03B', 'routed_experts', 'MTP']) {
    assert.ok(text.includes(s), `missing ${s}:\n${text}`);
  }
  const chunks: string[] = [];
  const orig = process.stdout.write.bind(process.stdout);
  (process.stdout as unknown as { write: (s: string) => boolean }).write = (s: string) => (chunks.push(s), true);
  try {
    await paramsCommand(config671, { json: true });
    await paramsCommand(path.join(golden, 'llama_tiny', 'config.json'), {});
  } finally {
    (process.stdout as unknown as { write: typeof orig }).write = orig;
  }
  const j = JSON.parse(chunks[0]!);
  assert.equal(j.total, 671_026_419_200);
  assert.equal(j.activated, 37_552_297_472);
  assert.equal(j.mtp.total, 11_610_068_224);
  assert.ok(chunks[1]!.includes('198,080'));
});
