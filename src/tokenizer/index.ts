// The tokenizer layer: byte-level BPE training, HF tokenizer.json loading, chat templates.
export { BYTE_TO_CHAR, CHAR_TO_BYTE, toByteLevel, fromByteLevel } from './bytes.js';
export { pretokenize, forEachPretoken, hfPreTokenizer, PRETOKENIZER_STYLES, type PretokenizerStyle } from './pretokenize.js';
export { trainBpe, countWords, type BpeModel, type TrainBpeOptions } from './bpe-trainer.js';
export { bpeTokenizerJson, bpeTokenizerConfig, saveBpeTokenizer, type TokenizerFileOptions } from './tokenizer-files.js';
export { Tokenizer, type EncodeOptions, type DecodeOptions, type ApplyChatTemplateOptions } from './tokenizer.js';
export {
  r1ZeroPrompt,
  renderChatTemplate,
  R1_ZERO_INSTRUCTION,
  R1_ZERO_CHAT_TEMPLATE,
  CHATML_CHAT_TEMPLATE,
  type ChatMessage,
  type ChatTemplateOptions,
} from './chat.js';
