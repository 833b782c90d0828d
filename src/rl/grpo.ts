// Group Relative Policy Optimization (DeepSeekMath §4.1; DeepSeek-R1 §2.2.1), with the
// variants users ask for, named as in TRL's GRPOConfig.
//
// For each prompt q, sample G completions o_1..o_G from the old policy π_old, score them with
// the rule-based rewards r_i, and set every token of o_i to the group-relative advantage
//     A_i = (r_i − mean(r)) / std(r)                  (scale_rewards 'group'; 'none': no division)
// then maximise, per token t of o_i,
//     min( ρ A_i , clip(ρ, 1 − ε_low, 1 + ε_high) A_i ) − β D_KL,    ρ = π_θ(o_t | q, o_<t) / π_old(·)
// with the unbiased KL estimator  D_KL = π_ref/π_θ − log(π_ref/π_θ) − 1  (Schulman's k3).
// Aggregation (loss_type): 'grpo' mean over each sequence's tokens then over sequences
// (DeepSeekMath); 'bnpo' / 'dapo' sum over all tokens / number of tokens (DAPO's token-level
// loss); 'dr_grpo' sum / (sequences × max_completion_length) (Dr. GRPO, with scale_rewards 'none').
import type { Backend } from '../backend/backend.js';
import {
  add, affine, compare, crossEntropy, exp, maximum, minimum, mul, narrow, noGrad, reshape, sub, sum, Tensor, tensor,
} from '../tensor/index.js';
import type { CausalLM } from '../models/common.js';

export type LossType = 'grpo' | 'bnpo' | 'dapo' | 'dr_grpo';

export interface GrpoConfig {
  /** G: completions sampled per prompt. */
  num_generations: number;
  temperature: number;
  top_p: number;
  max_completion_length: number;
  loss_type: LossType;
  /** ε (ε_low): lower clip of the ratio. */
  epsilon: number;
  /** ε_high (DAPO's clip-higher); defaults to epsilon. */
  epsilon_high: number;
  /** β of the KL penalty to the reference policy (0: no reference model is kept). */
  beta: number;
  /** 'group': divide advantages by the group's std; 'none': do not (Dr. GRPO). */
  scale_rewards: 'group' | 'none';
  /** μ: policy updates per batch of rollouts. */
  num_iterations: number;
  /** Reset the reference policy to the current one every N steps (0 = never). */
  ref_model_sync_steps: number;
  /** DAPO dynamic sampling: drop groups whose rewards are all equal (and sample more). */
  dynamic_sampling: boolean;
  /** DAPO overlong filtering: truncated completions take no part in the loss. */
  mask_truncated_completions: boolean;
}

export const defaultGrpoConfig: GrpoConfig = {
  num_generations: 8, temperature: 1.0, top_p: 1.0, max_completion_length: 128,
  loss_type: 'grpo', epsilon: 0.2, epsilon_high: 0.2, beta: 0.04, scale_rewards: 'group',
  num_iterations: 1, ref_model_sync_steps: 0, dynamic_sampling: false, mask_truncated_completions: false,
};

/** The objective in words, printed before training so that nobody trains the wrong one. */
export function describeObjective(c: GrpoConfig): string {
  const variant = c.loss_type === 'dr_grpo' ? 'Dr. GRPO (Liu et al. 2025)'
    : c.loss_type === 'dapo' || c.loss_type === 'bnpo' ? 'DAPO-style token-level GRPO (Yu et al. 2025)'
      : 'GRPO (DeepSeekMath, Shao et al. 2024; as in DeepSeek-R1)';
  const norm = {
    grpo: 'mean over each completion\'s tokens, then mean over completions',
    bnpo: 'sum over all completion tokens / number of completion tokens in the batch',
    dapo: 'sum over all completion tokens / number of completion tokens in the batch',
    dr_grpo: `sum over all completion tokens / (completions × max_completion_length = ${c.max_completion_length})`,
  }[c.loss_type];
  return [
    `objective: ${variant}`,
    `  advantage: (r − mean_group(r))${c.scale_rewards === 'group' ? ' / std_group(r)' : ' (no std scaling)'}, G = ${c.num_generations}`,
    `  surrogate: min(ρA, clip(ρ, ${(1 - c.epsilon).toFixed(3)}, ${(1 + c.epsilon_high).toFixed(3)})A)${c.epsilon_high !== c.epsilon ? ' (clip-higher)' : ''}`,
    `  loss normaliser: ${norm}`,
    c.beta > 0
      ? `  KL: β = ${c.beta}, estimator π_ref/π − log(π_ref/π) − 1, reference ${c.ref_model_sync_steps > 0 ? `reset every ${c.ref_model_sync_steps} steps` : 'fixed (the initial policy)'}`
      : '  KL: none (β = 0)',
    `  policy updates per batch: μ = ${c.num_iterations}; sampling: temperature ${c.temperature}, top-p ${c.top_p}, ≤ ${c.max_completion_length} tokens`,
    `  dynamic sampling: ${c.dynamic_sampling ? 'on (zero-variance groups dropped and refilled)' : 'off'}; truncated completions: ${c.mask_truncated_completions ? 'masked out' : 'kept'}`,
  ].join('\n');
}

/** Group-relative advantages, one per completion; groups are consecutive runs of G. */
export function groupAdvantages(rewards: readonly number[], G: number, scale: 'group' | 'none'): number[] {
  if (rewards.length % G !== 0) throw new Error(`groupAdvantages: ${rewards.length} rewards are not groups of ${G}`);
  const out = new Array<number>(rewards.length);
  for (let g = 0; g < rewards.length; g += G) {
    const group = rewards.slice(g, g + G);
    const mean = group.reduce((a, b) => a + b, 0) / G;
    // Sample std (unbiased, as torch.std), matching TRL and the DeepSeekMath formula's practice.
    const std = G > 1 ? Math.sqrt(group.reduce((a, r) => a + (r - mean) ** 2, 0) / (G - 1)) : 0;
    for (let i = 0; i < G; i++) out[g + i] = scale === 'group' ? (group[i] - mean) / (std + 1e-4) : group[i] - mean;
  }
  return out;
}

/** A batch of rollouts ready for the loss: prompt+completion rows, right-padded. */
export interface RolloutBatch {
  /** i32 (B, L) prompt + completion, right-padded. */
  ids: Tensor;
  /** (B, L−1): 1 where position t+1 is a completion token that takes part in the loss. */
  mask: Tensor;
  /** (B, 1) advantage per completion. */
  advantages: Tensor;
  /** (B, L−1) log π_old of each next token (0 where masked). */
  oldLogprobs: Tensor;
  /** (B, L−1) log π_ref, when β > 0. */
  refLogprobs: Tensor | null;
  /** Completion tokens per row that take part in the loss. */
  tokensPerRow: number[];
}

/**
 * Builds the padded batch from prompts and completions (token ids). Rows are right-padded to
 * a length that is a multiple of `lengthMultiple`: each step's batch then has one of a few
 * shapes, and the allocator reuses the buffers of earlier steps instead of growing the heap
 * (padding sits after every real token, so causal attention never sees it, and takes no loss).
 */
export function packRollouts(prompts: number[][], completions: number[][], keep: boolean[], padId: number, backend?: Backend,
  lengthMultiple = 32): { ids: Tensor; mask: Tensor; tokensPerRow: number[] } {
  const B = prompts.length;
  const longest = Math.max(...prompts.map((p, i) => p.length + completions[i].length));
  const L = Math.ceil(longest / lengthMultiple) * lengthMultiple;
  const ids = new Int32Array(B * L).fill(padId);
  const mask = new Float32Array(B * (L - 1));
  const tokensPerRow: number[] = [];
  for (let b = 0; b < B; b++) {
    const row = [...prompts[b], ...completions[b]];
    ids.set(row, b * L);
    // Target position t+1 ∈ [promptLen, rowLen) ⇔ t ∈ [promptLen − 1, rowLen − 1).
    let n = 0;
    if (keep[b]) {
      for (let t = prompts[b].length - 1; t < row.length - 1; t++) { mask[b * (L - 1) + t] = 1; n++; }
    }
    tokensPerRow.push(n);
  }
  return {
    ids: tensor(ids, [B, L], { backend, dtype: 'i32' }),
    mask: tensor(mask, [B, L - 1], { backend }),
    tokensPerRow,
  };
}

/** log π(ids[t+1] | ids[≤t]) for every position: (B, L−1). Differentiable. */
export function tokenLogprobs(model: CausalLM, ids: Tensor): Tensor {
  return policyForward(model, ids).logp;
}

/** tokenLogprobs and the logits (B, L, V) they come from, for statistics such as the entropy. */
export function policyForward(model: CausalLM, ids: Tensor): { logp: Tensor; logits: Tensor } {
  const [B, L] = ids.shape;
  const { logits } = model.forward(ids);
  const V = logits.shape[2];
  const pred = reshape(narrow(logits, 1, 0, L - 1), [B * (L - 1), V]);
  const target = reshape(narrow(ids, 1, 1, L - 1), [B * (L - 1)]);
  const nll = crossEntropy(pred, target, { reduction: 'none' });
  return { logp: reshape(affine(nll, -1, 0), [B, L - 1]), logits };
}

export interface GrpoLoss {
  loss: Tensor;
  /** Mean KL estimate over active tokens. */
  kl: number;
  /** Share of active tokens whose ratio was clipped (the clip bound was the binding one). */
  clipFraction: number;
}

/** The GRPO loss of a batch under the current policy log-probs (B, L−1). */
export function grpoLoss(logp: Tensor, batch: RolloutBatch, c: GrpoConfig): GrpoLoss {
  const { mask, advantages: A, oldLogprobs } = batch;
  const ratio = exp(sub(logp, oldLogprobs)); // ρ
  const clipped = minimum(maximum(ratio, 1 - c.epsilon), 1 + c.epsilon_high);
  const surrogate = minimum(mul(ratio, A), mul(clipped, A)); // (B, L−1)
  let perToken = affine(surrogate, -1, 0);
  let kl = 0;
  if (c.beta > 0) {
    if (!batch.refLogprobs) throw new Error('grpoLoss: β > 0 needs reference log-probs');
    const d = sub(batch.refLogprobs, logp); // log(π_ref/π)
    const k3 = sub(sub(exp(d), d), 1); // π_ref/π − log(π_ref/π) − 1 ≥ 0
    perToken = add(perToken, mul(k3, c.beta));
    kl = noGrad(() => masked(k3, mask).sum / Math.max(masked(mask, mask).sum, 1));
  }
  const activeTokens = batch.tokensPerRow.reduce((a, b) => a + b, 0);
  const B = batch.tokensPerRow.length;
  const weighted = mul(perToken, mask);
  let loss: Tensor;
  switch (c.loss_type) {
    case 'grpo': {
      // Per-sequence mean, then mean over sequences with any active token.
      const perSeq = sum(weighted, 1); // (B)
      const inv = tensor(batch.tokensPerRow.map((n) => (n > 0 ? 1 / n : 0)), [B], { backend: logp.backend, dtype: logp.dtype });
      const rows = batch.tokensPerRow.filter((n) => n > 0).length;
      loss = mul(sum(mul(perSeq, inv)), 1 / Math.max(rows, 1));
      break;
    }
    case 'bnpo':
    case 'dapo':
      loss = mul(sum(weighted), 1 / Math.max(activeTokens, 1));
      break;
    case 'dr_grpo':
      loss = mul(sum(weighted), 1 / (B * c.max_completion_length));
      break;
  }
  const clipFraction = noGrad(() => {
    // Clipped where the clipped term is the smaller one and differs from the raw term.
    const raw = mul(ratio, A), clip = mul(clipped, A);
    const bound = mul(compare('lt', clip, raw), compare('ne', clipped, ratio));
    return masked(bound, mask).sum / Math.max(activeTokens, 1);
  });
  return { loss, kl, clipFraction };
}

function masked(x: Tensor, mask: Tensor): { sum: number } {
  return { sum: sum(mul(x, mask)).item() };
}
