// Decode benchmark: greedy generation with a KV cache, in tokens/s, at batch 1 and batch 32, for
// a small Qwen2-architecture model (d_model 256, 4 layers, 8 heads / 2 KV heads, ffn 1024, vocab
// 8192) and the small DeepSeek-V3 config (bench/configs/deepseek-v3-small.json), against llama.cpp
// (node-llama-cpp 3.21.1's prebuilt CPU build, loading the same weights through our GGUF export)
// and plain PyTorch (bench/torch/decode.py), all f32, in the same run.
//
//   npm run bench:generate        (tsc -p . && node dist/bench/generate.js [--quick])
//
// r1ts runs its product path: at batch 1 each block of a layer in one native call (the fused
// decoding blocks of native/decode.cc, used for passes of up to 4 new tokens), at batch 32 op by
// op with GEMMs over all rows.
//
// Each measurement: a 32-token prompt per row, 128 new tokens per row, greedy. Decode throughput
// = B × 127 / (time from the first generated token to the last): prefill and the first token
// are left out; medians over 3 runs after a short warm-up. r1ts is timed inside generate() itself
// (batched, KV cache, greedy sampling); llama.cpp through sequence.evaluate (batch 32 = 32
// sequences of one context, which node-llama-cpp evaluates as one batch per step) with an f32 KV
// cache (its default is f16) and without flash attention (its CPU kernel rounds enough to flip
// near-tied greedy choices), so that all keep the same precision; PyTorch with its own KV cache.
//
// Threads: the comparison is at 2 threads for every engine. r1ts and llama.cpp are also run at 1
// thread: on a shared, busy 2-core machine, threads that spin-wait at every barrier (llama.cpp's
// thread pool, OpenBLAS) lose far more than the arithmetic, and the 1-thread rows show by how much.
// In the JSON, llamacpp_tokens_per_s_* is llama.cpp's faster configuration and ratio_vs_llamacpp_* r1ts at 2 threads over it.
// A measurement that would take over 30 s is cut to fewer runs or tokens (marked in the table).
//
// Weights are random (N(0, 0.1)); the first row's greedy tokens are compared across engines as a
// check that they all run the same model. The MTP figure comes from src/generate/speculative.ts's
// mtpAcceptance() on the V3 model, whose MTP module is random too (so acceptance is at chance level).
// The last line is a JSON summary; its unprefixed keys are the Qwen2 model's, v3_* the V3 model's.
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
const BUDGET_S = 30;
/** New tokens of the warm-up run, which also gives the time of a decode step. */
const WARM = 5;

interface Measured { tps: number; tokens: number[]; runs: number; newTokens: number }

interface EngineResult {
  engine: string;
  threads: number;
  /** decode tokens/s per batch size */
  tps: Record<number, number | null>;
  /** timed runs and new tokens per run, per batch size */
  runs: Record<number, number>;
  newTokens: Record<number, number>;
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

/**
 * How many runs of how many new tokens to time, from the seconds per decode step seen in the
 * warm-up: `runs` of `NEW` when they fit in BUDGET_S, else fewer runs, and if even one run of
 * NEW would not fit, one run of as many tokens as fit (at least 8). Keeps a run on a loaded
 * machine short; the table marks the cut measurements.
 */
function planRuns(runs: number, stepS: number, NEW: number): { runs: number; tokens: number } {
  const runS = stepS * (NEW - 1);
  if (runS <= BUDGET_S) return { runs: Math.max(1, Math.min(runs, Math.floor(BUDGET_S / Math.max(runS, 1e-9)))), tokens: NEW };
  return { runs: 1, tokens: Math.max(8, Math.min(NEW, 1 + Math.floor(BUDGET_S / stepS))) };
}

/**
 * One generate() call (the product's path: batched, KV cache, greedy sampling), timed from the
 * moment the first token exists to the end. The moment is taken through generate's stop-string
 * hook, which it calls after each token of each row (with a stop string that never occurs).
 */
function timedGenerate(model: CausalLM, prompts: number[][], n: number): { s: number; tokens: number[] } {
  let first = 0;
  const out = generate(model, prompts, {
    maxNewTokens: n, stopStrings: ['\u0000never'],
    decode: (ids) => { if (ids.length === 1 && first === 0) first = performance.now(); return ''; },
  });
  return { s: (performance.now() - first) / 1000, tokens: out[0]!.tokens };
}

/** r1ts: decode time of `NEW` tokens per row, median over runs. */
function measureOurs(model: CausalLM, prompts: number[][], NEW: number, runs: number, threads: number): Measured {
  setThreads(threads);
  const warm = timedGenerate(model, prompts, WARM);
  const plan = planRuns(runs, warm.s / (WARM - 1), NEW);
  const times: number[] = [];
  let tokens: number[] = [];
  for (let r = 0; r < plan.runs; r++) {
    const o = timedGenerate(model, prompts, plan.tokens);
    times.push(o.s);
    tokens = o.tokens;
  }
  return { tps: (prompts.length * (plan.tokens - 1)) / median(times), tokens, runs: plan.runs, newTokens: plan.tokens };
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
      flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32',
    });
    try {
      const seqs = Array.from({ length: B }, () => ctx.getSequence());
      // One run: every row decodes up to n tokens, or until BUDGET_S have passed (llama.cpp's
      // 2-thread pool can crawl on a busy machine); decode rate over the tokens after each row's first.
      const once = async (n: number) => {
        const first: number[] = [], last: number[] = [], tokens: number[][] = prompts.map(() => []);
        const deadline = performance.now() + BUDGET_S * 1000;
        await Promise.all(seqs.map(async (seq, b) => {
          await seq.clearHistory();
          for await (const id of seq.evaluate(prompts[b] as never[], { temperature: 0, yieldEogToken: true })) {
            const now = performance.now();
            tokens[b]!.push(id as number);
            if (tokens[b]!.length === 1) first[b] = now;
            last[b] = now;
            if (tokens[b]!.length === n || now > deadline) break;
          }
        }));
        const decoded = tokens.reduce((a, t) => a + t.length - 1, 0);
        const s = (Math.max(...last) - Math.max(...first)) / 1000;
        const steps = Math.min(...tokens.map((t) => t.length)) - 1;
        return { tps: decoded / s, stepS: s / Math.max(steps, 1), tokens: tokens[0]!, reached: Math.min(...tokens.map((t) => t.length)) };
      };
      const warm = await once(WARM);
      const plan = planRuns(runs, warm.stepS, NEW);
      const rates: number[] = [];
      let tokens: number[] = [];
      let reached = plan.tokens;
      for (let r = 0; r < plan.runs; r++) {
        const o = await once(plan.tokens);
        rates.push(o.tps);
        tokens = o.tokens;
        reached = Math.min(reached, o.reached);
      }
      return { tps: median(rates), tokens, runs: plan.runs, newTokens: reached };
    } finally {
      await ctx.dispose();
    }
  } finally {
    await model.dispose();
  }
}

/** How far two greedy outputs agree (over the shorter one's length). */
function agree(a: number[] | null, b: number[] | null): string {
  if (!a || !b) return '-';
  const m = Math.min(a.length, b.length);
  let n = 0;
  while (n < m && a[n] === b[n]) n++;
  return n === m ? `all ${n}` : `first ${n} of ${m}`;
}

function engineRow(engine: string, threads: number): EngineResult {
  return { engine, threads, tps: {}, runs: {}, newTokens: {}, tokens: null };
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
  const engines: EngineResult[] = [];
  const progress = (what: string) => process.stderr.write(`${name}: ${what}…\n`);

  // r1ts at 2 threads (the comparison) and at 1 (how much a shared machine's load costs the threading).
  for (const threads of [THREADS, 1]) {
    const e = engineRow('r1ts', threads);
    for (const B of BATCHES) {
      progress(`r1ts, ${threads} thread(s), batch ${B}`);
      const o = measureOurs(model, prompts[B]!, NEW, runs, threads);
      e.tps[B] = o.tps; e.runs[B] = o.runs; e.newTokens[B] = o.newTokens;
      if (B === 1) e.tokens = o.tokens;
    }
    engines.push(e);
  }
  setThreads(THREADS);

  const pt = engineRow(`PyTorch ${torch ?? ''}`.trim(), THREADS);
  for (const B of BATCHES) {
    if (!torch) { pt.tps[B] = null; pt.note = 'PyTorch (Debian python3-torch) not found: apt-get install -y python3-torch'; continue; }
    progress(`PyTorch, batch ${B}`);
    const pf = path.join(work, `${name}-prompts-${B}.json`);
    fs.writeFileSync(pf, JSON.stringify(prompts[B]));
    try {
      const r = runTorchPeer('decode.py', ['--model', dir, '--prompts', pf, '--new', String(NEW), '--threads', String(THREADS), '--runs', String(runs)]);
      pt.tps[B] = Number(r['decode_tokens_per_s']); pt.runs[B] = runs; pt.newTokens[B] = NEW;
      if (B === 1) pt.tokens = r['tokens_row0'] as number[];
    } catch (e) {
      pt.tps[B] = null;
      pt.note = (e as Error).message.split('\n')[0];
    }
  }
  engines.push(pt);

  for (const threads of [THREADS, 1]) {
    const e = engineRow('llama.cpp (node-llama-cpp 3.21.1)', threads);
    for (const B of BATCHES) {
      if (typeof llama === 'string') { e.tps[B] = null; e.note = llama; continue; }
      progress(`llama.cpp, ${threads} thread(s), batch ${B}`);
      try {
        const o = await measureLlamaCpp(llama, gguf, prompts[B]!, NEW, runs, threads);
        e.tps[B] = o.tps; e.runs[B] = o.runs; e.newTokens[B] = o.newTokens;
        if (B === 1) e.tokens = o.tokens;
      } catch (err) {
        e.tps[B] = null;
        e.note = `llama.cpp refused the export: ${(err as Error).message.split('\n')[0]}`;
      }
    }
    engines.push(e);
  }
  return { result: { name, params, engines }, model };
}

/** The engine row of a kind at a thread count. */
function pick(r: ModelResult, engine: string, threads: number): EngineResult | undefined {
  return r.engines.find((e) => e.engine.startsWith(engine) && e.threads === threads);
}

/** llama.cpp's faster configuration at batch B (its 2-thread run suffers most from a loaded machine). */
function bestLlamaCpp(r: ModelResult, B: number): { tps: number | null; threads: number | null } {
  let best: { tps: number | null; threads: number | null } = { tps: null, threads: null };
  for (const e of r.engines) if (e.engine.startsWith('llama.cpp') && (e.tps[B] ?? 0) > (best.tps ?? 0)) best = { tps: e.tps[B]!, threads: e.threads };
  return best;
}

export async function runGenerateBench(opts: { quick: boolean }): Promise<void> {
  const NEW = opts.quick ? 32 : 128;
  const runs = opts.quick ? 1 : 3;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'r1ts-bench-generate-'));
  const loadBefore = os.loadavg()[0]!;
  try {
    const torch = torchAvailable();
    const llama = await loadLlamaCpp();
    // One small byte-level BPE for both GGUF files (llama.cpp needs a vocabulary); the
    // exporter pads it with unused tokens up to the models' 8,192.
    const tokDir = path.join(work, 'tokenizer');
    saveBpeTokenizer(trainBpe(syntheticCorpus(200_000, 3), { vocabSize: 1024, specialTokens: ['<|bos|>', '<|eos|>'] }), tokDir,
      { bosToken: '<|bos|>', eosToken: '<|eos|>' });
    const v3json = JSON.parse(fs.readFileSync(path.join(REPO, 'bench', 'configs', 'deepseek-v3-small.json'), 'utf8')) as Record<string, unknown>;
    const qwen = await benchModel('qwen2-small', QWEN2_SMALL, work, tokDir, llama, torch, NEW, runs);
    const v3 = await benchModel('deepseek-v3-small', v3json, work, tokDir, llama, torch, NEW, runs);
    const results = [qwen.result, v3.result];

    // MTP speculative decoding on the V3 model. Its MTP module is random like the rest, so drafts
    // are accepted only by chance: the figure shows the machinery runs, not what a trained model gets.
    let mtp: MtpAcceptance | null = null;
    let mtpNote = '';
    try {
      process.stderr.write('deepseek-v3-small: MTP speculative decoding…\n');
      setThreads(THREADS);
      mtp = mtpAcceptance(v3.model as DeepseekV3ForCausalLM, randomPrompts(2, 7, (v3.model.config as DeepseekV3Config).vocab_size), opts.quick ? 16 : 64, { repeats: 1 });
    } catch (e) {
      mtpNote = `MTP acceptance not measured: ${(e as Error).message.split('\n')[0]}`;
    }
    const loadAfter = os.loadavg()[0]!;

    const f = (x: number | null | undefined) => (x === null || x === undefined ? '-' : x.toFixed(0));
    console.log(`\nDecode, greedy, ${PROMPT}-token prompts, ${NEW} new tokens per row, f32 weights and KV cache; tokens/s, median of up to ${runs} runs`);
    const rows: (string | number)[][] = [['model', 'engine', 'threads', 'batch 1', 'batch 32', `r1ts ${THREADS}t ÷ this (b1)`, `(b32)`, 'row-0 tokens = r1ts']];
    for (const r of results) {
      const ours = pick(r, 'r1ts', THREADS)!;
      for (const e of r.engines) {
        const ratio = (B: number) => (e === ours || !e.tps[B] || !ours.tps[B] ? '-' : (ours.tps[B]! / e.tps[B]!).toFixed(2));
        const cut = BATCHES.some((B) => e.runs[B] !== undefined && e.runs[B]! < runs);
        const short = BATCHES.some((B) => e.newTokens[B] !== undefined && e.newTokens[B]! < NEW);
        const runsNote = (cut ? ' *' : '') + (short ? ' †' : '');
        rows.push([`${r.name} (${(r.params / 1e6).toFixed(1)}M)`, e.engine + runsNote, e.threads, f(e.tps[1]), f(e.tps[32]), ratio(1), ratio(32), e === ours ? '' : agree(ours.tokens, e.tokens)]);
      }
    }
    printTable(rows);
    console.log(`machine load (1-min average) ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after, on ${os.availableParallelism()} cores` +
      (Math.max(loadBefore, loadAfter) > os.availableParallelism() ? ': the machine is shared and busy; threads that spin-wait (llama.cpp\'s, OpenBLAS\'s) lose most, compare the 1-thread rows' : ''));
    if (rows.some((r) => String(r[1]).includes(' *'))) console.log(`* fewer timed runs than ${runs}: they would have taken over ${BUDGET_S} s`);
    if (rows.some((r) => String(r[1]).includes('†'))) console.log(`† so slow here that one run was cut to fewer new tokens (as many as fit in ${BUDGET_S} s)`);
    for (const r of results) for (const e of r.engines) if (e.note) console.log(`note (${r.name}, ${e.engine}): ${e.note}`);
    if (mtp) {
      console.log(`MTP speculative decoding (deepseek-v3-small, random weights, batch 1, ${THREADS} threads): acceptance ${(mtp.acceptance * 100).toFixed(1)}% ` +
        `(${mtp.accepted}/${mtp.drafted}), ${mtp.tokensPerMainPass.toFixed(2)} tokens per main pass, speed-up ×${mtp.speedup.toFixed(2)}, output identical to plain greedy: ${mtp.identical}`);
    } else {
      console.log(mtpNote);
    }

    const round = (x: number | null | undefined) => (x === null || x === undefined ? null : Math.round(x * 10) / 10);
    const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? +(a / b).toFixed(3) : null);
    const summary = (r: ModelResult, prefix: string) => {
      const ours = pick(r, 'r1ts', THREADS)!, ours1 = pick(r, 'r1ts', 1)!, py = pick(r, 'PyTorch', THREADS)!;
      const l2 = pick(r, 'llama.cpp', THREADS)!, l1 = pick(r, 'llama.cpp', 1)!;
      const best1 = bestLlamaCpp(r, 1), best32 = bestLlamaCpp(r, 32);
      return {
        [`${prefix}decode_tokens_per_s_b1`]: round(ours.tps[1]),
        [`${prefix}llamacpp_tokens_per_s_b1`]: round(best1.tps),
        [`${prefix}llamacpp_threads_b1`]: best1.threads,
        [`${prefix}ratio_vs_llamacpp_b1`]: ratio(ours.tps[1], best1.tps),
        [`${prefix}decode_tokens_per_s_b32`]: round(ours.tps[32]),
        [`${prefix}llamacpp_tokens_per_s_b32`]: round(best32.tps),
        [`${prefix}llamacpp_threads_b32`]: best32.threads,
        [`${prefix}ratio_vs_llamacpp_b32`]: ratio(ours.tps[32], best32.tps),
        [`${prefix}llamacpp_2threads_tokens_per_s`]: [round(l2.tps[1]), round(l2.tps[32])],
        [`${prefix}llamacpp_1thread_tokens_per_s`]: [round(l1.tps[1]), round(l1.tps[32])],
        [`${prefix}decode_1thread_tokens_per_s`]: [round(ours1.tps[1]), round(ours1.tps[32])],
        [`${prefix}pytorch_tokens_per_s`]: [round(py.tps[1]), round(py.tps[32])],
      };
    };
    console.log('JSON: llamacpp_tokens_per_s_* is llama.cpp\'s faster run (2 or 1 threads, llamacpp_threads_*) at that batch size; ratio_vs_llamacpp_* = r1ts at 2 threads over it; [b1, b32] pairs for the other rows.');
    console.log(JSON.stringify({
      model: 'qwen2-small', threads: THREADS, prompt_tokens: PROMPT, new_tokens: NEW,
      ...summary(qwen.result, ''),
      ...summary(v3.result, 'v3_'),
      mtp_acceptance: mtp ? +mtp.acceptance.toFixed(4) : null,
      mtp_speedup: mtp ? +mtp.speedup.toFixed(3) : null,
      load_average: [+loadBefore.toFixed(2), +loadAfter.toFixed(2)],
    }));
    if (typeof llama !== 'string') await llama.dispose();
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

if (isEntryPoint(import.meta.url)) {
  runGenerateBench({ quick: process.argv.includes('--quick') }).catch((e) => { console.error(e); process.exitCode = 1; });
}
