// Models: conformance with transformers on ../shared/golden, MoE routing and balancing, MTP,
// checkpoint round trips and loading errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as T from '../src/tensor/index.js';
import { backward, noGrad } from '../src/tensor/index.js';
import { conformanceCommand } from '../src/cli/commands/conformance.js';
import { parseConfig, DeepseekV3Config } from '../src/models/config.js';
import { DeepseekMoE, DeepseekV3ForCausalLM } from '../src/models/deepseek-v3.js';
import { loadModel, saveModel } from '../src/models/load.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { parameterSpecs } from '../src/models/params.js';
import { relativeError } from '../src/models/conformance.js';
import { GOLDEN } from './util/shared.js';


function tinyV3(overrides: Record<string, unknown> = {}): DeepseekV3Config {
  const json = JSON.parse(fs.readFileSync(path.join(GOLDEN, 'deepseek_v3_tiny/config.json'), 'utf8'));
  return parseConfig({ ...json, ...overrides }, 'tiny') as DeepseekV3Config;
}

test('conformance: every golden model matches transformers', () => {
  const lines: string[] = [];
  const failed = conformanceCommand(GOLDEN, { log: (s) => lines.push(s) });
  assert.equal(failed, 0, lines.join('\n'));
  assert.match(lines.at(-1)!, /^5 passed, 0 failed$/);
});

test('conformance fails on a perturbed model', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'r1ts-conf-'));
  const src = path.join(GOLDEN, 'qwen2_tiny');
  for (const f of fs.readdirSync(src)) fs.copyFileSync(path.join(src, f), path.join(dir, f));
  const model = loadModel(dir);
  const w = model.stateDict().get('model.layers.1.mlp.up_proj.weight')!;
  const data = Float32Array.from(w.toArray());
  data[7] += 0.05;
  w.backend.copy(w.backend.upload(data, 'f32'), 0, w.storage, 0, w.size);
  saveModel(model, dir);
  const lines: string[] = [];
  assert.equal(conformanceCommand(dir, { log: (s) => lines.push(s) }), 1);
  assert.match(lines.join('\n'), /gradient of .* differs|logits differ/);
  assert.match(lines.at(-1)!, /^0 passed, 1 failed$/);
});

test('model parameters match the checkpoint layout of params.ts', () => {
  for (const mtp of [false, true]) {
    const cfg = tinyV3();
    const model = new DeepseekV3ForCausalLM(cfg, { mtp });
    const ours = [...model.stateDict()].map(([n, t]) => `${n}:${t.shape}`).sort();
    const specs = parameterSpecs(cfg, { mtp }).map((s) => `${s.name}:${s.shape}`).sort();
    assert.deepEqual(ours, specs);
  }
});

test('group-limited routing: groups by their top-2 sum, bias only chooses', () => {
  // 8 experts in 4 groups of 2, keep 2 groups, top-2 experts.
  const cfg = tinyV3();
  const moe = new DeepseekMoE(cfg, { rng: new T.Rng(1), std: 0.02 });
  const s = [0.9, 0.1, 0.5, 0.45, 0.2, 0.2, 0.6, 0.05];
  // group sums: g0 1.0, g1 0.95, g2 0.4, g3 0.65 → keep g0, g1 → experts 0 and 2.
  let r = moe.route(T.tensor(s, [1, 8]));
  assert.deepEqual(Array.from(r.indices.toArray()), [0, 2]);
  // A bias on expert 6 lifts group 3 and expert 6 into the choice; expert 0 stays.
  const bias = moe.gate.e_score_correction_bias;
  bias.backend.copy(bias.backend.upload([0, 0, 0, 0, 0, 0, 0.5, 0], 'f32'), 0, bias.storage, 0, 8);
  r = moe.route(T.tensor(s, [1, 8]));
  assert.deepEqual(Array.from(r.indices.toArray()), [6, 0]);
  assert.deepEqual(Array.from(r.load), [1, 0, 0, 0, 0, 0, 1, 0]);
});

test('MoE: the inference path (one backend call) equals the differentiable one', () => {
  const moe = new DeepseekMoE(tinyV3(), { rng: new T.Rng(3), std: 0.3 });
  for (const [B, Tn] of [[1, 1], [3, 7]]) {
    const x = T.randn([B, Tn, tinyV3().hidden_size], new T.Rng(B + Tn));
    const trained = moe.forward(x); // grad mode: gather, grouped GEMMs, scatter
    const inferred = noGrad(() => moe.forward(x));
    const err = relativeError(Float32Array.from(inferred.toArray()), Float32Array.from(trained.toArray()));
    assert.ok(err < 1e-6, `B=${B} T=${Tn}: relative error ${err}`);
  }
  assert.throws(() => T.moeExperts(T.randn([2, 4], new T.Rng(1)), T.tensor([0, 0], [2, 1], { dtype: 'i32' }), T.full([2, 1], 1),
    [T.randn([3, 4], new T.Rng(2), 1, 0, { requiresGrad: true })], [T.randn([3, 4], new T.Rng(2))], [T.randn([4, 3], new T.Rng(2))]),
  /moeExperts has no gradient/);
});

test('auxiliary-loss-free bias update moves toward balance', () => {
  const moe = new DeepseekMoE(tinyV3(), { rng: new T.Rng(1), std: 0.02 });
  moe.updateBias(0.01, Int32Array.from([10, 0, 2, 2, 2, 2, 1, 1]));
  const b = Array.from(moe.gate.e_score_correction_bias.toArray());
  assert.deepEqual(b.map((x) => Math.round(x * 1000) / 1000), [-0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01]);
});

test('training loss: MTP and balance terms, gradients reach every part', () => {
  const model = new DeepseekV3ForCausalLM(tinyV3(), { seed: 3 });
  for (const moe of model.moeLayers()) moe.balanceAlpha = 0.01;
  const ids = T.randint([2, 12], 512, new T.Rng(4));
  const out = model.trainingLoss(ids, { mtpWeight: 0.3 });
  assert.ok(out.mtp !== null && out.mtp > 5 && out.mtp < 8, `mtp loss ${out.mtp}`);
  assert.ok(out.balance !== null && out.balance > 0);
  backward(out.loss);
  for (const [name, p] of model.namedParameters()) {
    if (/experts\.\d+\./.test(name)) continue; // an expert may receive no token
    assert.ok(p.grad, `${name} got no gradient`);
  }
  assert.ok(model.namedParameters().some(([n, p]) => n.includes('eh_proj') && p.grad));
  // The loads of the last forward are kept for the bias update; K slots per token.
  const loads = model.moeLayers().map((m) => m.lastLoad.reduce((a, b) => a + b, 0));
  assert.ok(loads.every((l) => l === 2 * 11 * 2 || l === 2 * 12 * 2), `loads ${loads}`);
});

test('save then load reproduces the model exactly (with MTP)', () => {
  const model = new DeepseekV3ForCausalLM(tinyV3(), { seed: 5 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'r1ts-save-'));
  saveModel(model, dir);
  const again = loadModel(dir) as DeepseekV3ForCausalLM;
  assert.equal(again.mtp.length, 1);
  const ids = T.randint([1, 9], 512, new T.Rng(6));
  const a = noGrad(() => model.forward(ids).logits.toArray());
  const b = noGrad(() => again.forward(ids).logits.toArray());
  assert.equal(relativeError(b, a), 0);
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  assert.equal(cfg.model_type, 'deepseek_v3');
  assert.equal(cfg.num_nextn_predict_layers, 1);
});

test('loading names the problem: missing tensor, unexpected tensor, wrong shape', () => {
  const model = new DeepseekV3ForCausalLM(tinyV3(), { seed: 5, mtp: false });
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'r1ts-bad-'));
  saveModel(model, base);
  const variant = (name: string, edit: (t: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>) => void): string => {
    const dir = path.join(base, name);
    fs.mkdirSync(dir);
    fs.copyFileSync(path.join(base, 'config.json'), path.join(dir, 'config.json'));
    const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
    for (const [n, t] of model.stateDict()) tensors[n] = { dtype: 'F32', shape: [...t.shape], data: Float32Array.from(t.toArray()) };
    edit(tensors);
    writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
    return dir;
  };
  const missing = variant('missing', (t) => { delete t['model.layers.2.self_attn.kv_b_proj.weight']; });
  assert.throws(() => loadModel(missing), /lacks 1 tensors.*model\.layers\.2\.self_attn\.kv_b_proj\.weight/);
  const extra = variant('extra', (t) => { t['model.layers.9.mlp.up_proj.weight'] = { dtype: 'F32', shape: [2], data: new Float32Array(2) }; });
  assert.throws(() => loadModel(extra), /does not have: model\.layers\.9\.mlp\.up_proj\.weight/);
  const shape = variant('shape', (t) => { t['model.norm.weight'] = { dtype: 'F32', shape: [8, 8], data: new Float32Array(64) }; });
  assert.throws(() => loadModel(shape), /model\.norm\.weight/);
});
