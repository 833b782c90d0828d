#!/usr/bin/env node
import type { PromptStyle } from '../data/template.js';
// The r1ts command.
import { Command } from 'commander';
import { conformanceCommand } from './commands/conformance.js';
import { paramsCommand } from './commands/params.js';

const program = new Command();
program
  .name('r1ts')
  .description('The DeepSeek-R1 system in TypeScript: DeepSeek-V3 models, the R1 recipe, on Node.js.')
  .version('0.1.0');

program
  .command('params')
  .argument('<config>', 'a Hugging Face config.json (or a folder holding one)')
  .option('--json', 'print the counts as JSON')
  .description('count parameters: total and activated per token, per component, MTP apart')
  .action(async (config: string, opts: { json?: boolean }) => { await paramsCommand(config, opts); });

program
  .command('conformance')
  .argument('<dir>', 'a folder of model folders with golden.safetensors (e.g. ../shared/golden)')
  .description('compare logits, loss, log-probs, gradients and greedy tokens with Hugging Face references')
  .action((dir: string) => { process.exitCode = conformanceCommand(dir) > 0 ? 1 : 0; });

for (const mode of ['pretrain', 'sft'] as const) {
  program
    .command(mode)
    .description(mode === 'pretrain'
      ? 'pretrain a model (next-token + MTP loss) on a corpus; the built-in corpus by default'
      : 'supervised fine-tuning on prompt/response pairs (loss on the response only)')
    .option('-c, --config <file>', 'training config, JSON or YAML (see src/train/config.ts for every field)')
    .option('--set <key=value...>', 'override config fields, e.g. --set steps=100 --set optim.lr=1e-3', [])
    .option('--run-dir <dir>', 'run folder (default runs/<mode>-<time>)')
    .option('--resume', 'continue the run in --run-dir from its latest checkpoint')
    .option('--quiet', 'no progress bar')
    .action(async (opts: { config?: string; set: string[]; runDir?: string; resume?: boolean; quiet?: boolean }) => {
      const { readConfigFile, applyOverrides, parseTrainConfig } = await import('../train/config.js');
      const { runSupervised } = await import('../train/run.js');
      const raw = opts.config ? readConfigFile(opts.config) : {};
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${opts.config}: the config must be a mapping of fields`);
      const sets = [...opts.set, ...(opts.runDir ? [`run_dir=${JSON.stringify(opts.runDir)}`] : [])];
      if (mode === 'sft' && !opts.config && !sets.some((s) => s.startsWith('data.source='))) sets.push('data.source="builtin:sft"');
      const config = parseTrainConfig(applyOverrides(raw as Record<string, unknown>, sets), opts.config ?? 'command line');
      const r = await runSupervised(mode, config, { resume: opts.resume, quiet: opts.quiet });
      const last = r.history.at(-1);
      console.log(`${mode} done: ${r.history.length} steps${last ? `, final loss ${last.loss.toFixed(4)}` : ''}; checkpoint ${r.checkpoint}`);
    });
}

program
  .command('zero')
  .description('R1-Zero in miniature: pretrain a small DeepSeek-V3, GRPO with accuracy + format rewards, evaluate before and after')
  .option('-c, --config <file>', 'JSON or YAML overrides of the recipe (see src/recipes/r1-zero.ts)')
  .option('--set <key=value...>', 'override fields, e.g. --set grpo.steps=100 --set pretrain.steps=500', [])
  .option('--run-dir <dir>', 'run folder (default runs/zero-<time>)')
  .option('--quiet', 'no progress bars')
  .action(async (opts: { config?: string; set: string[]; runDir?: string; quiet?: boolean }) => {
    const { readConfigFile, applyOverrides } = await import('../train/config.js');
    const { runZero, ZeroConfigSchema } = await import('../recipes/r1-zero.js');
    const raw = (opts.config ? readConfigFile(opts.config) : {}) as Record<string, unknown>;
    const merged = applyOverrides(raw, [...opts.set, ...(opts.runDir ? [`run_dir=${JSON.stringify(opts.runDir)}`] : [])]);
    const parsed = ZeroConfigSchema.safeParse(merged);
    if (!parsed.success) throw new Error(`invalid zero config:\n${parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n')}`);
    await runZero(parsed.data, { quiet: opts.quiet, log: (s) => console.log(s) });
  });

program
  .command('grpo')
  .description('GRPO on a checkpoint (DeepSeek-V3, Qwen2 or Llama, HF layout with tokenizer.json) with rule-based rewards')
  .option('--model <dir>', 'checkpoint folder (required unless --resume)')
  .option('--data <source>', '(required unless --resume) builtin:<suite>:train (arithmetic, chain, countdown, linear), or a .jsonl/.parquet file with question/prompt and answer')
  .option('--reward <list>', 'rewards: accuracy, format, language[:en|zh], overlong[:max:cache], code; name:weight', 'accuracy,format')
  .option('--steps <n>', 'GRPO steps', (v) => Number(v), 100)
  .option('--prompts-per-step <n>', 'distinct prompts per step', (v) => Number(v), 8)
  .option('--lr <x>', 'learning rate', (v) => Number(v), 1e-5)
  .option('--prompt-style <s>', 'r1-zero (the R1-Zero template), compact ("User: … Assistant:"), or raw (the data holds whole prompts)', 'r1-zero')
  .option('--seed <n>', 'seed', (v) => Number(v), 0)
  .option('--set <key=value...>', 'GRPO settings, TRL names: num_generations, temperature, top_p, max_completion_length, loss_type, epsilon, epsilon_high, beta, scale_rewards, num_iterations, ref_model_sync_steps, dynamic_sampling, mask_truncated_completions', [])
  .option('--run-dir <dir>', 'run folder')
  .option('--checkpoint-every <n>', 'save a checkpoint every N steps (and at the end)', (v) => Number(v), 50)
  .option('--resume', 'continue the run in --run-dir from its latest checkpoint, with its saved options (--model and --data are then not needed)')
  .option('--quiet', 'no progress bar')
  .action(async (o: { model: string; data: string; reward: string; steps: number; promptsPerStep: number; lr: number; promptStyle: PromptStyle; seed: number; set: string[]; runDir?: string; quiet?: boolean; checkpointEvery: number; resume?: boolean }) => {
    if (!o.resume && (!o.model || !o.data)) throw new Error('grpo: --model and --data are required (or --resume --run-dir DIR)');
    const { grpoCommand } = await import('./commands/grpo.js');
    await grpoCommand(o);
  });

program
  .command('replay')
  .description('recompute a recorded GRPO step offline (its log-probs and loss) from rollouts.jsonl')
  .requiredOption('--run <dir>', 'the GRPO run folder (rollouts.jsonl, grpo.json)')
  .requiredOption('--step <n>', 'the step to replay', (v) => Number(v))
  .requiredOption('--model <dir>', 'the policy before that step (the checkpoint of step n-1)')
  .option('--ref <dir>', 'the reference policy of that step (needed when beta > 0)')
  .action(async (o: { run: string; step: number; model: string; ref?: string }) => {
    const fs = await import('node:fs');
    const path = await import('node:path');
    const { loadModel } = await import('../models/load.js');
    const { readRollout, replayStep } = await import('../rl/replay.js');
    const { Tokenizer } = await import('../tokenizer/tokenizer.js');
    const config = JSON.parse(fs.readFileSync(path.join(o.run, 'grpo.json'), 'utf8'));
    const tok = fs.existsSync(path.join(o.model, 'tokenizer.json')) ? Tokenizer.fromFile(o.model) : null;
    const r = replayStep(loadModel(o.model), readRollout(o.run, o.step), config, {
      padId: tok?.padId ?? tok?.eosId ?? 0, ref: o.ref ? loadModel(o.ref) : undefined,
    });
    console.log(`step ${o.step}: loss ${r.loss.toPrecision(7)} (logged ${r.loggedLoss.toPrecision(7)}), max |Δ log π| ${r.maxLogprobDiff.toExponential(2)}`);
  });

program
  .command('eval')
  .description('pass@1 from K samples, cons@K majority voting and pass@k on a dataset')
  .requiredOption('--model <dir>', 'checkpoint folder (with tokenizer.json)')
  .requiredOption('--data <source>', 'builtin:<suite>:test (arithmetic, chain, countdown, linear) or a .jsonl/.parquet file')
  .option('--samples <k>', 'samples per problem', (v) => Number(v), 8)
  .option('--limit <n>', 'first n problems only', (v) => Number(v))
  .option('--max-new-tokens <n>', 'completion length limit', (v) => Number(v), 256)
  .option('--temperature <t>', 'sampling temperature', (v) => Number(v), 0.6)
  .option('--top-p <p>', 'nucleus sampling', (v) => Number(v), 0.95)
  .option('--out <file>', 'JSON report path')
  .option('--seed <n>', 'seed', (v) => Number(v), 0)
  .action(async (o: { model: string; data: string; samples: number; limit?: number; maxNewTokens: number; temperature: number; topP: number; out?: string; seed: number }) => {
    const { evalCommand } = await import('../eval/command.js');
    await evalCommand(o);
  });

program
  .command('export')
  .argument('<format>', 'gguf')
  .requiredOption('--model <dir>', 'checkpoint folder (config.json, model.safetensors, tokenizer.json)')
  .requiredOption('--out <file>', 'output file')
  .option('--dtype <t>', 'f32 or f16', 'f32')
  .description('export a checkpoint for llama.cpp / Ollama (GGUF)')
  .action(async (format: string, o: { model: string; out: string; dtype: string }) => {
    const { exportCommand } = await import('./commands/export.js');
    exportCommand(format, o);
  });

program
  .command('bench')
  .description('run the engine benchmark in its quick mode (see npm run bench:engine for the full one)')
  .option('--full', 'the full benchmark')
  .action(async (opts: { full?: boolean }) => {
    const { runEngineBench } = await import('../../bench/engine.js');
    await runEngineBench({ quick: !opts.full });
  });

program.parseAsync().catch((e: unknown) => {
  console.error(`r1ts: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
