// GGUF: the writer/reader round trip, the rotary row permutation, and the export of small random
// Qwen2 and Llama models checked token for token against llama.cpp (node-llama-cpp's prebuilt
// CPU binaries, loaded in-process).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  exportGguf, ggufTensorF32, ggufValue, gv, permuteRotaryRows, readGguf, writeGguf, GGUF_MAGIC, type GgufValue,
} from '../src/io/gguf.js';
import { f16BitsToF32, f32ToF16Bits } from '../src/io/safetensors.js';
import { parseConfig } from '../src/models/config.js';
import { createModel, loadModel, saveModel } from '../src/models/load.js';
import { generate } from '../src/generate/generate.js';
import { noGrad, tensor } from '../src/tensor/index.js';
import { saveBpeTokenizer, Tokenizer, trainBpe, type PretokenizerStyle } from '../src/tokenizer/index.js';
import { syntheticCorpus } from '../src/tokenizer/synthetic.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'r1ts-gguf-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('gguf: metadata of every type and F32/F16 tensors round trip', () => {
  const meta = new Map<string, GgufValue>([
    ['general.architecture', gv.str('llama')],
    ['u8', gv.u8(255)], ['i8', gv.i8(-128)], ['u16', gv.u16(65535)], ['i16', gv.i16(-32768)],
    ['u32', gv.u32(4294967295)], ['i32', gv.i32(-2147483648)], ['f32', gv.f32(0.5)], ['f64', gv.f64(Math.PI)],
    ['u64', gv.u64(2n ** 63n + 5n)], ['i64', gv.i64(-(2n ** 62n))], ['bool', gv.bool(true)],
    ['unicode', gv.str('héllo ✓ 日本')],
    ['arr.str', gv.arr('string', ['a', '', 'Ġthe', '<|eos|>'])],
    ['arr.i32', gv.arr('i32', [1, -2, 3])],
    ['arr.f32', gv.arr('f32', [0.25, -1.5])],
    ['arr.bool', gv.arr('bool', [true, false])],
    ['arr.empty', gv.arr('u32', [])],
  ]);
  const a = Float32Array.from({ length: 15 }, (_, i) => i * 0.37 - 2); // 60 bytes: forces padding
  const b = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => Math.sin(i) * 3);
  const c = Float32Array.from([1, 2, 3]);
  const file = path.join(tmp, 'roundtrip.gguf');
  writeGguf(file, meta, [
    { name: 'a', shape: [3, 5], type: 'F32', data: a },
    { name: 'b', shape: [2, 3, 4], type: 'F16', data: () => b },
    { name: 'c', shape: [3], type: 'F32', data: c },
  ]);
  const bytes = fs.readFileSync(file);
  assert.equal(bytes.readUInt32LE(0), GGUF_MAGIC);
  assert.equal(bytes.toString('latin1', 0, 4), 'GGUF');
  assert.equal(bytes.readUInt32LE(4), 3);
  const g = readGguf(file);
  assert.equal(g.version, 3);
  assert.equal(g.dataOffset % 32, 0);
  assert.deepEqual([...g.metadata.keys()], [...meta.keys()]);
  for (const [k, v] of meta) {
    const r = g.metadata.get(k)!;
    assert.equal(r.type, v.type, k);
    if (v.type === 'u64' || v.type === 'i64') assert.equal(r.value, BigInt(v.value), k);
    else if (v.type === 'f32') assert.equal(r.value, Math.fround(v.value), k);
    else if (v.type === 'array' && v.itemType === 'f32') assert.deepEqual(r.value, v.value.map((x) => Math.fround(x as number)), k);
    else assert.deepEqual(r.value, v.value, k);
    if (v.type === 'array') assert.equal((r as { itemType: string }).itemType, v.itemType);
  }
  assert.deepEqual(g.tensors.map((t) => [t.name, t.shape, t.type]), [['a', [3, 5], 'F32'], ['b', [2, 3, 4], 'F16'], ['c', [3], 'F32']]);
  for (const t of g.tensors) assert.equal(t.offset % 32, 0, `${t.name} aligned`);
  assert.equal(g.tensors[1]!.offset, 64); // 60 bytes of a, padded to 64
  // ne on disk is the shape reversed: read it raw for tensor b.
  assert.deepEqual(ggufTensorF32(g, 'a'), a);
  assert.deepEqual(ggufTensorF32(g, 'b'), b.map((x) => f16BitsToF32(f32ToF16Bits(x))));
  assert.deepEqual(ggufTensorF32(g, 'c'), c);
  assert.equal(bytes.length, g.dataOffset + g.tensors[2]!.offset + 32); // the last tensor is padded too
  assert.throws(() => writeGguf(path.join(tmp, 'bad.gguf'), { x: gv.u8(256) }, []), /out of range/);
});

test('gguf: permuteRotaryRows turns half-split rotation into adjacent-pair rotation', () => {
  // One head of D = 8 rows, 3 columns; the rows of W·x rotated half-split equal, after the
  // permutation, the rows of W'·x rotated in adjacent pairs.
  const D = 8, C = 3, heads = 2;
  const w = Float32Array.from({ length: heads * D * C }, (_, i) => Math.cos(i * 1.7));
  const x = [0.3, -1.2, 0.8];
  const p = permuteRotaryRows(w, heads, C);
  const mv = (m: Float32Array, r: number) => x.reduce((s, xi, j) => s + m[r * C + j]! * xi, 0);
  const theta = (i: number) => 0.9 * 10000 ** (-2 * i / D);
  for (let h = 0; h < heads; h++) {
    const y = Array.from({ length: D }, (_, r) => mv(w, h * D + r));
    const yp = Array.from({ length: D }, (_, r) => mv(p, h * D + r));
    for (let i = 0; i < D / 2; i++) {
      const [c, s] = [Math.cos(theta(i)), Math.sin(theta(i))];
      const half = [y[i]! * c - y[i + D / 2]! * s, y[i + D / 2]! * c + y[i]! * s];
      const pair = [yp[2 * i]! * c - yp[2 * i + 1]! * s, yp[2 * i + 1]! * c + yp[2 * i]! * s];
      assert.ok(Math.abs(half[0]! - pair[0]!) < 1e-9 && Math.abs(half[1]! - pair[1]!) < 1e-9);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Export + llama.cpp

type LlamaModule = typeof import('node-llama-cpp');

async function loadLlamaCpp(): Promise<{ mod: LlamaModule; llama: Awaited<ReturnType<LlamaModule['getLlama']>> } | string> {
  let mod: LlamaModule;
  try {
    mod = await import('node-llama-cpp');
  } catch (e) {
    return `node-llama-cpp is not installed (${(e as Error).message.split('\n')[0]})`;
  }
  try {
    const llama = await mod.getLlama({ gpu: false, build: 'never', usePrebuiltBinaries: true, progressLogs: false, skipDownload: true, logLevel: mod.LlamaLogLevel.error, maxThreads: 2 });
    return { mod, llama };
  } catch (e) {
    return `node-llama-cpp could not load its prebuilt llama.cpp binary (@node-llama-cpp/${process.platform}-${process.arch}): ${(e as Error).message.split('\n')[0]}`;
  }
}

const llamaCpp = loadLlamaCpp();

const TEXTS = [
  'What is 12 + 30? Let me check: 12 + 30 = 42.',
  'The quick brown fox jumps over the lazy dog.\n\nWait, let me verify that.',
  "It's 2024: we'll see, isn't it?  Spaces   and\ttabs.",
];

type Kind = 'qwen2' | 'llama' | 'deepseek_v3';
const V = 512;

const CONFIGS: Record<Kind, Record<string, unknown>> = {
  qwen2: {
    model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'], tie_word_embeddings: true, rope_theta: 1000000,
    hidden_size: 64, intermediate_size: 160, num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 2,
  },
  llama: {
    model_type: 'llama', architectures: ['LlamaForCausalLM'], tie_word_embeddings: false, rope_theta: 10000,
    // Llama 3 frequency scaling (as rope_freqs.weight in the GGUF); with head_dim 16 some
    // frequencies are kept, some divided by 8, some in between.
    rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 },
    hidden_size: 64, intermediate_size: 160, num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 2,
  },
  deepseek_v3: {
    model_type: 'deepseek_v3', architectures: ['DeepseekV3ForCausalLM'], tie_word_embeddings: false, rope_theta: 10000,
    hidden_size: 64, intermediate_size: 128, moe_intermediate_size: 32, num_hidden_layers: 3, first_k_dense_replace: 1,
    num_attention_heads: 4, num_key_value_heads: 4, q_lora_rank: 48, kv_lora_rank: 32, qk_nope_head_dim: 16,
    qk_rope_head_dim: 8, v_head_dim: 16, n_routed_experts: 8, n_shared_experts: 1, num_experts_per_tok: 2, n_group: 4,
    topk_group: 2, norm_topk_prob: true, routed_scaling_factor: 2.5, rope_interleave: true, num_nextn_predict_layers: 1,
  },
};

/**
 * A random checkpoint with a trained tokenizer of the model's vocab size. Weights are drawn
 * wider than the usual 0.02 so that next-token distributions are far from uniform, and every
 * 1-D parameter (norm weights, biases, DeepSeek's e_score_correction_bias) is perturbed so that
 * a wrong mapping of any of them shows.
 */
function makeCheckpoint(kind: Kind, style: PretokenizerStyle): { dir: string; tok: Tokenizer } {
  const dir = path.join(tmp, kind);
  const json = {
    ...CONFIGS[kind], vocab_size: V, max_position_embeddings: 512, rms_norm_eps: 1e-6, hidden_act: 'silu',
    initializer_range: 0.15, bos_token_id: 0, eos_token_id: 1,
  };
  const model = createModel(parseConfig(json), { seed: 11 });
  const state = model.stateDict();
  let seed = 99;
  const noise = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * 0.3;
  model.loadState((name, shape) => (shape.length === 1 ? Float32Array.from(state.get(name)!.toArray(), (x) => x + noise()) : undefined), false);
  saveModel(model, dir);
  const bpe = trainBpe(syntheticCorpus(120_000, 7), { vocabSize: V, specialTokens: ['<|bos|>', '<|eos|>'], pretokenizer: style });
  assert.equal(bpe.vocab.length, V);
  saveBpeTokenizer(bpe, dir, { bosToken: '<|bos|>', eosToken: '<|eos|>', addBosToken: kind !== 'qwen2' });
  return { dir, tok: Tokenizer.fromFile(dir) };
}

function logSoftmaxRows(logits: ArrayLike<number>): Float64Array[] {
  const rows: Float64Array[] = [];
  for (let r = 0; r * V < logits.length; r++) {
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, logits[r * V + v]!);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(logits[r * V + v]! - m);
    rows.push(Float64Array.from({ length: V }, (_, v) => logits[r * V + v]! - m - Math.log(s)));
  }
  return rows;
}

type Seq = { controlledEvaluate: (input: never[]) => Promise<({ next: { probabilities?: Map<number, number> } } | undefined)[]> };

async function compareWithLlamaCpp(kind: Kind, style: PretokenizerStyle, opts: { f16: boolean }, t: { skip: (m: string) => void; diagnostic: (m: string) => void }): Promise<void> {
  const arch = kind === 'deepseek_v3' ? 'deepseek2' : kind;
  const { dir, tok } = makeCheckpoint(kind, style);
  const file = path.join(tmp, `${kind}-f32.gguf`);
  const res = exportGguf(dir, file, { dtype: 'f32' });
  assert.equal(res.architecture, arch);

  // What was written.
  const g = readGguf(file);
  const names = g.tensors.map((x) => x.name);
  assert.ok(names.includes('token_embd.weight') && names.includes('output_norm.weight') && names.includes('blk.2.attn_output.weight'));
  assert.equal(names.includes('output.weight'), kind !== 'qwen2'); // qwen2 ties the head
  assert.equal(ggufValue(g, 'general.architecture'), arch);
  assert.equal(ggufValue(g, 'tokenizer.ggml.model'), 'gpt2');
  assert.equal(ggufValue(g, 'tokenizer.ggml.pre'), style === 'deepseek' ? 'deepseek-v3' : style === 'llama3' ? 'llama-bpe' : 'gpt-2');
  assert.equal((ggufValue(g, 'tokenizer.ggml.tokens') as string[]).length, V);
  assert.equal((ggufValue(g, 'tokenizer.ggml.merges') as string[]).length, V - 256 - 2);
  assert.deepEqual((ggufValue(g, 'tokenizer.ggml.token_type') as number[]).slice(0, 3), [3, 3, 1]);
  if (kind === 'deepseek_v3') {
    assert.equal(ggufValue(g, 'deepseek2.attention.head_count_kv'), 1);
    assert.equal(ggufValue(g, 'deepseek2.expert_gating_func'), 2);
    assert.deepEqual(g.tensors.find((x) => x.name === 'blk.1.ffn_up_exps.weight')!.shape, [8, 32, 64]);
    assert.deepEqual(g.tensors.find((x) => x.name === 'blk.1.attn_k_b.weight')!.shape, [4, 32, 16]);
    assert.deepEqual(g.tensors.find((x) => x.name === 'blk.1.attn_v_b.weight')!.shape, [4, 16, 32]);
    assert.ok(names.includes('blk.2.exp_probs_b.bias') && names.includes('blk.0.ffn_gate.weight') && !names.includes('blk.0.ffn_gate_inp.weight'));
    assert.ok(res.skipped.length > 0 && res.skipped.every((n) => n.startsWith('model.layers.3.')), 'the MTP module is left out');
  } else {
    assert.equal(ggufValue(g, `${kind}.attention.head_count_kv`), 2);
    assert.equal(names.includes('blk.0.attn_q.bias'), kind === 'qwen2');
    assert.equal(names.includes('rope_freqs.weight'), kind === 'llama');
    assert.deepEqual(g.tensors.find((x) => x.name === 'blk.0.ffn_up.weight')!.shape, [160, 64]);
  }

  const cpp = await llamaCpp;
  if (typeof cpp === 'string') return t.skip(cpp);
  const ours = loadModel(dir);
  /** Largest |log p_llama.cpp − log p_ours| over the next-token distributions at every position of a prompt (teacher forcing). */
  const maxLogProbDiff = async (seq: Seq, prompt: number[]) => {
    const res = await seq.controlledEvaluate(prompt.map((id) => [id, { generateNext: { probabilities: true } }] as never));
    const lp = logSoftmaxRows(noGrad(() => ours.forward(tensor(Int32Array.from(prompt), [1, prompt.length], { dtype: 'i32' })).logits.toArray()));
    let d = 0;
    prompt.forEach((_, pos) => {
      const p = res[pos]!.next.probabilities!;
      assert.equal(p.size, V);
      for (let v = 0; v < V; v++) d = Math.max(d, Math.abs(Math.log(p.get(v)!) - lp[pos]![v]!));
    });
    return d;
  };
  const longPrompt = tok.encode(TEXTS[0]! + ' ' + TEXTS[1]!);
  const ctxOptions = { contextSize: 256, sequences: 1, threads: 2, flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' } as const;

  const model = await cpp.llama.loadModel({ modelPath: file, gpuLayers: 0, useMmap: false });
  try {
    // The tokenizer as llama.cpp reads it from the GGUF: same ids as ours.
    for (const text of TEXTS) assert.deepEqual(Array.from(model.tokenize(text)), tok.encode(text, { addSpecialTokens: false }), `tokenize ${JSON.stringify(text)}`);
    assert.equal(model.tokens.bos, 0);
    assert.equal(model.tokens.eos, 1);

    // llama.cpp with f32 weights and an f32 KV cache against ours.
    const ctx = await model.createContext(ctxOptions);
    try {
      const seq = ctx.getSequence();
      // The sharp check: next-token log-probabilities. (Without the llama q/k permutation they
      // are off by ~1, while greedy tokens of a random model can still agree.)
      const d = await maxLogProbDiff(seq as never, longPrompt);
      t.diagnostic(`${arch} f32: max |Δ log p| over ${longPrompt.length} positions × ${V} tokens = ${d.toExponential(2)}`);
      assert.ok(d < 2e-4, `f32: next-token log-probabilities differ by up to ${d}`);
      // Greedy decoding with the KV cache, token for token.
      const N = 16;
      for (const text of TEXTS) {
        const prompt = tok.encode(text); // BOS where the tokenizer adds one
        await seq.clearHistory();
        const got: number[] = [];
        for await (const id of seq.evaluate(prompt as never[], { temperature: 0, yieldEogToken: true })) {
          got.push(id as number);
          if (got.length === N) break;
        }
        const [want] = generate(ours, [prompt], { maxNewTokens: N });
        assert.deepEqual(got, want!.tokens, `greedy continuation of ${JSON.stringify(text)}`);
        t.diagnostic(`${arch} f32 greedy ${N} tokens after ${prompt.length}-token prompt: identical (${got.slice(0, 6).join(' ')} …)`);
      }
    } finally {
      await ctx.dispose();
    }
  } finally {
    await model.dispose();
  }
  if (!opts.f16) return;

  // f16 matrices: close, not equal (llama.cpp also rounds the activations to f16 in those matmuls).
  const f16 = path.join(tmp, `${kind}-f16.gguf`);
  exportGguf(dir, f16, { dtype: 'f16' });
  const g16 = readGguf(f16);
  assert.equal(ggufValue(g16, 'general.file_type'), 1);
  assert.equal(g16.tensors.find((x) => x.name === 'blk.0.attn_output.weight')!.type, 'F16');
  assert.equal(g16.tensors.find((x) => x.name === 'blk.0.attn_norm.weight')!.type, 'F32');
  assert.ok(fs.statSync(f16).size < fs.statSync(file).size * 0.6);
  const m16 = await cpp.llama.loadModel({ modelPath: f16, gpuLayers: 0, useMmap: false });
  try {
    const ctx = await m16.createContext(ctxOptions);
    const d = await maxLogProbDiff(ctx.getSequence() as never, longPrompt);
    t.diagnostic(`${arch} f16: max |Δ log p| = ${d.toExponential(2)}`);
    assert.ok(d > 0 && d < 0.1, `f16: next-token log-probabilities differ by up to ${d}`);
    await ctx.dispose();
  } finally {
    await m16.dispose();
  }
}

test('gguf export: Qwen2 (tied head, q/k/v biases, DeepSeek-V3 split regex) agrees with llama.cpp', { timeout: 60_000 }, async (t) => {
  await compareWithLlamaCpp('qwen2', 'deepseek', { f16: false }, t);
});

test('gguf export: Llama (q/k permuted to the interleaved rotary layout, Llama-3 rope scaling and split regex; f32 and f16) agrees with llama.cpp', { timeout: 60_000 }, async (t) => {
  await compareWithLlamaCpp('llama', 'llama3', { f16: true }, t);
});

test('gguf export: DeepSeek-V3 as deepseek2 (MLA with k_b/v_b, sigmoid group-limited routing, bias) agrees with llama.cpp', { timeout: 60_000 }, async (t) => {
  await compareWithLlamaCpp('deepseek_v3', 'deepseek', { f16: false }, t);
});

after(async () => {
  const cpp = await llamaCpp;
  if (typeof cpp !== 'string') await cpp.llama.dispose();
});
