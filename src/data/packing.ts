// Sequence packing (pretraining) and padded batches with a loss mask (SFT).
//
// Labels follow the Hugging Face convention used by models/common.ts nextTokenLoss: labels
// have the same shape as the input ids and are NOT shifted (the loss shifts: logits at t
// predict labels at t+1); IGNORE_INDEX (-100) marks positions that take no loss.
import { Rng } from '../tensor/random.js';

export const IGNORE_INDEX = -100;

export interface PackOpts {
  /** Appended after every document. */
  eosId: number;
  /** Prepended to every document when given. */
  bosId?: number;
  /**
   * What to do with the tail shorter than seqLen: drop it (default), or pad it with this id
   * (the padding is then ordinary tokens to the caller: mask it yourself if it matters).
   */
  padId?: number;
  /** Shuffle the documents with this seed before packing (default: keep the given order). */
  seed?: number;
}

/**
 * Concatenate the documents, each followed by EOS (and preceded by BOS if given), and cut the
 * stream into windows of exactly seqLen tokens. Deterministic. For next-token training each
 * window is both input and label (the loss shifts), so every window yields seqLen-1 targets.
 */
export function packSequences(tokenized: readonly (readonly number[])[], seqLen: number, opts: PackOpts): Int32Array[] {
  if (!Number.isInteger(seqLen) || seqLen < 2) throw new Error(`packSequences: seqLen must be an integer >= 2, got ${seqLen}`);
  const order = tokenized.map((_, i) => i);
  if (opts.seed !== undefined) new Rng(opts.seed).shuffle(order);
  let total = 0;
  for (const d of tokenized) total += d.length + 1 + (opts.bosId !== undefined ? 1 : 0);
  const stream = new Int32Array(total);
  let p = 0;
  for (const i of order) {
    if (opts.bosId !== undefined) stream[p++] = opts.bosId;
    const d = tokenized[i];
    for (let j = 0; j < d.length; j++) {
      const t = d[j];
      if (!Number.isInteger(t)) throw new Error(`packSequences: document ${i} has a non-integer token at position ${j}`);
      stream[p++] = t;
    }
    stream[p++] = opts.eosId;
  }
  const out: Int32Array[] = [];
  let s = 0;
  for (; s + seqLen <= total; s += seqLen) out.push(stream.slice(s, s + seqLen));
  if (s < total && opts.padId !== undefined) {
    const w = new Int32Array(seqLen).fill(opts.padId);
    w.set(stream.subarray(s));
    out.push(w);
  }
  return out;
}

export interface SftTokens { prompt: readonly number[]; response: readonly number[] }

export interface PadOpts {
  padId: number;
  /** Appended to every response (and trained on) when given. */
  eosId?: number;
  /** Truncate longer sequences to this many tokens. */
  maxLen?: number;
  /** 'right' (default) cuts the end of the response; 'left' cuts the start of the prompt. */
  truncation?: 'right' | 'left';
  /** Round the padded length up to a multiple of this (e.g. 8). */
  padToMultipleOf?: number;
}

export interface PaddedBatch {
  /** (batchSize, seqLen) row-major. */
  inputIds: Int32Array;
  /** (batchSize, seqLen): the response tokens, IGNORE_INDEX on prompt and padding. */
  labels: Int32Array;
  /** (batchSize, seqLen): 1 on real tokens, 0 on padding. */
  attentionMask: Int32Array;
  batchSize: number;
  seqLen: number;
  /** Real length of each row. */
  lengths: number[];
  /** Rows that were truncated. */
  truncated: number;
}

/**
 * Right-pad prompt+response pairs into one batch; the loss mask keeps only response tokens
 * (and the EOS, when given).
 */
export function padBatch(examples: readonly SftTokens[], opts: PadOpts): PaddedBatch {
  if (examples.length === 0) throw new Error('padBatch: empty batch');
  const rows: { ids: number[]; promptLen: number }[] = [];
  let truncated = 0;
  for (const ex of examples) {
    let ids = [...ex.prompt, ...ex.response];
    if (opts.eosId !== undefined) ids.push(opts.eosId);
    let promptLen = ex.prompt.length;
    if (opts.maxLen !== undefined && ids.length > opts.maxLen) {
      truncated++;
      if ((opts.truncation ?? 'right') === 'right') ids = ids.slice(0, opts.maxLen);
      else { const cut = ids.length - opts.maxLen; ids = ids.slice(cut); promptLen = Math.max(0, promptLen - cut); }
    }
    rows.push({ ids, promptLen: Math.min(promptLen, ids.length) });
  }
  let seqLen = Math.max(1, ...rows.map((r) => r.ids.length));
  const m = opts.padToMultipleOf;
  if (m && m > 1) seqLen = Math.ceil(seqLen / m) * m;
  const B = rows.length;
  const inputIds = new Int32Array(B * seqLen).fill(opts.padId);
  const labels = new Int32Array(B * seqLen).fill(IGNORE_INDEX);
  const attentionMask = new Int32Array(B * seqLen);
  rows.forEach((r, b) => {
    const o = b * seqLen;
    for (let t = 0; t < r.ids.length; t++) {
      inputIds[o + t] = r.ids[t];
      attentionMask[o + t] = 1;
      if (t >= r.promptLen) labels[o + t] = r.ids[t];
    }
  });
  return { inputIds, labels, attentionMask, batchSize: B, seqLen, lengths: rows.map((r) => r.ids.length), truncated };
}
