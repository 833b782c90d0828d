// `r1ts export gguf --model DIR --out FILE [--dtype f32|f16]`: a Hugging Face checkpoint folder
// (Qwen2, Llama or DeepSeek-V3, with its tokenizer.json) as a GGUF file for llama.cpp.

import { exportGguf, type ExportGgufResult } from '../../io/gguf.js';

export type ExportFormat = 'gguf';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['gguf'];

export interface ExportCommandOptions {
  /** checkpoint folder: config.json, model.safetensors (or a sharded index), tokenizer.json */
  model: string;
  /** output file */
  out: string;
  /** tensor type of the matrices (default f32) */
  dtype?: 'f32' | 'f16' | string;
  /** folder holding tokenizer.json when it is not the model folder */
  tokenizer?: string;
  /** print nothing */
  quiet?: boolean;
}

function humanBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  return `${(n / 1024).toFixed(1)} KiB`;
}

export function exportCommand(format: ExportFormat | string, opts: ExportCommandOptions): ExportGgufResult {
  if (format !== 'gguf') throw new Error(`export: unknown format "${format}" (supported: ${EXPORT_FORMATS.join(', ')})`);
  if (!opts.model) throw new Error('export gguf: --model DIR is required');
  if (!opts.out) throw new Error('export gguf: --out FILE is required');
  const dtype = opts.dtype ?? 'f32';
  if (dtype !== 'f32' && dtype !== 'f16') throw new Error(`export gguf: --dtype must be f32 or f16, got "${dtype}"`);
  const t0 = performance.now();
  const r = exportGguf(opts.model, opts.out, { dtype, tokenizerDir: opts.tokenizer });
  if (!opts.quiet) {
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    console.log(`wrote ${r.file}: GGUF v3, architecture ${r.architecture}, ${r.tensors} tensors, ${dtype}, ${humanBytes(r.bytes)} in ${secs} s`);
    if (r.skipped.length) console.log(`left out ${r.skipped.length} tensors of the MTP module(s), which llama.cpp's deepseek2 does not load (${r.skipped[0]}, …)`);
  }
  return r;
}
