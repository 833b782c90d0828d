// r1ts grpo: GRPO on any supported checkpoint (DeepSeek-V3, Qwen2 or Llama architecture in
// Hugging Face layout, with its tokenizer.json) against rule-based rewards.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { loadDataset } from '../../data/dataset.js';
import { formatPrompt, type PromptStyle } from '../../data/template.js';
import type { Task } from '../../data/tasks.js';
import { loadModel } from '../../models/load.js';
import { Tokenizer } from '../../tokenizer/tokenizer.js';
import { defaultGrpoConfig, GrpoConfig } from '../../rl/grpo.js';
import {
  accuracyReward, codeReward, formatReward, languageConsistencyReward, overlongPenalty, RewardSpec,
} from '../../rl/rewards.js';
import { PromptRecord, resumeGrpo, trainGrpo } from '../../rl/trainer.js';
import { latestCheckpoint, writeJsonSync } from '../../train/checkpoint.js';

const GrpoSchema = z.object({
  num_generations: z.number().int().min(2), temperature: z.number().positive(), top_p: z.number().positive().max(1),
  max_completion_length: z.number().int().positive(), loss_type: z.enum(['grpo', 'bnpo', 'dapo', 'dr_grpo']),
  epsilon: z.number().min(0), epsilon_high: z.number().min(0), beta: z.number().min(0),
  scale_rewards: z.enum(['group', 'none']), num_iterations: z.number().int().positive(),
  ref_model_sync_steps: z.number().int().min(0), dynamic_sampling: z.boolean(), mask_truncated_completions: z.boolean(),
}).strict();

export interface GrpoCommandOptions {
  model: string;
  data: string;
  reward: string;
  steps: number;
  promptsPerStep: number;
  lr: number;
  runDir?: string;
  promptStyle: PromptStyle;
  seed: number;
  /** GRPO settings as key=value (TRL names), e.g. loss_type=dapo epsilon_high=0.28. */
  set: string[];
  quiet?: boolean;
  /** Save a checkpoint every N steps (and at the end); default 50. */
  checkpointEvery?: number;
  /** Continue the run in runDir from its latest checkpoint, with the run's saved options. */
  resume?: boolean;
}

/** Rewards by name: "accuracy,format:0.5,language:en,overlong:256:64,code". */
export function parseRewards(spec: string, maxLen: number): RewardSpec[] {
  return spec.split(',').filter(Boolean).map((item) => {
    const [name, ...args] = item.split(':');
    const num = (s: string | undefined, d: number): number => (s === undefined ? d : Number(s));
    switch (name) {
      case 'accuracy': return { name, fn: accuracyReward, weight: num(args[0], 1) };
      case 'format': return { name, fn: formatReward, weight: num(args[0], 1) };
      case 'language': return { name, fn: languageConsistencyReward((args[0] ?? 'en') as 'en' | 'zh'), weight: num(args[1], 1) };
      case 'overlong': return { name, fn: overlongPenalty(num(args[0], maxLen), num(args[1], Math.floor(maxLen / 4))), weight: 1 };
      case 'code': return { name, fn: codeReward, weight: num(args[0], 1) };
      default: throw new Error(`--reward: unknown reward '${name}' (known: accuracy, format, language[:en|zh], overlong[:max:cache], code)`);
    }
  });
}

function grpoConfig(sets: string[]): GrpoConfig {
  const c: Record<string, unknown> = { ...defaultGrpoConfig };
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new Error(`--set ${s}: expected key=value, e.g. --set loss_type=dapo`);
    const key = s.slice(0, eq), text = s.slice(eq + 1);
    let value: unknown;
    try { value = JSON.parse(text); } catch { value = text; }
    c[key] = value;
  }
  if (!sets.some((s) => s.startsWith('epsilon_high='))) c['epsilon_high'] = c['epsilon'];
  const r = GrpoSchema.safeParse(c);
  if (!r.success) throw new Error(`invalid GRPO settings:\n${r.error.issues.map((i: z.ZodIssue) => `  ${i.path.join('.') || '(top level)'}: ${i.message}`).join('\n')}`);
  return r.data;
}

export async function grpoCommand(given: GrpoCommandOptions): Promise<void> {
  let o = given;
  let checkpoint: string | null = null;
  if (given.resume) {
    if (!given.runDir) throw new Error('--resume needs --run-dir: the folder of the run to continue');
    const saved = path.join(given.runDir, 'config.json');
    if (!fs.existsSync(saved)) throw new Error(`${given.runDir}: not a GRPO run folder (no config.json)`);
    checkpoint = latestCheckpoint(path.join(given.runDir, 'checkpoints'));
    if (!checkpoint) throw new Error(`${given.runDir}: no checkpoint to resume from (checkpoints/step-N)`);
    // The run continues with the options it was started with; the command line only picks it.
    o = { ...(JSON.parse(fs.readFileSync(saved, 'utf8')) as GrpoCommandOptions), runDir: given.runDir, quiet: given.quiet, resume: true };
    console.error(`resuming ${given.runDir} from ${path.basename(checkpoint)} with the run's saved options`);
  }
  if (!['r1-zero', 'compact', 'raw'].includes(o.promptStyle)) throw new Error(`--prompt-style: expected r1-zero, compact or raw, got '${o.promptStyle}'`);
  const grpo = grpoConfig(o.set);
  const rewards = parseRewards(o.reward, grpo.max_completion_length);
  const tokFile = path.join(o.model, 'tokenizer.json');
  if (!fs.existsSync(tokFile)) throw new Error(`${o.model}: no tokenizer.json beside the model`);
  const tokenizer = Tokenizer.fromFile(o.model);
  const model = checkpoint ? resumeGrpo(checkpoint).model : loadModel(o.model);
  const records = await loadDataset(o.data, {});
  const prompts: PromptRecord[] = records.map((r, i) => {
    const question = r['question'] ?? r['prompt'];
    if (typeof question !== 'string') throw new Error(`${o.data}: record ${i + 1} has no 'question' or 'prompt' text`);
    return { prompt: formatPrompt(question, o.promptStyle), answer: r['answer'] === undefined ? undefined : String(r['answer']), task: r['task'] as Task | undefined };
  });
  const runDir = path.resolve(o.runDir ?? path.join('runs', `grpo-${new Date().toISOString().replace(/[:.]/g, '-')}`));
  fs.mkdirSync(path.join(runDir, 'tokenizer'), { recursive: true });
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) if (fs.existsSync(path.join(o.model, f))) fs.copyFileSync(path.join(o.model, f), path.join(runDir, 'tokenizer', f));
  if (!checkpoint) writeJsonSync(path.join(runDir, 'config.json'), { ...o, grpo, rewards: rewards.map((r) => ({ name: r.name, weight: r.weight })) });
  const history = await trainGrpo({
    model, tokenizer, prompts, rewards, grpo, steps: o.steps, promptsPerStep: o.promptsPerStep, lr: o.lr,
    warmup: Math.min(5, o.steps), clip: 1, weightDecay: 0, seed: o.seed, biasUpdateSpeed: 0.001,
    runDir, checkpointEvery: o.checkpointEvery ?? 50, samplesPerStep: 4, quiet: o.quiet, resumeFrom: checkpoint ?? undefined,
  });
  const last = history.at(-1);
  console.log(`grpo done: ${history.length} steps, last reward ${last?.reward.toFixed(3)}; checkpoints in ${path.join(runDir, 'checkpoints')}`);
}
