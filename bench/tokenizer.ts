// Tokenizer timing: trains a byte-level BPE on a generated English + arithmetic corpus and
// encodes with the result. Usage: node dist/bench/tokenizer.js [MB=20] [vocab=8192] [style=deepseek]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { syntheticCorpus } from '../src/tokenizer/synthetic.js';
import { trainBpe } from '../src/tokenizer/bpe-trainer.js';
import { saveBpeTokenizer } from '../src/tokenizer/tokenizer-files.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import type { PretokenizerStyle } from '../src/tokenizer/pretokenize.js';

const mb = Number(process.argv[2] ?? 20);
const vocabSize = Number(process.argv[3] ?? 8192);
const style = (process.argv[4] ?? 'deepseek') as PretokenizerStyle;

const docs = [...syntheticCorpus(mb * 1e6, 7)];
const bytes = docs.reduce((s, d) => s + Buffer.byteLength(d), 0);
console.log(`corpus: ${docs.length} documents, ${(bytes / 1e6).toFixed(1)} MB; vocab ${vocabSize}; pre-tokenizer ${style}`);

const t0 = performance.now();
let lastLog = 0;
const model = trainBpe(docs, {
  vocabSize,
  pretokenizer: style,
  specialTokens: ['<|begin_of_sentence|>', '<|end_of_sentence|>', '<think>', '</think>', '<answer>', '</answer>'],
  onProgress: ({ phase, done, total }) => {
    const now = performance.now();
    if (now - lastLog > 2000) {
      lastLog = now;
      console.log(`  ${phase} ${done}/${total}  ${((now - t0) / 1000).toFixed(1)} s`);
    }
  },
});
const seconds = (performance.now() - t0) / 1000;
const s = model.stats;
console.log(
  `train: ${seconds.toFixed(1)} s = ${(bytes / 1e6 / seconds).toFixed(2)} MB/s  ` +
    `(count ${s.countSeconds.toFixed(1)} s: ${s.words} pre-tokens, ${s.distinctWords} distinct; merges ${s.mergeSeconds.toFixed(1)} s: ${model.merges.length})`,
);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'r1ts-bpe-'));
saveBpeTokenizer(model, dir, { bosToken: '<|begin_of_sentence|>', eosToken: '<|end_of_sentence|>' });
const tok = Tokenizer.fromFile(dir);
const sample = docs.slice(0, Math.max(1, Math.floor(docs.length / Math.max(1, mb)))); // about 1 MB
const sampleBytes = sample.reduce((a, d) => a + Buffer.byteLength(d), 0);
let ids = 0;
const t1 = performance.now();
for (const d of sample) ids += tok.encode(d, { addSpecialTokens: false }).length;
const encSeconds = (performance.now() - t1) / 1000;
console.log(
  `encode: ${(sampleBytes / 1e6).toFixed(2)} MB in ${encSeconds.toFixed(2)} s = ${(sampleBytes / 1e6 / encSeconds).toFixed(2)} MB/s, ` +
    `${(sampleBytes / ids).toFixed(2)} bytes/token`,
);
fs.rmSync(dir, { recursive: true, force: true });
