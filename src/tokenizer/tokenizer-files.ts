// Writing a trained BPE as Hugging Face files: tokenizer.json (what the `tokenizers`
// library, Rust or JS, loads) and tokenizer_config.json (what transformers reads for the
// bos/eos/pad tokens and the chat template).

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BpeModel } from './bpe-trainer.js';
import { hfPreTokenizer } from './pretokenize.js';

export interface TokenizerFileOptions {
  bosToken?: string;
  eosToken?: string;
  padToken?: string;
  /** Prepend bosToken when encoding with special tokens (a TemplateProcessing post-processor). */
  addBosToken?: boolean;
  /** A Jinja chat template, stored in tokenizer_config.json. */
  chatTemplate?: string;
  modelMaxLength?: number;
}

/** The tokenizer.json object for a trained model (HF format, model type BPE, byte-level). */
export function bpeTokenizerJson(model: BpeModel, opts: TokenizerFileOptions = {}): Record<string, unknown> {
  // A prototype-less object: tokens such as "constructor" or "__proto__" are ordinary keys.
  const vocab = Object.create(null) as Record<string, number>;
  model.vocab.forEach((t, id) => {
    if (!Object.hasOwn(vocab, t)) vocab[t] = id;
  });
  const addedTokens = model.specialTokens.map((content, id) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  let postProcessor: Record<string, unknown> | null = null;
  if (opts.addBosToken) {
    const bos = opts.bosToken;
    if (bos === undefined || !model.specialTokens.includes(bos)) throw new Error('addBosToken needs bosToken among the special tokens');
    const id = model.specialTokens.indexOf(bos);
    postProcessor = {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: bos, type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [bos]: { id: bos, ids: [id], tokens: [bos] } },
    };
  }
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: hfPreTokenizer(model.pretokenizer),
    post_processor: postProcessor,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: model.merges,
    },
  };
}

/** The tokenizer_config.json object. */
export function bpeTokenizerConfig(model: BpeModel, opts: TokenizerFileOptions = {}): Record<string, unknown> {
  for (const t of [opts.bosToken, opts.eosToken, opts.padToken])
    if (t !== undefined && !model.specialTokens.includes(t)) throw new Error(`${t} is not one of the special tokens`);
  const cfg: Record<string, unknown> = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    add_bos_token: opts.addBosToken ?? false,
    add_eos_token: false,
    bos_token: opts.bosToken ?? null,
    eos_token: opts.eosToken ?? null,
    pad_token: opts.padToken ?? opts.eosToken ?? null,
    unk_token: null,
    clean_up_tokenization_spaces: false,
    added_tokens_decoder: Object.fromEntries(
      model.specialTokens.map((content, id) => [
        String(id),
        { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true },
      ]),
    ),
  };
  if (opts.modelMaxLength !== undefined) cfg['model_max_length'] = opts.modelMaxLength;
  if (opts.chatTemplate !== undefined) cfg['chat_template'] = opts.chatTemplate;
  return cfg;
}

/** Writes tokenizer.json and tokenizer_config.json into `dir` (created if needed); returns their paths. */
export function saveBpeTokenizer(model: BpeModel, dir: string, opts: TokenizerFileOptions = {}): { tokenizerJson: string; tokenizerConfig: string } {
  fs.mkdirSync(dir, { recursive: true });
  const tokenizerJson = path.join(dir, 'tokenizer.json');
  const tokenizerConfig = path.join(dir, 'tokenizer_config.json');
  writeAtomic(tokenizerJson, JSON.stringify(bpeTokenizerJson(model, opts), null, 2) + '\n');
  writeAtomic(tokenizerConfig, JSON.stringify(bpeTokenizerConfig(model, opts), null, 2) + '\n');
  return { tokenizerJson, tokenizerConfig };
}

function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}
