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
