// Replaying a recorded GRPO step offline: rebuild its batch from rollouts.jsonl and recompute
// the policy's log-probs and the loss with the checkpoint taken just before that step. The
// log-probs must equal the recorded ones and the loss the logged one — a check that what was
// trained is what was meant (or a way to debug a step that went wrong).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CausalLM } from '../models/common.js';
import { noGrad, tensor } from '../tensor/index.js';
import { GrpoConfig, grpoLoss, packRollouts, RolloutBatch, tokenLogprobs } from './grpo.js';

export interface RolloutRecord {
  step: number;
  prompts: number[][];
  completions: number[][];
  rewards: number[];
  advantages: number[];
  old_logprobs: number[][];
  keep: boolean[];
  loss: number;
}

export function readRollout(runDir: string, step: number): RolloutRecord {
  const file = path.join(runDir, 'rollouts.jsonl');
  if (!fs.existsSync(file)) throw new Error(`${file}: no rollout records (was this a GRPO run?)`);
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as RolloutRecord;
    if (r.step === step) return r;
  }
  throw new Error(`${file}: no record of step ${step}`);
}

export interface ReplayResult {
  /** The loss recomputed now, and the one logged when the step ran. */
  loss: number;
  loggedLoss: number;
  /** Largest |log π now − log π recorded| over the trained tokens. */
  maxLogprobDiff: number;
}

/**
 * Recomputes a step with `model` (the policy before the step) and the run's GRPO config; with
 * β > 0 pass the reference policy of that step too.
 */
export function replayStep(model: CausalLM, record: RolloutRecord, c: GrpoConfig, opts: { padId?: number; ref?: CausalLM } = {}): ReplayResult {
  if (c.beta > 0 && !opts.ref) throw new Error('replayStep: β > 0 needs the reference policy of that step (opts.ref)');
  return noGrad(() => {
    const backend = model.parameters()[0].backend;
    const packed = packRollouts(record.prompts, record.completions, record.keep, opts.padId ?? 0, backend);
    const logp = tokenLogprobs(model, packed.ids);
    // The recorded old log-probs, laid back onto the padded grid.
    const [B, L1] = logp.shape;
    const mask = packed.mask.toArray();
    const old = new Float32Array(B * L1);
    let diff = 0;
    const now = logp.toArray();
    for (let b = 0; b < B; b++) {
      let j = 0;
      for (let t = 0; t < L1; t++) {
        if (mask[b * L1 + t] === 0) continue;
        old[b * L1 + t] = record.old_logprobs[b][j++];
        diff = Math.max(diff, Math.abs(now[b * L1 + t] - old[b * L1 + t]));
      }
    }
    const batch: RolloutBatch = {
      ...packed, oldLogprobs: tensor(old, [B, L1], { backend }), refLogprobs: opts.ref ? tokenLogprobs(opts.ref, packed.ids) : null,
      advantages: tensor(record.advantages, [B, 1], { backend }),
    };
    return { loss: grpoLoss(logp, batch, c).loss.item(), loggedLoss: record.loss, maxLogprobDiff: diff };
  });
}
