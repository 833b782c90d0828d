// Model benchmark: forward + backward of a small DeepSeek-V3 (MLA + MoE + MTP) in tokens/s,
// against the PyTorch implementation in bench/torch (itself checked against ../shared/golden
// by bench/torch/check_golden.py), same config, shapes and threads, in the same run.
//
//   npm run bench:model     (add --quick for a short run, --all-settings for both OpenBLAS settings)
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { backward, randint, Rng } from '../src/tensor/index.js';
import { DeepseekV3Config, loadConfig } from '../src/models/config.js';
import { DeepseekV3ForCausalLM } from '../src/models/deepseek-v3.js';
import { argValue, isEntryPoint, median, printTable, REPO, runPerSetting, runTorchPeer, threads, torchAvailable } from './common.js';

const CONFIG = path.join(REPO, 'bench', 'configs', 'deepseek-v3-small.json');
const BATCH = 8, SEQ = 256;

interface Measurement {
  setting: string;
  step_ms: number;
  tokens_per_s: number;
  pytorch_tokens_per_s: number | null;
  expert_load: number[];
}

function measure(quick: boolean, setting: string): Measurement {
  const cfg = loadConfig(CONFIG) as DeepseekV3Config;
  const model = new DeepseekV3ForCausalLM(cfg, { seed: 1 });
  const ids = randint([BATCH, SEQ], cfg.vocab_size, new Rng(2));
  const step = (): void => {
    model.zeroGrad();
    backward(model.trainingLoss(ids, { mtpWeight: 0.3 }).loss);
  };
  const warm = 2, steps = quick ? 3 : 10;
  for (let i = 0; i < warm; i++) step();
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    step();
    times.push(performance.now() - t0);
  }
  const ms = median(times);
  let torchTps: number | null = null;
  if (torchAvailable()) {
    const r = runTorchPeer('train_step.py', ['--config', CONFIG, '--batch', String(BATCH), '--seq', String(SEQ),
      '--threads', String(threads()), '--steps', String(steps), '--warmup', String(warm), '--mode', 'fwd-bwd']);
    torchTps = Number(r.tokens_per_s);
  }
  return {
    setting, step_ms: ms, tokens_per_s: (BATCH * SEQ) / (ms / 1000), pytorch_tokens_per_s: torchTps,
    expert_load: Array.from(model.moeLayers()[0].lastLoad),
  };
}

export async function runModelBench(opts: { quick: boolean; allSettings: boolean }): Promise<void> {
  const torch = torchAvailable();
  if (!torch) console.log('note: PyTorch (Debian python3-torch) not found: the peer comparison is skipped. Install it with: apt-get install -y python3-torch');
  const runs = runPerSetting<Measurement>(fileURLToPath(import.meta.url), opts.quick ? ['--quick'] : [], opts.allSettings, (m) => {
    printTable([
      ['forward+backward, DeepSeek-V3 small (MLA+MoE 16e top-4 +1 shared, MTP), 8×256', 'tokens/s', 'ms/step'],
      ['r1ts', m.tokens_per_s.toFixed(0), m.step_ms.toFixed(1)],
      ['PyTorch ' + (torch ?? '(absent)'), m.pytorch_tokens_per_s?.toFixed(0) ?? '-', m.pytorch_tokens_per_s ? ((BATCH * SEQ * 1000) / m.pytorch_tokens_per_s).toFixed(1) : '-'],
    ]);
    console.log(`tokens per expert, layer 1: ${m.expert_load.join(' ')}`);
  });
  const best = runs.map((r) => r.result).reduce((a, b) => (b.tokens_per_s > a.tokens_per_s ? b : a));
  console.log('');
  console.log(JSON.stringify({
    setting: best.setting,
    threads: threads(),
    tokens_per_s: Math.round(best.tokens_per_s),
    pytorch_tokens_per_s: best.pytorch_tokens_per_s === null ? null : Math.round(best.pytorch_tokens_per_s),
    ratio_vs_pytorch: best.pytorch_tokens_per_s ? +(best.tokens_per_s / best.pytorch_tokens_per_s).toFixed(3) : null,
  }));
}

if (isEntryPoint(import.meta.url)) {
  const args = process.argv.slice(2);
  if (args.includes('--child')) console.log(JSON.stringify(measure(args.includes('--quick'), argValue(args, '--setting') ?? '')));
  else runModelBench({ quick: args.includes('--quick'), allSettings: args.includes('--all-settings') }).catch((e) => { console.error(e); process.exitCode = 1; });
}
