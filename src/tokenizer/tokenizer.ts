// One encoder for every tokenizer: a Hugging Face tokenizer.json (downloaded, shipped, or
// trained here by trainBpe and written by saveBpeTokenizer) loaded through
// @huggingface/tokenizers (pure JS, the tokenizers of transformers.js), wrapped in a small
// class with the bos/eos/pad ids and the chat template of tokenizer_config.json.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import type { BpeModel } from './bpe-trainer.js';
import { renderChatTemplate, type ChatMessage, type ChatTemplateOptions } from './chat.js';
import { bpeTokenizerConfig, bpeTokenizerJson, type TokenizerFileOptions } from './tokenizer-files.js';

export interface EncodeOptions {
  /** Add the tokens the tokenizer adds around a sequence, e.g. BOS (default true, as in transformers). */
  addSpecialTokens?: boolean;
}
export interface DecodeOptions {
  /** Leave out special (added) tokens (default false). */
  skipSpecialTokens?: boolean;
}
export interface ApplyChatTemplateOptions extends ChatTemplateOptions {
  /** A template to use instead of the tokenizer's own. */
  chatTemplate?: string;
}

type Json = Record<string, unknown>;

/** A token given in tokenizer_config.json as a string or as {content: …}. */
function tokenString(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json)['content'] === 'string') return (v as Json)['content'] as string;
  return null;
}

function readJson(file: string): Json {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Json;
}

export class Tokenizer {
  /** The library's tokenizer (for anything this class does not wrap). */
  readonly hf: HfTokenizer;
  /** tokenizer_config.json as read (possibly empty). */
  readonly config: Json;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly padToken: string | null;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number | null;
  /** The default chat template (tokenizer_config.json's chat_template or chat_template.jinja), if any. */
  readonly chatTemplate: string | null;
  /** Number of ids (the largest id + 1, added tokens included). */
  readonly vocabSize: number;
  /** The ids of the special added tokens. */
  readonly specialIds: ReadonlySet<number>;
  private readonly idToTok: (string | undefined)[];
  private readonly prependBos: boolean;
  private readonly appendEos: boolean;
  private readonly cleanUpSpaces: boolean;

  constructor(tokenizerJson: Json, config: Json = {}) {
    this.hf = new HfTokenizer(tokenizerJson, config);
    this.config = config;
    const vocab = this.hf.get_vocab(true);
    let size = 0;
    for (const id of vocab.values()) size = Math.max(size, id + 1);
    this.vocabSize = size;
    this.idToTok = new Array(size);
    for (const [t, id] of vocab) this.idToTok[id] = t;
    const special = new Set<number>();
    for (const [id, tok] of this.hf.get_added_tokens_decoder()) if (tok.special) special.add(id);
    this.specialIds = special;

    this.bosToken = tokenString(config['bos_token']);
    this.eosToken = tokenString(config['eos_token']);
    this.padToken = tokenString(config['pad_token']);
    const idOf = (t: string | null) => (t === null ? null : (this.hf.token_to_id(t) ?? null));
    this.bosId = idOf(this.bosToken);
    this.eosId = idOf(this.eosToken);
    this.padId = idOf(this.padToken);

    const ct = config['chat_template'];
    if (typeof ct === 'string') this.chatTemplate = ct;
    else if (Array.isArray(ct)) {
      // Named templates: [{name, template}, …]; 'default' is the one used without a name.
      const named = ct as { name: string; template: string }[];
      this.chatTemplate = (named.find((t) => t.name === 'default') ?? named[0])?.template ?? null;
    } else this.chatTemplate = null;

    // Llama-style configs ask for BOS/EOS with add_bos_token/add_eos_token while the
    // tokenizer.json post-processor adds nothing (transformers rebuilds the post-processor
    // from those flags; the JS library does not): add them here in that case.
    const postAdds = this.hf.encode('', { add_special_tokens: true }).ids.length > 0;
    this.prependBos = !postAdds && config['add_bos_token'] === true && this.bosId !== null;
    this.appendEos = !postAdds && config['add_eos_token'] === true && this.eosId !== null;
    this.cleanUpSpaces = config['clean_up_tokenization_spaces'] === true;
  }

  /**
   * Loads tokenizer.json and, beside it, tokenizer_config.json, special_tokens_map.json and
   * chat_template.jinja when present. `pathOrDir`: the folder or the tokenizer.json file.
   */
  static fromFile(pathOrDir: string): Tokenizer {
    const isDir = fs.statSync(pathOrDir).isDirectory();
    const dir = isDir ? pathOrDir : path.dirname(pathOrDir);
    const file = isDir ? path.join(dir, 'tokenizer.json') : pathOrDir;
    if (!fs.existsSync(file)) throw new Error(`no tokenizer.json at ${file}`);
    const at = (name: string) => path.join(dir, name);
    const config: Json = fs.existsSync(at('tokenizer_config.json')) ? readJson(at('tokenizer_config.json')) : {};
    if (fs.existsSync(at('special_tokens_map.json'))) {
      const map = readJson(at('special_tokens_map.json'));
      for (const k of ['bos_token', 'eos_token', 'pad_token', 'unk_token'])
        if (config[k] === undefined && map[k] !== undefined) config[k] = map[k];
    }
    if (config['chat_template'] === undefined && fs.existsSync(at('chat_template.jinja')))
      config['chat_template'] = fs.readFileSync(at('chat_template.jinja'), 'utf8');
    return new Tokenizer(readJson(file), config);
  }

  /** A trained BPE through the same library path (as if written with saveBpeTokenizer and loaded). */
  static fromBpe(model: BpeModel, opts: TokenizerFileOptions = {}): Tokenizer {
    // Round-trip through JSON text so the library sees exactly what a file would hold.
    const json = JSON.parse(JSON.stringify(bpeTokenizerJson(model, opts))) as Json;
    return new Tokenizer(json, bpeTokenizerConfig(model, opts));
  }

  /** Text → ids. */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const add = opts.addSpecialTokens ?? true;
    const ids = this.hf.encode(text, { add_special_tokens: add }).ids;
    if (add && this.prependBos) ids.unshift(this.bosId!);
    if (add && this.appendEos) ids.push(this.eosId!);
    return ids;
  }

  /** Text → token strings (no special tokens added). */
  tokenize(text: string): string[] {
    return this.hf.tokenize(text, { add_special_tokens: false });
  }

  /** Ids → text. Byte-level tokenizers round-trip: decode(encode(s, {addSpecialTokens: false})) === s. */
  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    if (ids.length === 0) return '';
    for (const id of ids)
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.idToTok[id] === undefined)
        throw new Error(`decode: id ${id} is not in the vocabulary (size ${this.vocabSize})`);
    const skip = opts.skipSpecialTokens ?? false;
    const kept = skip ? ids.filter((id) => !this.specialIds.has(id)) : ids;
    if (kept.length === 0) return '';
    return this.hf.decode([...kept], { skip_special_tokens: skip, clean_up_tokenization_spaces: this.cleanUpSpaces });
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.idToTok[id];
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /** The special-token strings a template can use (bos_token, eos_token, …). */
  get specialTokensMap(): Record<string, string | null> {
    return { bos_token: this.bosToken, eos_token: this.eosToken, pad_token: this.padToken, unk_token: tokenString(this.config['unk_token']) };
  }

  /** Renders the chat template (the tokenizer's, or opts.chatTemplate) to text, as transformers does with tokenize=False. */
  applyChatTemplate(messages: readonly ChatMessage[], opts: ApplyChatTemplateOptions = {}): string {
    const template = opts.chatTemplate ?? this.chatTemplate;
    if (template === null) throw new Error('this tokenizer has no chat_template; pass opts.chatTemplate');
    return renderChatTemplate(template, messages, { ...opts, specialTokens: this.specialTokensMap });
  }

  /** The chat rendered and encoded; the template writes its own special tokens, so none are added. */
  encodeChat(messages: readonly ChatMessage[], opts: ApplyChatTemplateOptions = {}): number[] {
    return this.encode(this.applyChatTemplate(messages, opts), { addSpecialTokens: false });
  }
}
