// Speculative decoding with the Multi-Token Prediction modules (DeepSeek-V3 §2.2: "the MTP
// module can be used for speculative decoding"), greedy, one sequence.
//
// Notation: t_0 … t_n are the confirmed tokens (prompt + output so far); t_n, the newest, has
// not been fed to the main model yet, so the main KV cache holds positions 0 … n−1. h_i is the
// main model's final normed hidden state at position i (depth 0). MTP module m (0-based, depth
// m+1) at position i reads the depth-m hidden state h_i^m and Emb(t_{i+m+1}) and predicts
// t_{i+m+2}; each module keeps its own latent KV cache over its own sequence of positions.
//
// One step:
//   1. Draft. Module 0 at position n−1 reads h_{n−1} and Emb(t_n) and predicts d_1 = t_{n+1};
//      module 1 at n−1 reads module 0's output there and Emb(d_1) and predicts d_2; and so on
//      (the paper's causal chain of depths). A module first catches up on every position its
//      cache lacks, so its attention sees the same history as in training. Beyond the last
//      module the last module is chained on its own output at the next positions.
//   2. Verify. The main model runs once over [t_n, d_1, …, d_k] with its cache: row j of the
//      logits is the greedy token after t_n, d_1 … d_j. Drafts are accepted while they equal
//      the main model's own choice; the first disagreement is replaced by the main model's
//      token, and when every draft is accepted the last row gives one more token for free.
//      So a step emits accepted + 1 tokens, exactly the tokens plain greedy decoding emits.
//   3. Roll back. The main cache keeps [t_n, d_1 … d_a] (positions n … n+a) and drops the
//      rejected drafts' keys. An MTP entry at position i of module m consumed t_{i+m+1}: it
//      stands only if that token was confirmed before or an accepted draft, and it was not a
//      chained guess (i < n); later entries are dropped and recomputed next step from the
//      true hidden states and tokens.
import { concat, narrow, noGrad, tensor, Tensor } from '../tensor/index.js';
import type { Backend } from '../backend/backend.js';
import type { DeepseekV3ForCausalLM } from '../models/deepseek-v3.js';
import { KVCache } from './kv-cache.js';
import { generate, FinishReason } from './generate.js';
import { GREEDY, Sampled, sampleToken } from './sampler.js';
import { Rng } from '../tensor/random.js';

export interface SpeculativeOptions {
  maxNewTokens: number;
  /** Generation stops when one of these ids is produced (kept in the output). */
  stopTokens?: number[];
  /**
   * Draft tokens per step (default 1). Drafts 1 … D use MTP modules 1 … D; further drafts
   * chain the last module on its own output.
   */
  draftTokens?: number;
  /** Unused by greedy decoding; accepted for parity with generate(). */
  seed?: number;
  /** Also time plain generate() on the same prompt and report stats.speedupVsPlain. */
  measurePlain?: boolean;
}

export interface SpeculativeStats {
  /** Draft tokens proposed by the MTP module(s). */
  drafted: number;
  /** Of those, how many the main model confirmed. */
  accepted: number;
  /** accepted / drafted (0 when nothing was drafted). */
  acceptance: number;
  /** Main-model forward passes, the prefill included (plain decoding needs one per token). */
  mainForwardPasses: number;
  /** Generated tokens per second of wall time, prefill included. */
  tokensPerSecond: number;
  /** Wall time of plain generate() over that of speculative decoding (with measurePlain). */
  speedupVsPlain?: number;
}

export interface SpeculativeCompletion {
  /** The generated ids (prompt excluded): those of plain greedy generate(). */
  tokens: number[];
  /** log p(token) under the main model for each generated token. */
  logprobs: number[];
  finishReason: FinishReason;
  stats: SpeculativeStats;
}

/** What one draft–verify step did. */
export interface StepResult {
  /** Tokens confirmed by this step, in order (accepted drafts, then the main model's token). */
  emitted: Sampled[];
  drafted: number;
  accepted: number;
}

const greedy = (row: ArrayLike<number>): Sampled => sampleToken(row, GREEDY, UNUSED_RNG);
const UNUSED_RNG = new Rng(0);

/**
 * The state of MTP speculative decoding of one sequence: the confirmed tokens, the main KV
 * cache and one KV cache per MTP module in use. generateSpeculative drives it; tests inspect it.
 */
export class MtpSpeculator {
  /** Confirmed tokens, prompt first. The last one has not been fed to the main model yet. */
  readonly tokens: number[];
  readonly mainCache: KVCache;
  /** mtpCaches[m]: the latent cache of MTP module m. */
  readonly mtpCaches: KVCache[];
  /** MTP modules used: min(draftTokens, number of modules). */
  readonly depth: number;
  /**
   * hid[m] (1, r, C): depth-m hidden states (m = 0: the main model's) of confirmed positions
   * [mtpCaches[m].length, … + r) that module m has not read yet; null when r = 0.
   */
  private readonly hid: (Tensor | null)[];
  private readonly backend: Backend;

  constructor(readonly model: DeepseekV3ForCausalLM, prompt: number[], opts: { capacity: number; draftTokens: number }) {
    if (model.mtp.length === 0) throw new Error('speculative decoding needs a model with MTP modules (num_nextn_predict_layers > 0, built with mtp)');
    if (prompt.length === 0) throw new Error('speculative decoding: the prompt needs at least one token');
    if (!(opts.draftTokens >= 1)) throw new Error(`speculative decoding: draftTokens must be ≥ 1 (got ${opts.draftTokens})`);
    this.backend = model.parameters()[0].backend;
    this.tokens = [...prompt];
    this.depth = Math.min(opts.draftTokens, model.mtp.length);
    const one = new Int32Array(1);
    this.mainCache = new KVCache(1, opts.capacity, one, this.backend);
    this.mtpCaches = Array.from({ length: this.depth }, () => new KVCache(1, opts.capacity, one, this.backend));
    this.hid = new Array<Tensor | null>(this.depth).fill(null);
  }

  /** Runs the main model over the prompt and confirms its greedy next token. */
  prefill(): Sampled {
    return noGrad(() => {
      const P = this.tokens.length;
      const hidden = this.model.hiddenStates(this.ids(this.tokens), { cache: this.mainCache }); // (1, P, C)
      const logits = this.model.lm_head.forward(narrow(hidden, 1, P - 1, 1));
      const first = greedy(logits.toArray());
      this.hid[0] = hidden; // h_0 … h_{P−1}: module 0 reads them next step
      this.tokens.push(first.token);
      return first;
    });
  }

  /** One draft–verify–rollback step with up to `draft` drafts (0: a plain decoding step). */
  step(draft: number): StepResult {
    return noGrad(() => {
      const { model, tokens, mtpCaches, depth } = this;
      const n = tokens.length - 1; // t_n: confirmed, not yet in the main cache
      if (this.mainCache.length !== n) throw new Error('MtpSpeculator.step: call prefill() first');
      const oldLen = mtpCaches.map((c) => c.length);

      // ---- 1. Draft -------------------------------------------------------------------------
      const drafts: number[] = []; // d_1 … d_k: drafts[j] stands for t_{n+1+j}
      const tokenAt = (p: number): number => (p <= n ? tokens[p] : drafts[p - n - 1]);
      const outs = new Array<Tensor | null>(depth).fill(null); // module m's outputs at [oldLen[m], n)
      let h: Tensor | null = null; // the previous draft's hidden state (chaining)
      for (let j = 0; j < draft; j++) {
        let res: { hidden: Tensor; logits: Tensor };
        if (j < depth) {
          // Module j catches up on positions [its cache length, n−1]. Its input hidden states are
          // those of depth j it has not read yet: confirmed ones kept from earlier steps (hid[j])
          // then the ones module j−1 just produced this step (outs[j−1]).
          const m = j;
          const from = oldLen[m];
          const hPrev = catRows(this.hid[m], m === 0 ? null : outs[m - 1])!;
          const next = Array.from({ length: n - from }, (_, r) => tokenAt(from + r + m + 1)); // t_{i+m+1}
          res = model.mtpDraftStep(m, hPrev, this.ids(next), mtpCaches[m]);
          outs[m] = res.hidden;
        } else {
          // Past the last module: chain it at the next position on its own last output, in place
          // of the main model's hidden state there (a guess: rolled back whatever happens).
          const last = narrow(h!, 1, h!.shape[1] - 1, 1);
          res = model.mtpDraftStep(depth - 1, last, this.ids([drafts[j - 1]]), mtpCaches[depth - 1]);
        }
        h = res.hidden;
        drafts.push(greedy(res.logits.toArray()).token);
      }

      // ---- 2. Verify: one main forward over [t_n, d_1 … d_k] ----------------------------------
      const k = drafts.length;
      const { logits, hidden } = model.forward(this.ids([tokens[n], ...drafts]), { cache: this.mainCache }); // (1, k+1, ·)
      const V = logits.shape[2];
      const rows = logits.toArray();
      const emitted: Sampled[] = [];
      let accepted = 0;
      for (let j = 0; j <= k; j++) {
        const s = greedy(rows.subarray(j * V, (j + 1) * V)); // the main model's choice after d_j
        emitted.push(s);
        if (j < k && s.token === drafts[j]) accepted++; // d_{j+1} confirmed: read the next row
        else break; // first disagreement (or the bonus token after all drafts): stop here
      }
      const nNew = n + accepted + 1; // t_{n+1} … t_{nNew} are now confirmed
      for (const s of emitted) tokens.push(s.token);

      // ---- 3. Roll back ------------------------------------------------------------------------
      // Main model: keep the keys of t_n, d_1 … d_a (positions n … n+a); drop rejected drafts.
      this.mainCache.truncate(nNew);
      // MTP module m: an entry at position i read t_{i+m+1}; keep it iff that was a confirmed
      // token or an accepted draft (i + m + 1 ≤ n + a: t_{nNew} replaced a rejected draft or was
      // never drafted) and i < n (entries at ≥ n were chained guesses).
      const newLen = mtpCaches.map((c, m) => Math.min(c.length, n, nNew - m - 1));
      mtpCaches.forEach((c, m) => c.truncate(newLen[m]));
      // Hidden states of confirmed positions that each module still has to read: for module 0
      // the main model's h_n … h_{n+a} from the verify pass; for module m the outputs of
      // module m−1 at positions [newLen[m], newLen[m−1]).
      for (let m = 0; m < depth; m++) {
        const src = m === 0
          ? catRows(this.hid[0], narrow(hidden, 1, 0, accepted + 1)) // positions [oldLen[0], nNew)
          : catRows(this.hid[m], outs[m - 1]); // positions [oldLen[m], …)
        const end = m === 0 ? nNew : newLen[m - 1];
        this.hid[m] = sliceRows(src, oldLen[m], newLen[m], end);
      }
      return { emitted, drafted: k, accepted };
    });
  }

  private ids(a: number[]): Tensor {
    return tensor(Int32Array.from(a), [1, a.length], { backend: this.backend, dtype: 'i32' });
  }
}

/** Rows of a then b along the time axis (either may be null). */
function catRows(a: Tensor | null, b: Tensor | null): Tensor | null {
  if (!a) return b;
  if (!b) return a;
  return concat([a, b], 1);
}

/** Positions [from, to) of t (1, r, C), whose first row is position `start`; null if empty. */
function sliceRows(t: Tensor | null, start: number, from: number, to: number): Tensor | null {
  if (to <= from) return null;
  if (!t || from < start || to - start > t.shape[1]) throw new Error(`speculative: hidden rows [${from}, ${to}) not held`);
  return from === start && to - start === t.shape[1] ? t : narrow(t, 1, from - start, to - from);
}

/**
 * Greedy generation with MTP speculative decoding. The tokens equal those of
 * generate(model, [prompt], {maxNewTokens, stopTokens}) (greedy), in fewer main-model passes.
 */
export function generateSpeculative(model: DeepseekV3ForCausalLM, prompt: number[], opts: SpeculativeOptions): SpeculativeCompletion {
  const maxNew = opts.maxNewTokens;
  const k = opts.draftTokens ?? 1;
  const P = prompt.length;
  const maxPositions = model.config.max_position_embeddings;
  if (P + maxNew > maxPositions) {
    throw new Error(`generateSpeculative: prompt (${P}) + maxNewTokens (${maxNew}) exceed max_position_embeddings ${maxPositions}`);
  }
  const stopTokens = new Set(opts.stopTokens ?? []);
  const out: SpeculativeCompletion = {
    tokens: [], logprobs: [], finishReason: 'length',
    stats: { drafted: 0, accepted: 0, acceptance: 0, mainForwardPasses: 0, tokensPerSecond: 0 },
  };
  const t0 = performance.now();
  // Drafts never run past maxNewTokens, so the caches need room for prompt + output only.
  const spec = new MtpSpeculator(model, prompt, { capacity: P + Math.max(maxNew, 1), draftTokens: k });
  /** Appends confirmed tokens one by one; true once generation is over. */
  const take = (tokens: Sampled[]): boolean => {
    for (const s of tokens) {
      out.tokens.push(s.token);
      out.logprobs.push(s.logprob);
      if (stopTokens.has(s.token)) { out.finishReason = 'stop_token'; return true; }
      if (out.tokens.length >= maxNew) return true;
    }
    return false;
  };
  if (maxNew > 0) {
    let done = take([spec.prefill()]);
    out.stats.mainForwardPasses++;
    while (!done) {
      const r = spec.step(Math.min(k, maxNew - out.tokens.length - 1));
      out.stats.mainForwardPasses++;
      out.stats.drafted += r.drafted;
      out.stats.accepted += r.accepted;
      done = take(r.emitted);
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const s = out.stats;
  s.acceptance = s.drafted > 0 ? s.accepted / s.drafted : 0;
  s.tokensPerSecond = out.tokens.length / Math.max(seconds, 1e-9);
  if (opts.measurePlain) {
    const t1 = performance.now();
    generate(model, [prompt], { maxNewTokens: maxNew, stopTokens: opts.stopTokens });
    s.speedupVsPlain = (performance.now() - t1) / 1000 / Math.max(seconds, 1e-9);
  }
  return out;
}

export interface MtpAcceptance {
  /** Accepted / drafted over all prompts (the drafts-weighted mean acceptance rate). */
  acceptance: number;
  /** Mean of the per-prompt acceptance rates. */
  meanPromptAcceptance: number;
  /** Wall time of plain greedy generate() over that of speculative decoding, all prompts. */
  speedup: number;
  plainTokensPerSecond: number;
  speculativeTokensPerSecond: number;
  /** Generated tokens per main-model forward pass (plain decoding: 1). */
  tokensPerMainPass: number;
  /** Whether every speculative output equalled the plain greedy output (it must). */
  identical: boolean;
  drafted: number;
  accepted: number;
}

/**
 * MTP acceptance rate and measured speed-up over plain greedy decoding, one prompt at a time
 * (after a short warm-up of both). Each prompt is timed `repeats` times (default 3) each way,
 * alternating, and the fastest run counts, which keeps other load on the machine out of the
 * ratio. For reports such as bench/generate.ts's mtp_acceptance.
 */
export function mtpAcceptance(model: DeepseekV3ForCausalLM, prompts: number[][], maxNewTokens: number,
  opts: { draftTokens?: number; repeats?: number } = {}): MtpAcceptance {
  if (prompts.length === 0) throw new Error('mtpAcceptance: no prompts');
  const repeats = Math.max(1, opts.repeats ?? 3);
  const warm = Math.min(4, maxNewTokens);
  generate(model, [prompts[0]], { maxNewTokens: warm });
  generateSpeculative(model, prompts[0], { maxNewTokens: warm, draftTokens: opts.draftTokens });
  const timed = <R>(fn: () => R): [R, number] => {
    const t = performance.now();
    const r = fn();
    return [r, (performance.now() - t) / 1000];
  };
  let plainS = 0, specS = 0, plainTokens = 0, specTokens = 0, drafted = 0, accepted = 0, passes = 0, rateSum = 0;
  let identical = true;
  for (const p of prompts) {
    let bestPlain = Infinity, bestSpec = Infinity;
    for (let r = 0; r < repeats; r++) {
      const [plain, tp] = timed(() => generate(model, [p], { maxNewTokens })[0]);
      const [spec, ts] = timed(() => generateSpeculative(model, p, { maxNewTokens, draftTokens: opts.draftTokens }));
      bestPlain = Math.min(bestPlain, tp);
      bestSpec = Math.min(bestSpec, ts);
      if (r > 0) continue; // greedy: every repeat produces the same tokens
      plainTokens += plain.tokens.length;
      specTokens += spec.tokens.length;
      drafted += spec.stats.drafted;
      accepted += spec.stats.accepted;
      passes += spec.stats.mainForwardPasses;
      rateSum += spec.stats.acceptance;
      identical &&= plain.tokens.length === spec.tokens.length && plain.tokens.every((x, i) => x === spec.tokens[i]);
    }
    plainS += bestPlain;
    specS += bestSpec;
  }
  return {
    acceptance: drafted > 0 ? accepted / drafted : 0,
    meanPromptAcceptance: rateSum / prompts.length,
    speedup: plainS / Math.max(specS, 1e-9),
    plainTokensPerSecond: plainTokens / Math.max(plainS, 1e-9),
    speculativeTokensPerSecond: specTokens / Math.max(specS, 1e-9),
    tokensPerMainPass: specTokens / Math.max(passes, 1),
    identical, drafted, accepted,
  };
}
