// The supervised trainer (pretraining with MTP, SFT): a readable loop.
//
//   for each step: lr from the schedule → gradAccum micro-batches of forward + backward →
//   global-norm clipping → AdamW → MoE bias update (auxiliary-loss-free balancing) →
//   metrics line → checkpoint every N steps and at the end.
//
// Resuming from a checkpoint restores model, optimizer moments, RNG and the data cursor, so
// the loss sequence continues exactly as an uninterrupted run's would.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { backward, mul, Tensor } from '../tensor/index.js';
import type { CausalLM } from '../models/common.js';
import { nextTokenLossFromHidden } from '../models/common.js';
import { DeepseekV3ForCausalLM } from '../models/deepseek-v3.js';
import { AdamW, clipScale } from './optim.js';
import { warmupCosine } from './schedule.js';
import { saveCheckpoint, TrainerState } from './checkpoint.js';
import { Progress } from './progress.js';

/** A stream of token batches whose position can be saved and restored. */
export interface BatchSource {
  /** ids (B, T) i32 and labels (B, T) i32 with -100 where no loss is taken. */
  next(): { ids: Tensor; labels: Tensor };
  getState(): unknown;
  setState(state: unknown): void;
}

export interface TrainLoopConfig {
  steps: number;
  gradAccum: number;
  lr: number;
  warmup: number;
  minLrRatio: number;
  clip: number;
  /** λ of the MTP loss (DeepSeek-V3 models with MTP modules). */
  mtpWeight: number;
  /** α of the sequence-wise balance loss (MoE). */
  balanceAlpha: number;
  /** γ of the auxiliary-loss-free bias update (MoE); 0 disables it. */
  biasUpdateSpeed: number;
  checkpointEvery: number;
  keepCheckpoints: number;
  logEvery: number;
}

export interface StepMetrics {
  step: number;
  loss: number;
  mtp_loss?: number;
  balance_loss?: number;
  lr: number;
  grad_norm: number;
  tokens: number;
  tokens_per_s: number;
  /** Most-loaded expert's share over the mean, averaged over MoE layers (1 = perfect balance). */
  expert_max_over_mean?: number;
  time_s: number;
}

export interface TrainRun {
  model: CausalLM;
  optimizer: AdamW;
  data: BatchSource;
  config: TrainLoopConfig;
  /** Where checkpoints go (run folder/checkpoints). */
  checkpointDir: string;
  /** Appended one JSON line per step. */
  metricsFile: string;
  /** Files copied into every checkpoint (tokenizer.json, ...). */
  tokenizerFiles?: string[];
  /** Step to start from (resume) and extra state to save. */
  startStep?: number;
  extraState?: () => Record<string, unknown>;
  quiet?: boolean;
}

/** The loss of one batch for any causal LM: DeepSeek-V3 adds MTP and balance terms. */
export function batchLoss(model: CausalLM, ids: Tensor, labels: Tensor, cfg: Pick<TrainLoopConfig, 'mtpWeight'>):
  { loss: Tensor; main: number; mtp: number | null; balance: number | null } {
  if (model instanceof DeepseekV3ForCausalLM) return model.trainingLoss(ids, { labels, mtpWeight: cfg.mtpWeight });
  const loss = nextTokenLossFromHidden(model.hiddenStates(ids), model.outputWeight, labels);
  return { loss, main: loss.item(), mtp: null, balance: null };
}

export function train(run: TrainRun): StepMetrics[] {
  const { model, optimizer, data, config: c } = run;
  const moe = model instanceof DeepseekV3ForCausalLM ? model.moeLayers() : [];
  for (const layer of moe) layer.balanceAlpha = c.balanceAlpha;
  model.train();
  const params = model.parameters();
  const history: StepMetrics[] = [];
  const start = run.startStep ?? 0;
  const progress = new Progress(c.steps, start, run.quiet ?? false);
  fs.mkdirSync(path.dirname(run.metricsFile), { recursive: true });
  const t0 = performance.now();
  for (let step = start; step < c.steps; step++) {
    const tStep = performance.now();
    const lr = warmupCosine(step, { peak: c.lr, warmup: c.warmup, total: c.steps, minRatio: c.minLrRatio });
    optimizer.zeroGrad();
    let loss = 0, mtp = 0, balance = 0, tokens = 0;
    const loads = moe.map((m) => new Int32Array(m.E));
    for (let micro = 0; micro < c.gradAccum; micro++) {
      const batch = data.next();
      const out = batchLoss(model, batch.ids, batch.labels, c);
      backward(c.gradAccum === 1 ? out.loss : mul(out.loss, 1 / c.gradAccum));
      loss += out.main / c.gradAccum;
      mtp += (out.mtp ?? 0) / c.gradAccum;
      balance += (out.balance ?? 0) / c.gradAccum;
      tokens += batch.ids.size;
      moe.forEach((m, i) => m.lastLoad.forEach((n, e) => { loads[i][e] += n; }));
    }
    const { norm, scale } = clipScale(params, c.clip);
    optimizer.update({ lr, gradScale: scale });
    if (c.biasUpdateSpeed > 0) moe.forEach((m, i) => m.updateBias(c.biasUpdateSpeed, loads[i]));

    const seconds = (performance.now() - tStep) / 1000;
    const metrics: StepMetrics = {
      step: step + 1, loss, lr, grad_norm: norm, tokens, tokens_per_s: tokens / seconds,
      time_s: (performance.now() - t0) / 1000,
    };
    if (model instanceof DeepseekV3ForCausalLM && model.mtp.length) metrics.mtp_loss = mtp;
    if (c.balanceAlpha > 0 && moe.length) metrics.balance_loss = balance;
    if (moe.length) metrics.expert_max_over_mean = mean(loads.map(maxOverMean));
    history.push(metrics);
    fs.appendFileSync(run.metricsFile, JSON.stringify(metrics) + '\n');
    progress.tick(step + 1, { loss, tokens_per_s: metrics.tokens_per_s });

    const last = step + 1 === c.steps;
    if (last || (c.checkpointEvery > 0 && (step + 1) % c.checkpointEvery === 0)) {
      const state: TrainerState = { step: step + 1, ...(run.extraState?.() ?? {}) };
      saveCheckpoint(run.checkpointDir, { model, optimizer, state, tokenizerFiles: run.tokenizerFiles, keep: c.keepCheckpoints });
    }
  }
  progress.stop();
  return history;
}

function maxOverMean(load: Int32Array): number {
  const total = load.reduce((a, b) => a + b, 0);
  return total === 0 ? 1 : Math.max(...load) / (total / load.length);
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);
}
