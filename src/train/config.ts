// The training configuration (`r1ts pretrain` / `r1ts sft`): a JSON or YAML file, validated,
// with every field documented and overridable from the command line (--set a.b=value).
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { BUILTIN_SUITES } from '../data/registry.js';

export const TrainConfigSchema = z.object({
  /** Run folder (config, checkpoints, metrics.jsonl, report); default runs/<mode>-<time>. */
  run_dir: z.string().optional(),
  /** Seeds model init, data order and everything random. */
  seed: z.number().int().default(0),
  model: z.object({
    /** A preset name (see r1ts presets), a config.json path, or an inline HF config object. */
    config: z.union([z.string(), z.record(z.unknown())]).default('deepseek-v3-mini'),
    /** Start from this checkpoint folder instead of a fresh init (SFT of a pretrained model). */
    from: z.string().optional(),
  }).strict().default({}),
  tokenizer: z.object({
    /** A tokenizer.json (or folder); when absent a byte-level BPE is trained on the data. */
    path: z.string().optional(),
    /** Vocabulary size of the trained BPE. */
    vocab_size: z.number().int().min(300).default(1024),
    /** Split rule of the trained BPE: DeepSeek-V3's ('deepseek'), or the same with single digits ('digits'). */
    pretokenizer: z.enum(['deepseek', 'digits', 'llama3', 'gpt2']).default('deepseek'),
  }).strict().default({}),
  data: z.object({
    /**
     * builtin:corpus (generated worked solutions, pretraining), builtin:sft (correct worked
     * solutions as prompt/response pairs), or a .jsonl / .json / .parquet / .txt file.
     */
    source: z.string().default('builtin:corpus'),
    /** Field names: pretraining reads `text`; SFT reads `prompt` and `response`. */
    fields: z.record(z.string()).default({}),
    /** Documents or examples to generate for builtin sources. */
    n_docs: z.number().int().positive().default(20000),
    /** Tokens per training sequence (pretraining) or the truncation length (SFT). */
    seq_len: z.number().int().min(8).default(256),
    /** Sequences per micro-batch. */
    batch_size: z.number().int().positive().default(16),
    /** What builtin:corpus and builtin:sft generate (see src/data/corpus.ts). */
    corpus: z.object({
      /** Task suites, in equal shares. */
      suites: z.array(z.string()).min(1).default([...BUILTIN_SUITES]),
      /** Relative weights of the document kinds (pretraining); default the corpus's own mix. */
      mix: z.record(z.number().min(0)).optional(),
      /** Share of documents with the short "User: … Assistant:" prompt instead of the R1-Zero template. */
      compact_share: z.number().min(0).max(1).default(0),
    }).strict().default({}),
  }).strict().default({}),
  /** Optimizer steps. */
  steps: z.number().int().positive().default(300),
  /** Micro-batches per optimizer step. */
  grad_accum: z.number().int().positive().default(1),
  optim: z.object({
    lr: z.number().positive().default(3e-3),
    /** Linear warmup steps, then cosine decay to lr · min_lr_ratio. */
    warmup: z.number().int().nonnegative().default(30),
    min_lr_ratio: z.number().min(0).max(1).default(0.1),
    weight_decay: z.number().min(0).default(0.1),
    beta1: z.number().min(0).max(1).default(0.9),
    beta2: z.number().min(0).max(1).default(0.95),
    eps: z.number().positive().default(1e-8),
    /** Global gradient-norm clip (0 = off). */
    clip: z.number().min(0).default(1.0),
  }).strict().default({}),
  /** λ of the Multi-Token-Prediction loss (DeepSeek-V3 models with MTP modules). */
  mtp_weight: z.number().min(0).default(0.3),
  moe: z.object({
    /** γ of the auxiliary-loss-free bias update (0 = off). */
    bias_update_speed: z.number().min(0).default(0.001),
    /** α of the sequence-wise balance loss (0 = off). */
    balance_alpha: z.number().min(0).default(0.0001),
  }).strict().default({}),
  /** Save a checkpoint every N steps (and always at the end); 0 = only at the end. */
  checkpoint_every: z.number().int().nonnegative().default(100),
  /** Checkpoints to keep (0 = all). */
  keep_checkpoints: z.number().int().nonnegative().default(2),
}).strict();

export type TrainConfig = z.infer<typeof TrainConfigSchema>;

/** Validates a parsed config; errors name the file and the field. */
export function parseTrainConfig(raw: unknown, source: string): TrainConfig {
  const r = TrainConfigSchema.safeParse(raw ?? {});
  if (!r.success) {
    const lines = r.error.issues.map((i: z.ZodIssue) => `  ${i.path.join('.') || '(top level)'}: ${i.message}`);
    throw new Error(`${source}: invalid training config\n${lines.join('\n')}`);
  }
  return r.data;
}

/** Reads a JSON or YAML file (by extension; YAML also accepts JSON). */
export function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: cannot read the config (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return path.extname(file) === '.json' ? JSON.parse(text) : YAML.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid ${path.extname(file) === '.json' ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
  }
}

/**
 * Applies `key.path=value` overrides (value parsed as JSON when it can be: numbers, booleans,
 * objects; otherwise a string).
 */
export function applyOverrides(raw: Record<string, unknown>, sets: readonly string[]): Record<string, unknown> {
  const out = structuredClone(raw);
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new Error(`--set ${s}: expected key=value (e.g. --set optim.lr=1e-3)`);
    const keys = s.slice(0, eq).split('.');
    const text = s.slice(eq + 1);
    let value: unknown;
    try { value = JSON.parse(text); } catch { value = text; }
    let node: Record<string, unknown> = out;
    for (const k of keys.slice(0, -1)) {
      if (typeof node[k] !== 'object' || node[k] === null) node[k] = {};
      node = node[k] as Record<string, unknown>;
    }
    node[keys[keys.length - 1]] = value;
  }
  return out;
}
