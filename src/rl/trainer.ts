// The GRPO training loop: sample groups from the policy, score them with the rule-based
// rewards, compute group-relative advantages, and take μ clipped policy-gradient steps.
//
// Every step logs the rewards (each one's mean and std), accuracy, KL, clip fraction, entropy,
// completion length, reflection rate, throughput and the time split between generation and
// training; sample completions go to samples.jsonl, and each step's token ids, log-probs,
// rewards and advantages to rollouts.jsonl so that a step can be replayed offline.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { affine, backward, exp, logSoftmax, mul, narrow, noGrad, reshape, Rng, sum, Tensor, tensor } from '../tensor/index.js';
import type { RngState } from '../tensor/random.js';
import type { CausalLM } from '../models/common.js';
import { createModel, loadModel } from '../models/load.js';
import { DeepseekV3ForCausalLM } from '../models/deepseek-v3.js';
import { generate } from '../generate/generate.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { Task } from '../data/tasks.js';
import { RewardInput, RewardSpec, scoreAll } from './rewards.js';
import { ANSWER_STYLES, answerStyle, hasReflection } from '../eval/metrics.js';
import { AdamW, clipScale } from '../train/optim.js';
import { warmupCosine } from '../train/schedule.js';
import { loadTrainerState, saveCheckpoint, truncateStepLog } from '../train/checkpoint.js';
import { Progress } from '../train/progress.js';
import { describeObjective, GrpoConfig, grpoLoss, groupAdvantages, packRollouts, policyForward, RolloutBatch, tokenLogprobs } from './grpo.js';

/** A prompt to train on: the formatted prompt text and what the rewards need to grade it. */
export interface PromptRecord {
  prompt: string;
  answer?: string;
  task?: Task;
  meta?: Record<string, unknown>;
}

export interface GrpoRun {
  model: CausalLM;
  tokenizer: Tokenizer;
  prompts: PromptRecord[];
  rewards: RewardSpec[];
  grpo: GrpoConfig;
  steps: number;
  /** Distinct prompts per step (each sampled G times). */
  promptsPerStep: number;
  lr: number;
  warmup: number;
  clip: number;
  weightDecay: number;
  seed: number;
  /** MoE bias update speed γ during RL (0 = off). */
  biasUpdateSpeed: number;
  runDir: string;
  checkpointEvery: number;
  /** Write this many sample completions to samples.jsonl every step. */
  samplesPerStep: number;
  quiet?: boolean;
  log?: (s: string) => void;
  /** Called after every step (e.g. to evaluate periodically). */
  onStep?: (m: GrpoStepMetrics) => void;
  /**
   * Continue an interrupted run from one of its checkpoints (`runDir/checkpoints/step-N`):
   * `model` must be that checkpoint's model (see resumeGrpo). The optimizer, the RNG, the
   * prompt cursor and (β > 0) the reference policy are restored, and the logs are cut back to
   * step N, so the run continues exactly as if it had not stopped.
   */
  resumeFrom?: string;
}

/** The model of a GRPO checkpoint, to pass with resumeFrom. */
export function resumeGrpo(checkpoint: string): { model: CausalLM; resumeFrom: string } {
  return { model: loadModel(checkpoint), resumeFrom: checkpoint };
}

export interface GrpoStepMetrics {
  step: number;
  reward: number;
  reward_std: number;
  /** Per reward: mean and std. */
  [key: string]: number;
}


interface Rollouts {
  records: PromptRecord[];
  prompts: number[][];
  completions: number[][];
  texts: string[];
  samplerLogprobs: number[][];
  truncated: boolean[];
  total: number[];
  parts: Record<string, number[]>;
  genSeconds: number;
  rewardSeconds: number;
  generatedTokens: number;
}

/** Samples G completions for each record and scores them. */
export async function rollout(model: CausalLM, tok: Tokenizer, records: PromptRecord[], rewards: RewardSpec[], c: GrpoConfig, rng: Rng): Promise<Rollouts> {
  const G = c.num_generations;
  const promptIds = records.map((r) => tok.encode(r.prompt, { addSpecialTokens: false }));
  const rows = promptIds.flatMap((p) => Array.from({ length: G }, () => p));
  const eos = tok.eosId;
  const t0 = performance.now();
  const out = generate(model, rows, {
    maxNewTokens: c.max_completion_length,
    sampling: { temperature: c.temperature, topP: c.top_p, topK: 0 },
    stopTokens: eos === null || eos === undefined ? [] : [eos],
    rng,
    padId: tok.padId ?? eos ?? 0,
  });
  const genSeconds = (performance.now() - t0) / 1000;
  const texts = out.map((o) => tok.decode(o.tokens, { skipSpecialTokens: true }));
  const inputs: RewardInput[] = out.map((o, i) => {
    const r = records[Math.floor(i / G)];
    return { prompt: r.prompt, completion: texts[i], answer: r.answer, task: r.task, meta: { ...r.meta, completionTokens: o.tokens.length, truncated: o.finishReason === 'length' } };
  });
  const t1 = performance.now();
  const results = await scoreAll(rewards, inputs);
  const total = results.map((r) => r.total);
  const parts = Object.fromEntries(rewards.map((r) => [r.name, results.map((x) => x.parts[r.name])]));
  return {
    records: records.flatMap((r) => Array.from({ length: G }, () => r)),
    prompts: rows, completions: out.map((o) => o.tokens), texts,
    samplerLogprobs: out.map((o) => o.logprobs), truncated: out.map((o) => o.finishReason === 'length'),
    total, parts, genSeconds, rewardSeconds: (performance.now() - t1) / 1000,
    generatedTokens: out.reduce((s, o) => s + o.tokens.length, 0),
  };
}

/** Keeps only the groups (runs of G) for which keep(groupIndex) is true. */
function selectGroups(r: Rollouts, G: number, keep: (g: number) => boolean): Rollouts {
  const idx: number[] = [];
  for (let i = 0; i < r.total.length; i++) if (keep(Math.floor(i / G))) idx.push(i);
  const pick = <T>(a: T[]): T[] => idx.map((i) => a[i]);
  return {
    ...r, records: pick(r.records), prompts: pick(r.prompts), completions: pick(r.completions), texts: pick(r.texts),
    samplerLogprobs: pick(r.samplerLogprobs), truncated: pick(r.truncated), total: pick(r.total),
    parts: Object.fromEntries(Object.entries(r.parts).map(([k, v]) => [k, pick(v)])),
  };
}

function concatRollouts(a: Rollouts, b: Rollouts): Rollouts {
  return {
    records: [...a.records, ...b.records], prompts: [...a.prompts, ...b.prompts], completions: [...a.completions, ...b.completions],
    texts: [...a.texts, ...b.texts], samplerLogprobs: [...a.samplerLogprobs, ...b.samplerLogprobs], truncated: [...a.truncated, ...b.truncated],
    total: [...a.total, ...b.total],
    parts: Object.fromEntries(Object.keys(a.parts).map((k) => [k, [...a.parts[k], ...b.parts[k]]])),
    genSeconds: a.genSeconds + b.genSeconds, rewardSeconds: a.rewardSeconds + b.rewardSeconds, generatedTokens: a.generatedTokens + b.generatedTokens,
  };
}

function zeroVarianceGroups(total: number[], G: number): boolean[] {
  const out: boolean[] = [];
  for (let g = 0; g < total.length; g += G) out.push(total.slice(g, g + G).every((x) => x === total[g]));
  return out;
}

/** Mean entropy of the next-token distributions at the active positions (no gradient). */
function maskedEntropy(logits: Tensor, mask: Tensor): number {
  return noGrad(() => {
    const [B, L, V] = logits.shape;
    const lp = logSoftmax(reshape(narrow(logits, 1, 0, L - 1), [B * (L - 1), V])); // (B·(L−1), V)
    const h = affine(sum(mul(exp(lp), lp), -1), -1, 0); // (B·(L−1))
    const m = reshape(mask, [B * (L - 1)]);
    return sum(mul(h, m)).item() / Math.max(sum(m).item(), 1);
  });
}

/** A copy of a model (the reference policy). */
function cloneModel(model: CausalLM): CausalLM {
  const copy = createModel(model.config, { mtp: model instanceof DeepseekV3ForCausalLM ? model.mtp.length > 0 : undefined });
  const state = model.stateDict();
  copy.loadState((name) => state.get(name)?.toArray());
  copy.eval();
  return copy;
}

/** Host rows of a (B, L−1) tensor restricted to each row's active positions. */
function activeRows(t: Tensor, mask: Tensor): number[][] {
  const [B, L1] = t.shape;
  const v = t.toArray(), m = mask.toArray();
  return Array.from({ length: B }, (_, b) => {
    const row: number[] = [];
    for (let j = 0; j < L1; j++) if (m[b * L1 + j] > 0) row.push(v[b * L1 + j]);
    return row;
  });
}

export async function trainGrpo(run: GrpoRun): Promise<GrpoStepMetrics[]> {
  const { model, tokenizer: tok, grpo: c } = run;
  const log = run.log ?? ((s: string) => console.error(s));
  const G = c.num_generations;
  if (G < 2) throw new Error('num_generations must be ≥ 2: advantages are relative to the group');
  if (run.prompts.length === 0) throw new Error('GRPO needs at least one prompt');
  fs.mkdirSync(run.runDir, { recursive: true });
  const files = {
    metrics: path.join(run.runDir, 'metrics.jsonl'),
    samples: path.join(run.runDir, 'samples.jsonl'),
    rollouts: path.join(run.runDir, 'rollouts.jsonl'),
  };
  const resumed = run.resumeFrom ? loadTrainerState(run.resumeFrom) : null;
  const startStep = resumed?.state.step ?? 0;
  for (const f of Object.values(files)) {
    if (resumed) truncateStepLog(f, startStep);
    else fs.rmSync(f, { force: true });
  }
  fs.writeFileSync(path.join(run.runDir, 'grpo.json'), JSON.stringify(c, null, 2) + '\n');
  log(describeObjective(c));

  const rng = new Rng(run.seed);
  const order = rng.shuffle(Array.from(run.prompts.keys()));
  let cursor = 0;
  const nextPrompts = (n: number): PromptRecord[] => Array.from({ length: n }, () => run.prompts[order[cursor++ % order.length]]);

  if (resumed) {
    rng.setState(resumed.state['rng'] as RngState);
    cursor = Number(resumed.state['cursor']);
    log(`resuming ${run.runDir} from step ${startStep}`);
  } else {
    await preflight(run, rng.fork(), log);
  }

  const optimizer = new AdamW(model.namedParameters(), { lr: run.lr, weightDecay: run.weightDecay, beta1: 0.9, beta2: 0.99 });
  if (resumed?.optimizerState) optimizer.setState(resumed.optimizerState);
  const refDir = resumed ? path.join(run.resumeFrom!, 'reference') : null;
  let ref = c.beta <= 0 ? null : refDir && fs.existsSync(refDir) ? loadModel(refDir, { backend: model.parameters()[0].backend }) : cloneModel(model);
  const moe = model instanceof DeepseekV3ForCausalLM ? model.moeLayers() : [];
  for (const m of moe) m.balanceAlpha = 0;
  const backend = model.parameters()[0].backend;
  const history: GrpoStepMetrics[] = [];
  const progress = new Progress(run.steps, startStep, run.quiet ?? false, 'grpo');
  const t0 = performance.now();

  for (let step = startStep; step < run.steps; step++) {
    const lr = warmupCosine(step, { peak: run.lr, warmup: run.warmup, total: run.steps, minRatio: 1 });
    model.eval();
    let ro = await rollout(model, tok, nextPrompts(run.promptsPerStep), run.rewards, c, rng);
    const allTotal = ro.total.slice();
    const allParts = Object.fromEntries(Object.entries(ro.parts).map(([k, v]) => [k, v.slice()]));
    const allTexts = ro.texts.slice();
    const allCompletions = ro.completions.slice();
    const zeroVar = zeroVarianceGroups(ro.total, G);
    const zeroVarShare = zeroVar.filter(Boolean).length / zeroVar.length;
    if (c.dynamic_sampling) {
      // DAPO: keep groups with signal; sample more prompts (twice at most) to refill the batch.
      ro = selectGroups(ro, G, (g) => !zeroVar[g]);
      for (let round = 0; round < 2 && ro.total.length < run.promptsPerStep * G; round++) {
        const need = run.promptsPerStep - ro.total.length / G;
        let more = await rollout(model, tok, nextPrompts(need), run.rewards, c, rng);
        const zv = zeroVarianceGroups(more.total, G);
        more = selectGroups(more, G, (g) => !zv[g]);
        ro = concatRollouts(ro, more);
      }
    }

    const metrics: GrpoStepMetrics = {
      step: step + 1,
      reward: mean(allTotal), reward_std: std(allTotal),
      completion_length: mean(allCompletions.map((t) => t.length)),
      reflection_rate: mean(allTexts.map((t) => (hasReflection(t) ? 1 : 0))),
      zero_variance_groups: zeroVarShare,
      truncation_rate: mean(ro.truncated.map(Number)),
      lr, gen_s: ro.genSeconds, reward_s: ro.rewardSeconds,
      gen_tokens_per_s: ro.generatedTokens / Math.max(ro.genSeconds, 1e-9),
    };
    // How the completions answer (direct, worked in steps, self-checked): R1-Zero's shift toward longer answers, step by step.
    const styles = allTexts.map((t) => answerStyle(t));
    for (const st of ANSWER_STYLES) metrics[`style_${st}`] = mean(styles.map((x) => (x === st ? 1 : 0)));
    for (const [name, v] of Object.entries(allParts)) { metrics[`reward_${name}`] = mean(v); metrics[`reward_${name}_std`] = std(v); }
    if (allParts['accuracy']) metrics['accuracy'] = mean(allParts['accuracy']);

    const tTrain = performance.now();
    if (ro.total.length > 0) {
      model.train();
      let oldRows: number[][] = [];
      const advantages = groupAdvantages(ro.total, G, c.scale_rewards);
      const keep = ro.truncated.map((t) => !(t && c.mask_truncated_completions));
      const packed = packRollouts(ro.prompts, ro.completions, keep, tok.padId ?? tok.eosId ?? 0, backend);
      const refLogprobs = ref ? noGrad(() => tokenLogprobs(ref!, packed.ids)) : null;
      const A = tensor(advantages, [advantages.length, 1], { backend });
      let batch: RolloutBatch | null = null;

      let lossValue = 0, kl = 0, clipFraction = 0, gradNorm = 0;
      for (let it = 0; it < c.num_iterations; it++) {
        optimizer.zeroGrad();
        const { logp, logits } = policyForward(model, packed.ids);
        if (!batch) {
          // π_old is the policy that sampled, i.e. this one before its first update, so the
          // first pass's log-probs (detached) are π_old: no separate forward pass for them.
          const oldLogprobs = logp.detach();
          batch = { ...packed, oldLogprobs, refLogprobs, advantages: A };
          // Sampler and trainer log-probs come from the same kernels; their gap should be ~0.
          const trainerLp = activeRows(oldLogprobs, packed.mask);
          let gap = 0, n = 0;
          trainerLp.forEach((row, i) => row.forEach((x, j) => { if (j < ro.samplerLogprobs[i].length) { gap += Math.abs(x - ro.samplerLogprobs[i][j]); n++; } }));
          metrics['logprob_gap'] = n ? gap / n : 0;
          metrics['entropy'] = maskedEntropy(logits, packed.mask);
          oldRows = trainerLp;
        }
        const loads = moe.map((m) => m.lastLoad.slice());
        const out = grpoLoss(logp, batch, c);
        backward(out.loss);
        const { norm, scale } = clipScale(model.parameters(), run.clip);
        optimizer.update({ lr, gradScale: scale });
        if (run.biasUpdateSpeed > 0) moe.forEach((m, i) => m.updateBias(run.biasUpdateSpeed, loads[i]));
        lossValue = out.loss.item(); kl = out.kl; clipFraction = out.clipFraction; gradNorm = norm;
      }
      Object.assign(metrics, { loss: lossValue, kl, clip_fraction: clipFraction, grad_norm: gradNorm, trained_completions: ro.total.length });
      fs.appendFileSync(files.rollouts, JSON.stringify({
        step: step + 1, prompts: ro.prompts, completions: ro.completions, rewards: ro.total, advantages,
        old_logprobs: oldRows.map((r) => r.map((x) => +x.toFixed(6))), keep, loss: lossValue,
      }) + '\n');
    }
    metrics['train_s'] = (performance.now() - tTrain) / 1000;
    metrics['time_s'] = (performance.now() - t0) / 1000;
    history.push(metrics);
    fs.appendFileSync(files.metrics, JSON.stringify(metrics) + '\n');
    const samples = allTexts.slice(0, run.samplesPerStep).map((text, i) => ({ step: step + 1, prompt: ro.records[i]?.prompt, completion: text, reward: allTotal[i] }));
    for (const s of samples) fs.appendFileSync(files.samples, JSON.stringify(s) + '\n');
    progress.tick(step + 1, { reward: metrics.reward, acc: metrics['accuracy'] ?? NaN, len: metrics['completion_length'] });
    run.onStep?.(metrics);

    if (ref && c.ref_model_sync_steps > 0 && (step + 1) % c.ref_model_sync_steps === 0) ref = cloneModel(model);
    const last = step + 1 === run.steps;
    if (last || (run.checkpointEvery > 0 && (step + 1) % run.checkpointEvery === 0)) {
      const tokFiles = ['tokenizer.json', 'tokenizer_config.json'].map((f) => path.join(run.runDir, 'tokenizer', f)).filter((f) => fs.existsSync(f));
      saveCheckpoint(path.join(run.runDir, 'checkpoints'), { model, optimizer, state: { step: step + 1, rng: rng.getState(), cursor }, tokenizerFiles: tokFiles, keep: 2,
        extraModels: ref ? { reference: ref } : {},
      });
    }
  }
  progress.stop();
  model.eval();
  return history;
}

/**
 * A look at a few prompts before training: how often completions hit the length limit, how
 * many groups carry no signal, and whether the prompt pre-fills a tag the format reward wants.
 */
async function preflight(run: GrpoRun, rng: Rng, log: (s: string) => void): Promise<void> {
  const sample = run.prompts.slice(0, Math.min(4, run.prompts.length));
  const ro = await rollout(run.model, run.tokenizer, sample, run.rewards, run.grpo, rng);
  const zv = zeroVarianceGroups(ro.total, run.grpo.num_generations);
  const prefilled = sample.some((r) => /<think>\s*$/.test(r.prompt));
  const thinkInCompletion = ro.texts.filter((t) => t.includes('<think>')).length / ro.texts.length;
  log(`pre-flight on ${sample.length} prompts × ${run.grpo.num_generations}: truncated ${(100 * mean(ro.truncated.map(Number))).toFixed(0)}%, ` +
    `zero-variance groups ${(100 * zv.filter(Boolean).length / zv.length).toFixed(0)}%, mean reward ${mean(ro.total).toFixed(3)}, ` +
    `'<think>' in completions ${(100 * thinkInCompletion).toFixed(0)}%`);
  if (prefilled && run.rewards.some((r) => r.name === 'format')) {
    log('pre-flight warning: the prompt ends with <think>, so completions will not contain it; make sure the format reward expects a pre-filled <think>');
  }
  if (mean(ro.truncated.map(Number)) > 0.5) log('pre-flight warning: most completions hit max_completion_length; raise it or expect truncated rewards');
  if (zv.every(Boolean)) log('pre-flight warning: every group has identical rewards: no learning signal (consider dynamic_sampling or easier prompts)');
}

function mean(xs: number[]): number { return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0; }
function std(xs: number[]): number {
  const m = mean(xs);
  return xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1)) : 0;
}
