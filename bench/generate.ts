// Decode benchmark: greedy generation with a KV cache, in tokens/s, at batch 1 and batch 32, for
// a small Qwen2-architecture model and the small DeepSeek-V3 config, against llama.cpp
// (node-llama-cpp 3.21.1's prebuilt CPU build, loading the same weights through our GGUF export)
// and plain PyTorch (bench/torch/decode.py), all f32 and 2 threads, in the same run.
//
//   npm run bench:generate        (tsc -p . && node dist/bench/generate.js [--quick])
//
// Each measurement: a 32-token prompt per row, 128 new tokens per row, greedy. Decode throughput
// = B × 127 / (time from the first generated token to the last): prefill and the first token
// are left out. For r1ts that time is generate(128 tokens) − generate(1 token) of the same run;
// llama.cpp and PyTorch time it directly. Medians over 3 runs, after a short warm-up.
// llama.cpp runs with an f32 KV cache (its default is f16) so that all three keep the same precision;
// batch 32 is 32 sequences of one context, which node-llama-cpp evaluates in one batch per step.
// Weights are random (N(0, 0.1)); the generated tokens of the first row are compared across the
// engines as a check that they run the same model (f32 rounding may make long random runs part).
// The last line is a JSON summary; its headline keys are those of the Qwen2 model.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { exportGguf } from '../src/io/gguf.js';
import { parseConfig, type DeepseekV3Config } from '../src/models/config.js';
import { createModel, saveModel } from '../src/models/load.js';
import type { CausalLM } from '../src/models/common.js';
import { DeepseekV3ForCausalLM } from '../src/models/deepseek-v3.js';
import { generate } from '../src/generate/generate.js';
import { mtpAcceptance, type MtpAcceptance } from '../src/generate/speculative.js';
import { saveBpeTokenizer, trainBpe } from '../src/tokenizer/index.js';
import { syntheticCorpus } from '../src/tokenizer/synthetic.js';
import { setThreads } from '../src/backend/cpu/native.js';
import { Rng } from '../src/tensor/index.js';
import { isEntryPoint, median, printTable, REPO, runTorchPeer, torchAvailable } from './common.js';

const THREADS = 2;
const PROMPT = 32;
const BATCHES = [1, 32] as const;
/** Seconds of timed runs one measurement may take before it is cut to fewer runs. */
const BUDGET_S = 45;

interface Measured { tps: number; tokens: number[]; runs: number }

interface EngineResult {
  engine: string;
  threads: number;
  /** decode tokens/s per batch size */
  tps: Record<number, number | null>;
  /** timed runs per batch size */
  runs: Record<number, number>;
  /** generated tokens of row 0 at batch 1 */
  tokens: number[] | null;
  note?: string;
}

interface ModelResult {
  name: string;
  params: number;
  engines: EngineResult[];
}

const QWEN2_SMALL = {
  architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', vocab_size: 8192, hidden_size: 256, intermediate_size: 1024,
  num_hidden_layers: 4, num_attention_heads: 8, num_key_value_heads: 2, max_position_embeddings: 1024,
  rms_norm_eps: 1e-6, rope_theta: 10000, tie_word_embeddings: false, bos_token_id: 0, eos_token_id: 1,
};

function randomPrompts(B: number, seed: number, vocab: number): number[][] {
  const rng = new Rng(seed);
  return Array.from({ length: B }, () => Array.from({ length: PROMPT }, () => 2 + Math.floor(rng.uniform() * (vocab - 2))));
}

/** Runs to time: `runs`, or fewer when one run would take long (a loaded machine), so the bench stays short. */
function runsFor(runs: number, estimateS: number, budgetS: number): number {
  return Math.max(1, Math.min(runs, Math.floor(budgetS / Math.max(estimateS, 1e-9))));
}

/** r1ts: median over runs of generate(NEW) − generate(1). */
function measureOurs(model: CausalLM, prompts: number[][], NEW: number, runs: number, threads: number): Measured {
  setThreads(threads);
  let t = performance.now();
  generate(model, prompts, { maxNewTokens: 8 }); // warm-up
  const n = runsFor(runs, ((performance.now() - t) / 1000) * (NEW / 8), BUDGET_S);
  const diffs: number[] = [];
  let tokens: number[] = [];
  for (let r = 0; r < n; r++) {
    t = performance.now();
    generate(model, prompts, { maxNewTokens: 1 });
    const t1 = performance.now() - t;
    t = performance.now();
    const out = generate(model, prompts, { maxNewTokens: NEW });
    const tN = performance.now() - t;
    diffs.push((tN - t1) / 1000);
    tokens = out[0]!.tokens;
  }
  return { tps: (prompts.length * (NEW - 1)) / median(diffs), tokens, runs: n };
}

type LlamaCpp = Awaited<ReturnType<typeof import('node-llama-cpp')['getLlama']>>;

async function loadLlamaCpp(): Promise<LlamaCpp | string> {
  try {
    const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
    return await getLlama({ gpu: false, build: 'never', usePrebuiltBinaries: true, skipDownload: true, progressLogs: false, logLevel: LlamaLogLevel.error, maxThreads: 0 });
  } catch (e) {
    return `node-llama-cpp unavailable: ${(e as Error).message.split('\n')[0]}`;
  }
}

/** llama.cpp: B sequences of one context evaluated together; time from the last row's first token to the last row's last. */
async function measureLlamaCpp(llama: LlamaCpp, file: string, prompts: number[][], NEW: number, runs: number, threads: number): Promise<Measured> {
  const B = prompts.length;
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  try {
    const ctx = await model.createContext({
      contextSize: PROMPT + NEW, sequences: B, threads, batchSize: Math.max(512, B * PROMPT),
      experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32',
    });
    try {
      const seqs = Array.from({ length: B }, () => ctx.getSequence());
      const once = async (n: number) => {
        const first: number[] = [], last: number[] = [], tokens: number[][] = prompts.map(() => []);
        await Promise.all(seqs.map(async (seq, b) => {
          await seq.clearHistory();
          for await (const id of seq.evaluate(prompts[b] as never[], { temperature: 0 })) {
            tokens[b]!.push(id as number);
            if (tokens[b]!.length === 1) first[b] = performance.now();
            if (tokens[b]!.length === n) { last[b] = performance.now(); break; }
          }
        }));
        return { s: (Math.max(...last) - Math.max(...first)) / 1000, tokens: tokens[0]! };
      };
      const warm = await once(8);
      const n = runsFor(runs, (warm.s / 7) * (NEW - 1), BUDGET_S);
      const times: number[] = [];
      let tokens: number[] = [];
      for (let r = 0; r < n; r++) {
        const o = await once(NEW);
        times.push(o.s);
        tokens = o.tokens;
      }
      return { tps: (B * (NEW - 1)) / median(times), tokens, runs: n };
    } finally {
      await ctx.dispose();
    }
  } finally {
    await model.dispose();
  }
}

function agree(a: number[] | null, b: number[] | null): string {
  if (!a || !b) return '-';
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n === a.length && n === b.length ? `all ${n}` : `first ${n}`;
}

async function benchModel(name: string, json: Record<string, unknown>, work: string, tokDir: string, llama: LlamaCpp | string,
  torch: string | null, NEW: number, runs: number): Promise<{ result: ModelResult; model: CausalLM }> {
  const config = parseConfig({ ...json, initializer_range: 0.1 });
  const model = createModel(config, { seed: 1 });
  const dir = path.join(work, name);
  saveModel(model, dir);
  const gguf = path.join(work, `${name}.gguf`);
  exportGguf(dir, gguf, { dtype: 'f32', tokenizerDir: tokDir });
  const params = model.parameters().reduce((s, p) => s + p.size, 0);
  const prompts = Object.fromEntries(BATCHES.map((B) => [B, randomPrompts(B, 100 + B, config.vocab_size)]));
  const res: ModelResult = {
    name, params,
    ours: { tps: {}, tokens: null }, llamacpp: { tps: {}, tokens: null }, pytorch: { tps: {}, tokens: null },
  };
  for (const B of BATCHES) {
    process.stderr.write(`${name}: r1ts batch ${B}…\n`);
    const o = measureOurs(model, prompts[B]!, NEW, runs);
    res.ours.tps[B] = o.tps;
    if (B === 1) res.ours.tokens = o.tokens;
  }
  for (const B of BATCHES) {
    if (!torch) { res.pytorch.tps[B] = null; res.pytorch.note = 'PyTorch (Debian python3-torch) not found'; continue; }
    process.stderr.write(`${name}: PyTorch batch ${B}…\n`);
    const pf = path.join(work, `${name}-prompts-${B}.json`);
    fs.writeFileSync(pf, JSON.stringify(prompts[B]));
    try {
      const r = runTorchPeer('decode.py', ['--model', dir, '--prompts', pf, '--new', String(NEW), '--threads', String(THREADS), '--runs', String(runs)]);
      res.pytorch.tps[B] = Number(r['decode_tokens_per_s']);
      if (B === 1) res.pytorch.tokens = r['tokens_row0'] as number[];
    } catch (e) {
      res.pytorch.tps[B] = null;
      res.pytorch.note = (e as Error).message.split('\n')[0];
    }
  }
  for (const B of BATCHES) {
    if (typeof llama === 'string') { res.llamacpp.tps[B] = null; res.llamacpp.note = llama; continue; }
    process.stderr.write(`${name}: llama.cpp batch ${B}…\n`);
    try {
      const o = await measureLlamaCpp(llama, gguf, prompts[B]!, NEW, runs);
      res.llamacpp.tps[B] = o.tps;
      if (B === 1) res.llamacpp.tokens = o.tokens;
    } catch (e) {
      res.llamacpp.tps[B] = null;
      res.llamacpp.note = `llama.cpp refused the export: ${(e as Error).message.split('\n')[0]}`;
    }
  }
  return { result: res, model };
}

export async function runGenerateBench(opts: { quick: boolean }): Promise<void> {
  const NEW = opts.quick ? 32 : 128;
  const runs = opts.quick ? 1 : 3;
  setThreads(THREADS);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'r1ts-bench-generate-'));
  try {
    const torch = torchAvailable();
    const llama = await loadLlamaCpp();
    // One small byte-level BPE for both GGUF files (llama.cpp needs a vocabulary); the
    // exporter pads it with unused tokens up to the models' 8,192.
    const tokDir = path.join(work, 'tokenizer');
    saveBpeTokenizer(trainBpe(syntheticCorpus(200_000, 3), { vocabSize: 1024, specialTokens: ['<|bos|>', '<|eos|>'] }), tokDir,
      { bosToken: '<|bos|>', eosToken: '<|eos|>' });
    const v3json = JSON.parse(fs.readFileSync(path.join(REPO, 'bench', 'configs', 'deepseek-v3-small.json'), 'utf8')) as Record<string, unknown>;
    const results: ModelResult[] = [];
    const qwen = await benchModel('qwen2-small', QWEN2_SMALL, work, tokDir, llama, torch, NEW, runs);
    results.push(qwen.result);
    const v3 = await benchModel('deepseek-v3-small', v3json, work, tokDir, llama, torch, NEW, runs);
    results.push(v3.result);

    // MTP speculative decoding on the V3 model (its MTP module is random too, so the drafts are
    // accepted about as often as chance allows: the number shows the machinery, not a trained model).
    let mtp: MtpAcceptance | null = null;
    let mtpNote = '';
    try {
      process.stderr.write('deepseek-v3-small: MTP speculative decoding…\n');
      mtp = mtpAcceptance(v3.model as DeepseekV3ForCausalLM, randomPrompts(2, 7, (v3.model.config as DeepseekV3Config).vocab_size), opts.quick ? 16 : 64, { repeats: 1 });
    } catch (e) {
      mtpNote = `MTP acceptance not measured: ${(e as Error).message.split('\n')[0]}`;
    }

    const f = (x: number | null | undefined) => (x === null || x === undefined ? '-' : x.toFixed(0));
    console.log(`\nDecode, greedy, ${PROMPT}-token prompts, ${NEW} new tokens, f32, ${THREADS} threads; tokens/s (median of ${runs})`);
    const rows: (string | number)[][] = [['model', 'engine', 'batch 1', 'batch 32', 'r1ts / engine (b1)', 'r1ts / engine (b32)', 'row-0 tokens = r1ts']];
    for (const r of results) {
      for (const [label, e] of [['r1ts', r.ours], ['llama.cpp (node-llama-cpp 3.21.1)', r.llamacpp], [`PyTorch ${torch ?? ''}`.trim(), r.pytorch]] as const) {
        const ratio = (B: number) => (e === r.ours || !e.tps[B] || !r.ours.tps[B] ? '-' : (r.ours.tps[B]! / e.tps[B]!).toFixed(2));
        rows.push([`${r.name} (${(r.params / 1e6).toFixed(1)}M)`, label, f(e.tps[1]), f(e.tps[32]), ratio(1), ratio(32), e === r.ours ? '' : agree(r.ours.tokens, e.tokens)]);
      }
    }
    printTable(rows);
    for (const r of results) for (const e of [r.llamacpp, r.pytorch]) if (e.note) console.log(`note (${r.name}): ${e.note}`);
    if (mtp) {
      console.log(`MTP speculative decoding (deepseek-v3-small, random weights, batch 1): acceptance ${(mtp.acceptance * 100).toFixed(1)}% ` +
        `(${mtp.accepted}/${mtp.drafted}), ${mtp.tokensPerMainPass.toFixed(2)} tokens per main pass, speed-up ×${mtp.speedup.toFixed(2)}, output identical to greedy: ${mtp.identical}`);
    } else {
      console.log(mtpNote);
    }
    const q = qwen.result, v = v3.result;
    const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? +(a / b).toFixed(3) : null);
    const round = (x: number | null | undefined) => (x === null || x === undefined ? null : Math.round(x * 10) / 10);
    console.log(JSON.stringify({
      model: 'qwen2-small',
      threads: THREADS,
      prompt_tokens: PROMPT,
      new_tokens: NEW,
      decode_tokens_per_s_b1: round(q.ours.tps[1]),
      llamacpp_tokens_per_s_b1: round(q.llamacpp.tps[1]),
      ratio_vs_llamacpp_b1: ratio(q.ours.tps[1], q.llamacpp.tps[1]),
      decode_tokens_per_s_b32: round(q.ours.tps[32]),
      llamacpp_tokens_per_s_b32: round(q.llamacpp.tps[32]),
      pytorch_tokens_per_s_b1: round(q.pytorch.tps[1]),
      pytorch_tokens_per_s_b32: round(q.pytorch.tps[32]),
      v3_decode_tokens_per_s_b1: round(v.ours.tps[1]),
      v3_llamacpp_tokens_per_s_b1: round(v.llamacpp.tps[1]),
      v3_ratio_vs_llamacpp_b1: ratio(v.ours.tps[1], v.llamacpp.tps[1]),
      v3_decode_tokens_per_s_b32: round(v.ours.tps[32]),
      v3_llamacpp_tokens_per_s_b32: round(v.llamacpp.tps[32]),
      v3_pytorch_tokens_per_s_b1: round(v.pytorch.tps[1]),
      v3_pytorch_tokens_per_s_b32: round(v.pytorch.tps[32]),
      mtp_acceptance: mtp ? +mtp.acceptance.toFixed(4) : null,
      mtp_speedup: mtp ? +mtp.speedup.toFixed(3) : null,
    }));
    if (typeof llama !== 'string') await llama.dispose();
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

if (isEntryPoint(import.meta.url)) {
  runGenerateBench({ quick: process.argv.includes('--quick') }).catch((e) => { console.error(e); process.exitCode = 1; });
}
