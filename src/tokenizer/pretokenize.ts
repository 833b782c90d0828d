// Regex pre-tokenizers: text → pre-tokens (the pieces BPE never merges across).
//
// Three styles, each given twice: as the Hugging Face `tokenizer.json` pre_tokenizer it is
// written as (Oniguruma patterns, exactly as the official GPT-2 / Llama-3 / DeepSeek-V3 files
// spell them), and as JavaScript regexes that split the same way (Oniguruma's \s is Unicode
// White_Space; JS has no inline (?i:...) on Node 20, so those letters become [sS] classes).
// test/tokenizer.test.ts checks that these splits equal the `@huggingface/tokenizers`
// library's own reading of the written config.

/**
 * 'digits' is DeepSeek-V3's split with every digit on its own (\p{N} instead of \p{N}{1,3}),
 * so numbers are spelled digit by digit: what small models need to learn arithmetic.
 */
export type PretokenizerStyle = 'gpt2' | 'llama3' | 'deepseek' | 'digits';
export const PRETOKENIZER_STYLES: readonly PretokenizerStyle[] = ['gpt2', 'llama3', 'deepseek', 'digits'];

/** GPT-2's ByteLevel split (the library's JS regex for `ByteLevel` with use_regex). */
const GPT2_JS = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** Llama-3's split (tokenizer.json spelling). */
export const LLAMA3_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const LLAMA3_JS = new RegExp(
  "'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\p{White_Space}\\p{L}\\p{N}]+[\\r\\n]*|\\p{White_Space}*[\\r\\n]+|\\p{White_Space}+(?!\\P{White_Space})|\\p{White_Space}+",
  'gu',
);

/** DeepSeek-V3's three isolating splits (tokenizer.json spelling; CR/LF are literal there). */
export const DEEPSEEK_PATTERNS: readonly string[] = [
  '\\p{N}{1,3}',
  '[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+',
  "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
];
const DEEPSEEK_JS: readonly RegExp[] = [
  /\p{N}{1,3}/gu,
  /[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+/gu,
  new RegExp(
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\p{White_Space}*[\r\n]+|\\p{White_Space}+(?!\\P{White_Space})|\\p{White_Space}+",
    'gu',
  ),
];

const SINGLE_DIGIT_JS = /\p{N}/gu;

/** The `pre_tokenizer` entry of tokenizer.json for a style. */
export function hfPreTokenizer(style: PretokenizerStyle): Record<string, unknown> {
  const byteLevel = (useRegex: boolean) => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: useRegex });
  const split = (re: string) => ({ type: 'Split', pattern: { Regex: re }, behavior: 'Isolated', invert: false });
  switch (style) {
    case 'gpt2':
      return byteLevel(true);
    case 'llama3':
      return { type: 'Sequence', pretokenizers: [split(LLAMA3_PATTERN), byteLevel(false)] };
    case 'deepseek':
      return { type: 'Sequence', pretokenizers: [...DEEPSEEK_PATTERNS.map(split), byteLevel(false)] };
    case 'digits':
      return { type: 'Sequence', pretokenizers: [split('\\p{N}'), ...DEEPSEEK_PATTERNS.slice(1).map(split), byteLevel(false)] };
  }
}

/** Split Isolated: matches and the gaps between them, in order, empty pieces dropped. */
function splitIsolated(text: string, re: RegExp, emit: (piece: string) => void): void {
  re.lastIndex = 0;
  let prev = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const s = m[0];
    if (s.length === 0) {
      re.lastIndex++;
      continue;
    }
    if (m.index > prev) emit(text.slice(prev, m.index));
    emit(s);
    prev = m.index + s.length;
  }
  if (prev < text.length) emit(text.slice(prev));
}

/** Calls `emit` with each pre-token of `text` (plain text, not yet byte-level). */
export function forEachPretoken(style: PretokenizerStyle, text: string, emit: (piece: string) => void): void {
  switch (style) {
    case 'gpt2': {
      // The regex covers every character, so the gaps are always empty.
      const re = GPT2_JS;
      re.lastIndex = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) emit(m[0]);
      return;
    }
    case 'llama3':
      return splitIsolated(text, LLAMA3_JS, emit);
    case 'deepseek':
    case 'digits': {
      const [digits, cjk, words] = DEEPSEEK_JS as [RegExp, RegExp, RegExp];
      splitIsolated(text, style === 'digits' ? SINGLE_DIGIT_JS : digits, (a) => splitIsolated(a, cjk, (b) => splitIsolated(b, words, emit)));
      return;
    }
  }
}

/** The pre-tokens of `text` as an array. */
export function pretokenize(style: PretokenizerStyle, text: string): string[] {
  const out: string[] = [];
  forEachPretoken(style, text, (p) => out.push(p));
  return out;
}

/**
 * Splits text around special tokens (longest match first, like the library's added-token
 * splitter), calling `onText` for ordinary spans and `onSpecial` for each special token.
 */
export function splitOnSpecials(
  text: string,
  specials: readonly string[],
  onText: (s: string) => void,
  onSpecial?: (s: string) => void,
): void {
  if (specials.length === 0) {
    if (text.length) onText(text);
    return;
  }
  const re = specialsRegex(specials);
  re.lastIndex = 0;
  let prev = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    if (m.index > prev) onText(text.slice(prev, m.index));
    onSpecial?.(m[0]);
    prev = m.index + m[0].length;
  }
  if (prev < text.length) onText(text.slice(prev));
}

const specialsCache = new Map<string, RegExp>();
function specialsRegex(specials: readonly string[]): RegExp {
  const key = specials.join('\u0000');
  let re = specialsCache.get(key);
  if (!re) {
    const alts = [...specials].sort((a, b) => b.length - a.length).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    re = new RegExp(alts.join('|'), 'gu');
    specialsCache.set(key, re);
  }
  return re;
}
