#!/usr/bin/env node
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
