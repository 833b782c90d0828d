// Hugging Face config parsing: every shipped config, both rope styles, defaults, validation
// errors naming file and field, and the round trip through toHfConfigJson.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { REPO as repo, sharedDir } from './util/shared.js';
import {
  ConfigError, loadConfig, parseConfig, toHfConfigJson, writeHfConfig, type DeepseekV3Config, type LlamaConfig, type ModelConfig, type Qwen2Config,
} from '../src/models/config.js';

const shared = sharedDir();
const golden = path.join(shared, 'golden');
const config671 = path.join(shared, 'configs', 'deepseek-v3-671b.config.json');

function allConfigs(): string[] {
  const out: string[] = [];
  for (const d of fs.readdirSync(golden)) {
    const f = path.join(golden, d, 'config.json');
    if (fs.existsSync(f)) out.push(f);
  }
  out.push(config671);
  const bench = [path.join(repo, 'bench', 'configs'), path.join(process.cwd(), 'bench', 'configs')].find((d) => fs.existsSync(d));
  assert.ok(bench, 'bench/configs not found');
  if (bench) for (const f of fs.readdirSync(bench)) if (f.endsWith('.json')) out.push(path.join(bench, f));
  return out;
}

test('parses every shipped config (golden, 671B, bench)', () => {
  const files = allConfigs();
  assert.ok(files.length >= 7, files.join(', '));
  for (const f of files) {
    const c = loadConfig(f);
    assert.ok(['deepseek_v3', 'qwen2', 'llama'].includes(c.model_type), f);
    assert.ok(c.rope.theta > 0, f);
    // Round trip through toHfConfigJson gives the same typed config.
    const back = parseConfig(JSON.parse(JSON.stringify(toHfConfigJson(c))), `${f} (round trip)`);
    assertSameTyped(c, back, f);
  }
});

/** Equal on every typed field and on rope (the raw HF rope fields and extras may differ). */
function assertSameTyped(a: ModelConfig, b: ModelConfig, what: string): void {
  const skip = new Set(['extra', 'rope_theta', 'rope_scaling', 'rope_parameters']);
  for (const k of Object.keys(a)) {
    if (skip.has(k)) continue;
    assert.deepEqual((b as unknown as Record<string, unknown>)[k], (a as unknown as Record<string, unknown>)[k], `${what}: ${k}`);
  }
}

test('official 671B config: rope_theta + rope_scaling (yarn) normalised', () => {
  const c = loadConfig(config671) as DeepseekV3Config;
  assert.equal(c.model_type, 'deepseek_v3');
  assert.deepEqual(c.rope, { theta: 10000, type: 'yarn', factor: 40, originalMaxPositions: 4096, betaFast: 32, betaSlow: 1, mscale: 1, mscaleAllDim: 1 });
  assert.equal(c.rope_theta, 10000);
  assert.equal(c.q_lora_rank, 1536);
  assert.equal(c.kv_lora_rank, 512);
  assert.equal(c.qk_head_dim, 192);
  assert.equal(c.head_dim, 64);
  assert.equal(c.n_group, 8);
  assert.equal(c.topk_group, 4);
  assert.equal(c.num_nextn_predict_layers, 1);
  assert.equal(c.rope_interleave, true); // absent in the official file: transformers' default
  assert.equal(c.scoring_func, 'sigmoid');
  assert.equal(c.topk_method, 'noaux_tc');
  assert.ok('quantization_config' in c.extra);
  const hf = toHfConfigJson(c);
  assert.ok(!('quantization_config' in hf) && !('auto_map' in hf));
  assert.deepEqual(hf['rope_parameters'], { rope_theta: 10000, rope_type: 'yarn', factor: 40, original_max_position_embeddings: 4096, beta_fast: 32, beta_slow: 1, mscale: 1, mscale_all_dim: 1 });
  assert.equal(hf['rope_theta'], 10000);
  assert.equal((hf['rope_scaling'] as Record<string, unknown>)['type'], 'yarn');
  assert.deepEqual(hf['architectures'], ['DeepseekV3ForCausalLM']);
});

test('transformers 5 rope_parameters style (golden yarn, default) normalised', () => {
  const y = loadConfig(path.join(golden, 'deepseek_v3_tiny_yarn')) as DeepseekV3Config; // a directory
  assert.deepEqual(y.rope, { theta: 10000, type: 'yarn', factor: 4, originalMaxPositions: 64, betaFast: 32, betaSlow: 1, mscale: 1, mscaleAllDim: 1 });
  assert.equal(y.rope_theta, undefined);
  const d = loadConfig(path.join(golden, 'deepseek_v3_tiny', 'config.json')) as DeepseekV3Config;
  assert.deepEqual(d.rope, { theta: 10000, type: 'default' });
  assert.equal(d.q_lora_rank, 48);
  const n = loadConfig(path.join(golden, 'deepseek_v3_tiny_noqlora', 'config.json')) as DeepseekV3Config;
  assert.equal(n.q_lora_rank, null);
  const l = loadConfig(path.join(golden, 'llama_tiny', 'config.json')) as LlamaConfig;
  assert.equal(l.rope.theta, 500000);
  assert.equal(l.head_dim, 8);
  assert.equal(l.num_key_value_heads, 2);
  const q = loadConfig(path.join(golden, 'qwen2_tiny', 'config.json')) as Qwen2Config;
  assert.equal(q.rope.theta, 1e6);
  assert.equal(q.tie_word_embeddings, true);
  assert.equal(q.attention_bias, true);
  assert.equal(q.head_dim, 16); // 64 / 4, derived
  assert.equal(q.sliding_window, null);
  // yarn without beta/original positions: transformers' defaults
  const yy = parseConfig({ ...minimalDeepseek(), rope_scaling: { type: 'yarn', factor: 8 } }) as DeepseekV3Config;
  assert.deepEqual(yy.rope, { theta: 10000, type: 'yarn', factor: 8, betaFast: 32, betaSlow: 1, originalMaxPositions: 4096 });
  // llama3
  const l3 = parseConfig({ ...minimalLlama(), rope_theta: 500000, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } });
  assert.deepEqual(l3.rope, { theta: 500000, type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 });
});

function minimalDeepseek(): Record<string, unknown> {
  return {
    model_type: 'deepseek_v3', vocab_size: 100, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 4,
    num_attention_heads: 4, moe_intermediate_size: 16, q_lora_rank: null, kv_lora_rank: 16,
    qk_nope_head_dim: 8, qk_rope_head_dim: 4, v_head_dim: 8, n_routed_experts: 16,
  };
}

function minimalLlama(): Record<string, unknown> {
  return { model_type: 'llama', vocab_size: 100, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4 };
}

test('defaults as transformers gives them', () => {
  const d = parseConfig(minimalDeepseek()) as DeepseekV3Config;
  assert.equal(d.n_group, 8);
  assert.equal(d.topk_group, 4);
  assert.equal(d.num_experts_per_tok, 8);
  assert.equal(d.norm_topk_prob, true);
  assert.equal(d.routed_scaling_factor, 2.5);
  assert.equal(d.first_k_dense_replace, 3);
  assert.equal(d.num_nextn_predict_layers, 1);
  assert.equal(d.n_shared_experts, 1);
  assert.equal(d.rope_interleave, true);
  assert.equal(d.attention_bias, false);
  assert.equal(d.num_key_value_heads, 4);
  assert.equal(d.rms_norm_eps, 1e-6);
  assert.equal(d.max_position_embeddings, 4096);
  assert.equal(d.bos_token_id, 0);
  assert.equal(d.eos_token_id, 1);
  assert.equal(d.tie_word_embeddings, false);
  assert.deepEqual(d.rope, { theta: 10000, type: 'default' });
  const l = parseConfig(minimalLlama()) as LlamaConfig;
  assert.equal(l.head_dim, 8);
  assert.equal(l.num_key_value_heads, 4);
  assert.equal(l.mlp_bias, false);
  assert.equal(l.attention_bias, false);
  assert.equal(l.bos_token_id, 1);
  const q = parseConfig({ ...minimalLlama(), model_type: 'qwen2', head_dim: 16 }) as Qwen2Config;
  assert.equal(q.head_dim, 16);
  assert.equal(q.tie_word_embeddings, false);
  assert.equal(q.layer_types.length, 2);
  assert.equal(q.max_window_layers, 28);
});

test('validation errors name the file and the field', () => {
  const src = '/some/dir/config.json';
  const bad = (patch: Record<string, unknown>, base = minimalDeepseek()): Record<string, unknown> => {
    const j = { ...base, ...patch };
    for (const [k, v] of Object.entries(patch)) if (v === undefined) delete j[k];
    return j;
  };
  const cases: Array<[string, Record<string, unknown>, string, RegExp]> = [
    ['missing', bad({ hidden_size: undefined }), 'hidden_size', /missing \(required\)/],
    ['missing q_lora_rank', bad({ q_lora_rank: undefined }), 'q_lora_rank', /missing \(required; use null for none\)/],
    ['wrong type', bad({ hidden_size: '32' }), 'hidden_size', /expected an integer, got "32"/],
    ['not integer', bad({ num_hidden_layers: 2.5 }), 'num_hidden_layers', /expected an integer, got 2.5/],
    ['bool', bad({ norm_topk_prob: 'yes' }), 'norm_topk_prob', /expected true or false/],
    ['n_group', bad({ n_group: 3 }), 'n_group', /n_routed_experts \(16\) is not divisible by n_group \(3\)/],
    ['topk_group', bad({ n_group: 4, topk_group: 5 }), 'topk_group', /topk_group \(5\) is larger than n_group \(4\)/],
    ['top-k', bad({ n_group: 1, topk_group: 1, num_experts_per_tok: 17 }), 'num_experts_per_tok', /num_experts_per_tok \(17\) is larger than n_routed_experts \(16\)/],
    ['top-k reach', bad({ n_group: 4, topk_group: 1, num_experts_per_tok: 6 }), 'num_experts_per_tok', /exceeds the experts in topk_group/],
    ['first_k', bad({ first_k_dense_replace: 9 }), 'first_k_dense_replace', /larger than num_hidden_layers/],
    ['rope type', bad({ rope_scaling: { type: 'weird', factor: 2 } }), 'rope_scaling.rope_type', /expected one of default/],
    ['yarn factor', bad({ rope_parameters: { rope_type: 'yarn', rope_theta: 10000 } }), 'rope_parameters.factor', /required for rope_type "yarn"/],
    ['theta', bad({ rope_theta: -1 }), 'rope_theta', /positive/],
    ['model_type', bad({ model_type: 'gpt2' }), 'model_type', /unsupported model_type "gpt2" \(supported: deepseek_v3, qwen2, llama\)/],
    ['no model_type', bad({ model_type: undefined }), 'model_type', /missing/],
    ['heads', bad({ hidden_size: 30 }, minimalLlama()), 'hidden_size', /hidden_size \(30\) is not divisible by num_attention_heads \(4\)/],
    ['gqa', bad({ num_key_value_heads: 3 }, minimalLlama()), 'num_key_value_heads', /must be a multiple of num_key_value_heads \(3\)/],
    ['mla kv heads', bad({ num_key_value_heads: 2 }), 'num_key_value_heads', /MLA/],
    ['eos', bad({ eos_token_id: 'x' }, minimalLlama()), 'eos_token_id', /token id/],
  ];
  for (const [what, json, field, re] of cases) {
    assert.throws(() => parseConfig(json, src), (e: unknown) => {
      assert.ok(e instanceof ConfigError, what);
      assert.ok(e.message.includes(src), `${what}: no file in "${e.message}"`);
      assert.ok(e.message.includes(`"${field}"`), `${what}: no field ${field} in "${e.message}"`);
      assert.match(e.message, re, what);
      assert.equal(e.field, field);
      return true;
    }, what);
  }
  // hidden not divisible by heads is fine when head_dim is explicit
  assert.equal((parseConfig({ ...minimalLlama(), hidden_size: 30, head_dim: 8 }) as LlamaConfig).head_dim, 8);
});

test('loadConfig errors name the file; writeHfConfig round trips through disk', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'r1ts-cfg-'));
  try {
    const f = path.join(dir, 'config.json');
    fs.writeFileSync(f, '{"model_type": "llama",');
    assert.throws(() => loadConfig(f), (e: Error) => e.message.includes(f) && /not valid JSON/.test(e.message));
    assert.throws(() => loadConfig(path.join(dir, 'nope.json')), /nope.json: cannot read/);
    const c = loadConfig(config671);
    writeHfConfig(f, c, { dtype: 'bfloat16' });
    const back = loadConfig(dir);
    assertSameTyped(c, back, 'disk round trip');
    const raw = JSON.parse(fs.readFileSync(f, 'utf8'));
    assert.equal(raw.dtype, 'bfloat16');
    assert.equal(raw.model_type, 'deepseek_v3');
    assert.equal(raw.num_nextn_predict_layers, 1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('golden configs written back match the originals on every field transformers wrote', () => {
  for (const m of ['deepseek_v3_tiny', 'deepseek_v3_tiny_yarn', 'deepseek_v3_tiny_noqlora', 'qwen2_tiny', 'llama_tiny']) {
    const f = path.join(golden, m, 'config.json');
    const orig = JSON.parse(fs.readFileSync(f, 'utf8')) as Record<string, unknown>;
    const hf = toHfConfigJson(loadConfig(f));
    for (const [k, v] of Object.entries(orig)) {
      if (k === 'rope_parameters') {
        const rp = hf[k] as Record<string, unknown>;
        for (const [rk, rv] of Object.entries(v as Record<string, unknown>)) if (rk !== 'type') assert.equal(rp[rk], rv, `${m}: rope_parameters.${rk}`);
        continue;
      }
      assert.deepEqual(hf[k], v, `${m}: ${k}`);
    }
  }
});
