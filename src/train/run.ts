// A supervised training run (pretraining or SFT) from a config: the run folder, tokenizer,
// data, model and optimizer are set up here, then handed to the training loop.
//
// Run folder:
//   config.json        the resolved training config (validated, defaults filled in)
//   tokenizer/         tokenizer.json + tokenizer_config.json
//   checkpoints/       step-NNNNNNN/ (HF layout + optimizer + trainer state)
//   metrics.jsonl      one line per step
//   report.html, *.png the loss curves
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SftTokens, packSequences } from '../data/packing.js';
import { generateCorpus, generateSftExamples, type CorpusMix } from '../data/corpus.js';
import { loadDataset } from '../data/dataset.js';
import type { CausalLM } from '../models/common.js';
import { loadConfig, ModelConfig, parseConfig } from '../models/config.js';
import { createModel, loadModel } from '../models/load.js';
import { presetConfig, PRESETS } from '../models/presets.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { trainBpe } from '../tokenizer/bpe-trainer.js';
import { saveBpeTokenizer } from '../tokenizer/tokenizer-files.js';
import { readMetrics, standardPlots, writeRunReport } from '../report/index.js';
import { latestCheckpoint, loadCheckpoint, truncateStepLog, writeJsonSync } from './checkpoint.js';
import { TrainConfig } from './config.js';
import { AdamW } from './optim.js';
import { PackedSource, SftSource } from './sources.js';
import { BatchSource, StepMetrics, train } from './trainer.js';

export type TrainMode = 'pretrain' | 'sft';

export const SPECIAL_TOKENS = { bos: '<|begin_of_text|>', eos: '<|end_of_text|>', pad: '<|pad|>' };

export interface RunResult {
  runDir: string;
  model: CausalLM;
  tokenizer: Tokenizer;
  history: StepMetrics[];
  checkpoint: string;
}

/** Starts a run, or resumes the one in config.run_dir from its latest checkpoint. */
export async function runSupervised(mode: TrainMode, config: TrainConfig, opts: { resume?: boolean; quiet?: boolean; log?: (s: string) => void } = {}): Promise<RunResult> {
  const log = opts.log ?? ((s: string) => console.error(s));
  const runDir = path.resolve(config.run_dir ?? path.join('runs', `${mode}-${new Date().toISOString().replace(/[:.]/g, '-')}`));
  const ckptDir = path.join(runDir, 'checkpoints');
  const metricsFile = path.join(runDir, 'metrics.jsonl');
  fs.mkdirSync(runDir, { recursive: true });

  let resumeFrom: string | null = null;
  if (opts.resume) {
    resumeFrom = latestCheckpoint(ckptDir);
    if (!resumeFrom) throw new Error(`--resume: no checkpoint in ${ckptDir}`);
    const saved = JSON.parse(fs.readFileSync(path.join(runDir, 'config.json'), 'utf8'));
    if (JSON.stringify(saved) !== JSON.stringify({ ...config, run_dir: saved.run_dir })) {
      log(`note: resuming with the run's saved config (${path.join(runDir, 'config.json')}); command-line changes are ignored`);
    }
    config = saved as TrainConfig;
  } else {
    if (latestCheckpoint(ckptDir)) throw new Error(`${runDir} already holds checkpoints: pass --resume to continue it, or choose another run_dir`);
    writeJsonSync(path.join(runDir, 'config.json'), { ...config, run_dir: runDir });
    fs.rmSync(metricsFile, { force: true });
  }

  const tokenizer = await prepareTokenizer(config, mode, runDir, log);
  const data = await prepareData(config, mode, tokenizer, log);

  let model: CausalLM;
  let startStep = 0;
  const optimizerFor = (m: CausalLM): AdamW => new AdamW(m.namedParameters(), {
    lr: config.optim.lr, beta1: config.optim.beta1, beta2: config.optim.beta2, eps: config.optim.eps, weightDecay: config.optim.weight_decay,
  });
  let optimizer: AdamW;
  if (resumeFrom) {
    const ck = loadCheckpoint(resumeFrom);
    model = ck.model;
    optimizer = optimizerFor(model);
    if (ck.optimizerState) optimizer.setState(ck.optimizerState);
    data.setState(ck.state.data);
    startStep = ck.state.step;
    truncateStepLog(metricsFile, startStep);
    log(`resuming ${runDir} from step ${startStep}`);
  } else {
    model = config.model.from ? loadModel(config.model.from) : createModel(resolveModelConfig(config, tokenizer), { seed: config.seed });
    optimizer = optimizerFor(model);
  }
  const nParams = model.parameters().reduce((s, p) => s + p.size, 0);
  log(`${mode}: ${model.config.model_type} with ${(nParams / 1e6).toFixed(2)}M parameters, vocab ${tokenizer.vocabSize}, ${config.steps} steps → ${runDir}`);

  const history = train({
    model, optimizer, data,
    config: {
      steps: config.steps, gradAccum: config.grad_accum, lr: config.optim.lr, warmup: config.optim.warmup,
      minLrRatio: config.optim.min_lr_ratio, clip: config.optim.clip, mtpWeight: config.mtp_weight,
      balanceAlpha: config.moe.balance_alpha, biasUpdateSpeed: config.moe.bias_update_speed,
      checkpointEvery: config.checkpoint_every, keepCheckpoints: config.keep_checkpoints, logEvery: 1,
    },
    checkpointDir: ckptDir, metricsFile,
    tokenizerFiles: tokenizerFiles(runDir),
    startStep,
    extraState: () => ({ data: data.getState(), mode }),
    quiet: opts.quiet,
  });
  writeLossReport(runDir, mode, log);
  return { runDir, model, tokenizer, history, checkpoint: latestCheckpoint(ckptDir)! };
}

function tokenizerFiles(runDir: string): string[] {
  const dir = path.join(runDir, 'tokenizer');
  return ['tokenizer.json', 'tokenizer_config.json'].map((f) => path.join(dir, f)).filter((f) => fs.existsSync(f));
}

/** The given tokenizer, the run's own (resume), or a BPE trained on the training texts. */
async function prepareTokenizer(config: TrainConfig, mode: TrainMode, runDir: string, log: (s: string) => void): Promise<Tokenizer> {
  const own = path.join(runDir, 'tokenizer');
  if (fs.existsSync(path.join(own, 'tokenizer.json'))) return Tokenizer.fromFile(own);
  if (config.tokenizer.path) {
    const tok = Tokenizer.fromFile(config.tokenizer.path);
    fs.mkdirSync(own, { recursive: true });
    const src = fs.statSync(config.tokenizer.path).isDirectory() ? config.tokenizer.path : path.dirname(config.tokenizer.path);
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) if (fs.existsSync(path.join(src, f))) fs.copyFileSync(path.join(src, f), path.join(own, f));
    return tok;
  }
  const texts = await trainingTexts(config, mode);
  const t0 = performance.now();
  const bpe = trainBpe(texts, { vocabSize: config.tokenizer.vocab_size, pretokenizer: config.tokenizer.pretokenizer, specialTokens: [SPECIAL_TOKENS.bos, SPECIAL_TOKENS.eos, SPECIAL_TOKENS.pad] });
  saveBpeTokenizer(bpe, own, { bosToken: SPECIAL_TOKENS.bos, eosToken: SPECIAL_TOKENS.eos, padToken: SPECIAL_TOKENS.pad });
  log(`trained a ${config.tokenizer.vocab_size}-token byte-level BPE in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return Tokenizer.fromFile(own);
}

/** The raw texts the tokenizer is trained on (documents; or prompt+response for SFT). */
async function trainingTexts(config: TrainConfig, mode: TrainMode): Promise<string[]> {
  if (mode === 'pretrain') return pretrainDocuments(config);
  return (await sftPairs(config)).map((p) => p.prompt + p.response);
}

async function pretrainDocuments(config: TrainConfig): Promise<string[]> {
  const src = config.data.source;
  const c = config.data.corpus;
  if (src === 'builtin:corpus') {
    return generateCorpus(config.seed, { nDocs: config.data.n_docs, suites: c.suites, mix: c.mix as Partial<CorpusMix> | undefined, compactShare: c.compact_share });
  }
  if (src.endsWith('.txt')) return fs.readFileSync(src, 'utf8').split(/\n\s*\n/).filter((d) => d.trim().length > 0);
  const field = config.data.fields['text'] ?? 'text';
  const records = await loadDataset(src, { fields: { text: field } });
  return records.map((r) => String(r['text']));
}

async function sftPairs(config: TrainConfig): Promise<{ prompt: string; response: string }[]> {
  const src = config.data.source;
  if (src === 'builtin:sft' || src === 'builtin:corpus') {
    const c = config.data.corpus;
    return generateSftExamples(config.seed, { n: config.data.n_docs, suites: c.suites }).map((e) => ({ prompt: e.prompt, response: e.response }));
  }
  const fields = { prompt: config.data.fields['prompt'] ?? 'prompt', response: config.data.fields['response'] ?? 'response' };
  const records = await loadDataset(src, { fields });
  return records.map((r) => ({ prompt: String(r['prompt']), response: String(r['response']) }));
}

async function prepareData(config: TrainConfig, mode: TrainMode, tok: Tokenizer, log: (s: string) => void): Promise<BatchSource & { getState(): unknown }> {
  const eos = tok.eosId;
  if (eos === null || eos === undefined) throw new Error('the tokenizer has no EOS token (needed to separate documents and end responses)');
  if (mode === 'pretrain') {
    const docs = await pretrainDocuments(config);
    const windows = packSequences(docs.map((d) => tok.encode(d)), config.data.seq_len, { eosId: eos, seed: config.seed });
    log(`data: ${docs.length} documents → ${windows.length} windows of ${config.data.seq_len} tokens`);
    if (windows.length === 0) throw new Error(`data: the documents hold fewer than ${config.data.seq_len} tokens; lower data.seq_len or add data`);
    return new PackedSource(windows, config.data.batch_size, config.seed);
  }
  const pairs = await sftPairs(config);
  const examples: SftTokens[] = pairs.map((p) => ({ prompt: tok.encode(p.prompt), response: tok.encode(p.response) }));
  log(`data: ${examples.length} prompt/response pairs`);
  return new SftSource(examples, config.data.batch_size, config.seed, { padId: tok.padId ?? eos, eosId: eos, maxLen: config.data.seq_len });
}

function resolveModelConfig(config: TrainConfig, tok: Tokenizer): ModelConfig {
  const c = config.model.config;
  const ids = { bos: tok.bosId ?? undefined, eos: tok.eosId ?? undefined, pad: tok.padId ?? undefined };
  if (typeof c === 'string' && PRESETS[c]) return parseConfig(presetConfig(c, tok.vocabSize, ids), `preset ${c}`);
  const cfg = typeof c === 'string' ? loadConfig(c) : parseConfig(c, 'model.config');
  if (cfg.vocab_size < tok.vocabSize) throw new Error(`model.config: vocab_size ${cfg.vocab_size} is smaller than the tokenizer's ${tok.vocabSize}`);
  return cfg;
}

function writeLossReport(runDir: string, mode: TrainMode, log: (s: string) => void): void {
  const records = readMetrics(path.join(runDir, 'metrics.jsonl'));
  if (!records.length) return;
  const last = records[records.length - 1];
  const written = writeRunReport(runDir, {
    title: `r1ts ${mode}: ${path.basename(runDir)}`,
    summary: { steps: Number(last['step']), 'final loss': Number(last['loss']).toFixed(4), 'tokens/s (last step)': Math.round(Number(last['tokens_per_s'])) },
    plots: standardPlots(records),
  });
  for (const w of written.warnings) log(`report: ${w}`);
  log(`report: ${path.join(runDir, 'report.html')}`);
}

