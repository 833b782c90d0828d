// Byte-level BPE training, as GPT-2 / Llama-3 / DeepSeek-V3 tokenizers are made.
//
//   1. split each text around the special tokens, then into pre-tokens with a regex
//      pre-tokenizer (pretokenize.ts), and count each distinct pre-token ("word");
//   2. write each word as its UTF-8 bytes (symbol ids; ids 0..S-1 are the special tokens,
//      S..S+255 the bytes in vocabulary order);
//   3. count every adjacent symbol pair over the words, weighted by word count, and keep for
//      each pair the words it occurs in;
//   4. repeatedly merge the most frequent pair (ties: the pair with the smaller ids) into a
//      new symbol, updating only the words that contain it and the counts of the pairs
//      around each occurrence. A max-heap with lazy deletion finds the best pair: every time
//      a pair's count goes up a fresh entry is pushed, and a popped entry whose count is out
//      of date is re-pushed with the current count (counts only fall between pushes).
//
// The result is written as a Hugging Face tokenizer.json (tokenizer-files.ts) and encoded
// through the same library that loads any other tokenizer (tokenizer.ts).

import { BYTE_TO_CHAR, BYTES_IN_VOCAB_ORDER } from './bytes.js';
import { forEachPretoken, splitOnSpecials, type PretokenizerStyle } from './pretokenize.js';

export interface TrainBpeOptions {
  /** Size of the final vocabulary, special tokens and the 256 bytes included. */
  vocabSize: number;
  /** A pair seen fewer times than this is never merged (default 2). */
  minFrequency?: number;
  /** Added tokens, given ids 0.. in this order; kept whole and never merged into. */
  specialTokens?: string[];
  /** The split regex (default 'deepseek'). */
  pretokenizer?: PretokenizerStyle;
  /** Called now and then with the number of merges done so far. */
  onProgress?: (info: { phase: 'count' | 'merge'; done: number; total: number }) => void;
}

/** A trained byte-level BPE: the vocabulary (id → byte-level token string) and the merges in rank order. */
export interface BpeModel {
  /** vocab[id]: the token; the first specialTokens.length entries are the special tokens. */
  vocab: string[];
  /** Merges in the order learned (rank 0 first), as byte-level token pairs. */
  merges: [string, string][];
  specialTokens: string[];
  pretokenizer: PretokenizerStyle;
  /** What training saw (for reports). */
  stats: { words: number; distinctWords: number; bytes: number; countSeconds: number; mergeSeconds: number };
}

const PAIR_SHIFT = 2 ** 21; // pair key = a * PAIR_SHIFT + b; ids stay below 2^21
const pairKey = (a: number, b: number) => a * PAIR_SHIFT + b;

/** Counts the pre-tokens ("words") of a corpus. */
export function countWords(
  texts: Iterable<string>,
  style: PretokenizerStyle,
  specialTokens: readonly string[] = [],
): { counts: Map<string, number>; words: number; chars: number } {
  const counts = new Map<string, number>();
  let words = 0;
  let chars = 0;
  const add = (w: string) => {
    counts.set(w, (counts.get(w) ?? 0) + 1);
    words++;
  };
  const onText = (t: string) => forEachPretoken(style, t, add);
  for (const text of texts) {
    chars += text.length;
    splitOnSpecials(text, specialTokens, onText);
  }
  return { counts, words, chars };
}

/** A binary max-heap of (count, pair key); ties go to the smaller key. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];
  get size(): number {
    return this.counts.length;
  }
  private above(i: number, j: number): boolean {
    const ci = this.counts[i]!, cj = this.counts[j]!;
    return ci > cj || (ci === cj && this.keys[i]! < this.keys[j]!);
  }
  private swap(i: number, j: number): void {
    const c = this.counts[i]!, k = this.keys[i]!;
    this.counts[i] = this.counts[j]!;
    this.keys[i] = this.keys[j]!;
    this.counts[j] = c;
    this.keys[j] = k;
  }
  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.above(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  /** Removes the top; returns [count, key]. */
  pop(): [number, number] {
    const top: [number, number] = [this.counts[0]!, this.keys[0]!];
    const lastC = this.counts.pop()!, lastK = this.keys.pop()!;
    const n = this.counts.length;
    if (n > 0) {
      this.counts[0] = lastC;
      this.keys[0] = lastK;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < n && this.above(l, m)) m = l;
        if (r < n && this.above(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

/** Trains a byte-level BPE on `texts`. Deterministic: the same texts and options give the same model. */
export function trainBpe(texts: Iterable<string>, opts: TrainBpeOptions): BpeModel {
  const style = opts.pretokenizer ?? 'deepseek';
  const specials = opts.specialTokens ?? [];
  const minFrequency = Math.max(1, opts.minFrequency ?? 2);
  if (new Set(specials).size !== specials.length) throw new Error('trainBpe: duplicate special tokens');
  const S = specials.length;
  const base = S + 256;
  if (opts.vocabSize < base) throw new Error(`trainBpe: vocabSize ${opts.vocabSize} < ${base} (specials + 256 bytes)`);
  if (opts.vocabSize >= PAIR_SHIFT) throw new Error(`trainBpe: vocabSize must be < ${PAIR_SHIFT}`);

  // 1. Count words.
  const t0 = performance.now();
  const counted = countWords(texts, style, specials);
  opts.onProgress?.({ phase: 'count', done: counted.words, total: counted.words });

  // 2. Words as symbol ids.
  const vocab: string[] = [...specials];
  const tokenId = new Map<string, number>(); // byte and merged tokens (not the specials)
  const byteId = new Int32Array(256);
  BYTES_IN_VOCAB_ORDER.forEach((b, i) => {
    const ch = BYTE_TO_CHAR[b]!;
    if (specials.includes(ch)) throw new Error(`trainBpe: special token ${JSON.stringify(ch)} is a byte-level character`);
    byteId[b] = S + i;
    vocab.push(ch);
    tokenId.set(ch, S + i);
  });
  const specialSet = new Set(specials);
  const banned = new Set<number>(); // pairs that would spell a special token: never merged
  const utf8 = new TextEncoder();
  const nWords = counted.counts.size;
  const words: Int32Array[] = new Array(nWords);
  const wordLen = new Int32Array(nWords);
  const freq = new Float64Array(nWords);
  let totalBytes = 0;
  {
    let w = 0;
    for (const [text, c] of counted.counts) {
      const bytes = utf8.encode(text);
      const sym = new Int32Array(bytes.length);
      for (let i = 0; i < bytes.length; i++) sym[i] = byteId[bytes[i]!]!;
      words[w] = sym;
      wordLen[w] = sym.length;
      freq[w] = c;
      totalBytes += bytes.length * c;
      w++;
    }
  }
  counted.counts.clear();
  const countSeconds = (performance.now() - t0) / 1000;

  // 3. Pair counts and where each pair occurs.
  const t1 = performance.now();
  const pairCount = new Map<number, number>();
  const where = new Map<number, number[]>();
  for (let w = 0; w < nWords; w++) {
    const sym = words[w]!, n = wordLen[w]!, c = freq[w]!;
    for (let i = 0; i + 1 < n; i++) {
      const k = pairKey(sym[i]!, sym[i + 1]!);
      pairCount.set(k, (pairCount.get(k) ?? 0) + c);
      let list = where.get(k);
      if (!list) where.set(k, (list = []));
      if (list[list.length - 1] !== w) list.push(w);
    }
  }
  const heap = new PairHeap();
  for (const [k, c] of pairCount) heap.push(c, k);

  // 4. Merge.
  const merges: [string, string][] = [];
  const seen = new Int32Array(nWords).fill(-1); // last merge step that visited the word
  const raised = new Set<number>(); // pairs whose count went up during this step
  const learned = new Set<number>();
  const totalMerges = opts.vocabSize - vocab.length;
  const bump = (k: number, delta: number) => {
    const c = (pairCount.get(k) ?? 0) + delta;
    if (c === 0) pairCount.delete(k);
    else pairCount.set(k, c);
  };
  let step = 0;
  while (vocab.length < opts.vocabSize && heap.size > 0) {
    const [stored, key] = heap.pop();
    const actual = pairCount.get(key) ?? 0;
    if (actual !== stored) {
      if (actual > 0 && actual < stored) heap.push(actual, key);
      continue; // stale (a fresher entry exists when actual > stored)
    }
    if (actual < minFrequency) break;
    if (banned.has(key)) continue;
    const a = Math.floor(key / PAIR_SHIFT), b = key - a * PAIR_SHIFT;
    const merged = vocab[a]! + vocab[b]!;
    if (specialSet.has(merged)) {
      banned.add(key);
      continue;
    }
    let c = tokenId.get(merged);
    if (c === undefined) {
      c = vocab.length;
      vocab.push(merged);
      tokenId.set(merged, c);
    }
    // A pair can come back when a later merge re-creates one of its tokens (two merges that
    // spell the same string share one id); its rank is the first one, so list it once.
    if (!learned.has(key)) {
      learned.add(key);
      merges.push([vocab[a]!, vocab[b]!]);
    }
    raised.clear();

    const list = where.get(key)!;
    where.delete(key);
    for (const w of list) {
      if (seen[w] === step) continue;
      seen[w] = step;
      const sym = words[w]!, n = wordLen[w]!, f = freq[w]!;
      // Rewrite the word in place, left to right, adjusting the pairs around each occurrence:
      // (left, a) → (left, c) and (b, right) → (c, right). When two occurrences touch
      // (… a b a b …) the pair between them, (b, a), becomes (c, c): the right side of the
      // first skips it and the left side of the second counts it.
      let out = 0;
      let lastMerged = false;
      for (let i = 0; i < n; ) {
        if (i + 1 < n && sym[i] === a && sym[i + 1] === b) {
          if (out > 0) {
            const left = sym[out - 1]!;
            bump(pairKey(lastMerged ? b : left, a), -f);
            const k = pairKey(left, c);
            bump(k, f);
            raised.add(k);
            addWhere(k, w);
          }
          bump(key, -f);
          if (i + 2 < n) {
            const right = sym[i + 2]!;
            const nextIsOccurrence = right === a && i + 3 < n && sym[i + 3] === b;
            if (!nextIsOccurrence) {
              bump(pairKey(b, right), -f);
              const k = pairKey(c, right);
              bump(k, f);
              raised.add(k);
              addWhere(k, w);
            }
          }
          sym[out++] = c;
          lastMerged = true;
          i += 2;
        } else {
          sym[out++] = sym[i]!;
          lastMerged = false;
          i++;
        }
      }
      wordLen[w] = out;
    }
    for (const k of raised) {
      const cnt = pairCount.get(k);
      if (cnt !== undefined && cnt > 0) heap.push(cnt, k);
    }
    step++;
    if (opts.onProgress && (step & 255) === 0) opts.onProgress({ phase: 'merge', done: step, total: totalMerges });
  }
  opts.onProgress?.({ phase: 'merge', done: step, total: totalMerges });

  function addWhere(k: number, w: number): void {
    let l = where.get(k);
    if (!l) where.set(k, (l = []));
    if (l[l.length - 1] !== w) l.push(w);
  }

  return {
    vocab,
    merges,
    specialTokens: [...specials],
    pretokenizer: style,
    stats: {
      words: counted.words,
      distinctWords: nWords,
      bytes: totalBytes,
      countSeconds,
      mergeSeconds: (performance.now() - t1) / 1000,
    },
  };
}
