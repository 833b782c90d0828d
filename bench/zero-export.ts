// Exports what bench/torch/zero_sim.py needs to replay `r1ts zero` on the PyTorch peer: per
// named variant, the pretraining corpus (generated as the recipe does, byte-level BPE trained
// on it, token ids and document lengths), the held-out problems (64 per suite) and training
// prompts (2,000 per suite) under the R1-Zero template, and the mini V3 config.
//
//   tsc -p . && node dist/bench/zero-export.js '{"chain":{"suites":["chain"]}}' .zero-sim
//
// A variant: {suites, mix?, compactShare? (default 0.8, as the recipe), suiteOpts? (problems of
// the corpus, the held-out and the training prompts alike), nDocs? (40000)}.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateCorpusDocs, type CorpusMix } from '../src/data/corpus.js';
import { loadDataset } from '../src/data/dataset.js';
import { r1ZeroPrompt } from '../src/data/template.js';
import { trainBpe } from '../src/tokenizer/bpe-trainer.js';
import { saveBpeTokenizer } from '../src/tokenizer/tokenizer-files.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { presetConfig } from '../src/models/presets.js';
import { SPECIAL_TOKENS } from '../src/train/run.js';

interface Variant {
  suites: string[];
  mix?: Partial<CorpusMix>;
  compactShare?: number;
  suiteOpts?: Record<string, Record<string, unknown>>;
  nDocs?: number;
}

async function prompts(tok: Tokenizer, v: Variant, split: 'train' | 'test', perSuite: number) {
  const out: { suite: string; question: string; answer: string; prompt: number[] }[] = [];
  for (const suite of v.suites) {
    const records = await loadDataset(`builtin:${suite}:${split}`, { seed: 0, suiteOpts: v.suiteOpts ?? {}, test: Math.min(perSuite, 64) });
    for (const r of records.slice(0, perSuite)) {
      out.push({ suite, question: String(r.prompt), answer: String(r.answer), prompt: tok.encode(r1ZeroPrompt(String(r.prompt))) });
    }
  }
  return out;
}

async function main(): Promise<void> {
  const [spec, root = '.zero-sim'] = process.argv.slice(2);
  if (!spec) throw new Error("usage: node dist/bench/zero-export.js '{\"NAME\": {\"suites\": [\"chain\"]}}' [OUT_DIR]");
  const variants = JSON.parse(spec) as Record<string, Variant>;
  for (const [name, v] of Object.entries(variants)) {
    const docs = generateCorpusDocs(0, { nDocs: v.nDocs ?? 40000, suites: v.suites, mix: v.mix, compactShare: v.compactShare ?? 0.8, suiteOpts: v.suiteOpts });
    const dir = path.join(root, name);
    fs.mkdirSync(dir, { recursive: true });
    const specials = [SPECIAL_TOKENS.bos, SPECIAL_TOKENS.eos, SPECIAL_TOKENS.pad];
    const bpe = trainBpe(docs.map((d) => d.text), { vocabSize: 1024, pretokenizer: 'digits', specialTokens: specials });
    saveBpeTokenizer(bpe, dir, { bosToken: SPECIAL_TOKENS.bos, eosToken: SPECIAL_TOKENS.eos, padToken: SPECIAL_TOKENS.pad });
    const tok = await Tokenizer.fromFile(dir);
    const ids = docs.map((d) => tok.encode(d.text));
    fs.writeFileSync(path.join(dir, 'lens.bin'), Int32Array.from(ids.map((x) => x.length)));
    fs.writeFileSync(path.join(dir, 'ids.bin'), Uint16Array.from(ids.flat()));
    fs.writeFileSync(path.join(dir, 'eval.json'), JSON.stringify({
      eos: tok.eosId, vocab: tok.vocabSize, items: await prompts(tok, v, 'test', 64), train: await prompts(tok, v, 'train', 2000),
    }));
    const tokens = ids.reduce((s, x) => s + x.length, 0);
    console.log(`${name}: ${docs.length} documents, ${tokens} tokens, ${(100 * docs.filter((d) => d.correct).length / docs.length).toFixed(0)}% correct → ${dir}`);
  }
  fs.mkdirSync(root, { recursive: true });
  fs.writeFileSync(path.join(root, 'model.json'), JSON.stringify(presetConfig('deepseek-v3-mini', 0)));
}

main().catch((e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
