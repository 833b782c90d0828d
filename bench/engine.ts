// Engine benchmark: GEMM against the BLAS peak, the fused kernels' throughput, and a full
// training step of a reference small transformer against PyTorch on the same machine.
//
//   npm run bench:engine            full run, both OpenBLAS core settings
//   node dist/bench/engine.js --quick
//
// The last line printed is one JSON object (see README, Performance).
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Backend } from '../src/backend/backend.js';
import { defaultBackend } from '../src/backend/registry.js';
import {
  attention, backward, crossEntropy, linear, noGrad, randint, randn, rmsNorm, Rng, softmax, sum, swiglu,
} from '../src/tensor/index.js';
import { loadConfig, LlamaConfig } from '../src/models/config.js';
import { DenseForCausalLM } from '../src/models/llama.js';
import { nextTokenLoss } from '../src/models/common.js';
import { AdamW, clipScale } from '../src/train/optim.js';
import { argValue, isEntryPoint, median, printTable, REPO, runPerSetting, runTorchPeer, threads, timeMs, torchAvailable } from './common.js';

/** The model's GEMMs for batch 8 × 256 tokens (rows 2048): [rows, out, in]. */
const MODEL_GEMMS: [string, number, number, number][] = [
  ['attn q/k/v/o  2048×256×256', 2048, 256, 256],
  ['mlp gate/up  2048×1024×256', 2048, 1024, 256],
  ['mlp down     2048×256×1024', 2048, 256, 1024],
  ['lm_head     2048×8192×256', 2048, 8192, 256],
];

interface Measurement {
  setting: string;
  threads: number;
  sgemm_peak_gflops: number;
  gemms: { name: string; engine_gflops: number; blas_gflops: number }[];
  gemm_gflops_weighted: number;
  kernels: { name: string; ms: number; rate: string }[];
  train_step_ms: number;
  train_tokens_per_s: number;
  pytorch_train_tokens_per_s: number | null;
  memory_mb_after_warmup: number;
  memory_mb_at_end: number;
}

function rawGemmGflops(b: Backend, m: number, n: number, k: number, reps: number): number {
  const A = b.alloc('f32', m * k), B = b.alloc('f32', n * k), C = b.alloc('f32', m * n);
  b.fill(A, 0.5); b.fill(B, 0.25);
  const ms = timeMs(() => b.gemm({
    transA: false, transB: true, m, n, k, alpha: 1, beta: 0,
    a: A, aOffset: 0, lda: k, strideA: 0, b: B, bOffset: 0, ldb: k, strideB: 0, c: C, cOffset: 0, ldc: n, strideC: 0, batch: 1,
  }), reps, 2);
  return (2 * m * n * k) / (ms * 1e6);
}

function measure(quick: boolean, setting: string): Measurement {
  const backend = defaultBackend();
  const rng = new Rng(0);
  const reps = quick ? 3 : 10;

  // BLAS peak: large square sgemm.
  const big = quick ? 1024 : 2048;
  const peak = rawGemmGflops(backend, big, big, big, quick ? 3 : 5);

  // The model's GEMMs through the engine (linear(): allocation and checks included) vs raw BLAS.
  const gemms = MODEL_GEMMS.map(([name, m, n, k]) => {
    const x = randn([m, k], rng), w = randn([n, k], rng);
    const ms = timeMs(() => noGrad(() => linear(x, w)), reps, 2);
    return { name, engine_gflops: (2 * m * n * k) / (ms * 1e6), blas_gflops: rawGemmGflops(backend, m, n, k, reps) };
  });
  const flops = MODEL_GEMMS.map(([, m, n, k]) => 2 * m * n * k);
  const totalFlops = flops.reduce((a, b) => a + b, 0);
  const weighted = totalFlops / gemms.reduce((s, g, i) => s + flops[i] / g.engine_gflops, 0);

  // Fused kernels at the model's shapes.
  const kernels: Measurement['kernels'] = [];
  const gb = (bytes: number, ms: number): string => `${(bytes / (ms * 1e6)).toFixed(1)} GB/s`;
  const gf = (fl: number, ms: number): string => `${(fl / (ms * 1e6)).toFixed(1)} GFLOP/s`;
  {
    const x = randn([2048, 256], rng), w = randn([256], rng);
    const ms = timeMs(() => noGrad(() => rmsNorm(x, w, 1e-6)), reps, 2);
    kernels.push({ name: 'rmsNorm 2048×256', ms, rate: gb(2 * 4 * x.size, ms) });
  }
  {
    const a = randn([2048, 1024], rng), b2 = randn([2048, 1024], rng);
    const ms = timeMs(() => noGrad(() => swiglu(a, b2)), reps, 2);
    kernels.push({ name: 'swiglu 2048×1024', ms, rate: gb(3 * 4 * a.size, ms) });
  }
  {
    const x = randn([2048, 8192], rng);
    const ms = timeMs(() => noGrad(() => softmax(x)), reps, 2);
    kernels.push({ name: 'softmax 2048×8192', ms, rate: gb(2 * 4 * x.size, ms) });
  }
  {
    const logits = randn([2048, 8192], rng).requireGrad();
    const targets = randint([2048], 8192, rng);
    const ms = timeMs(() => { logits.grad = null; backward(crossEntropy(logits, targets)); }, reps, 2);
    kernels.push({ name: 'cross-entropy fwd+bwd 2048×8192', ms, rate: gb(3 * 4 * logits.size, ms) });
  }
  {
    const [B, T, H, D] = [8, 256, 8, 32];
    const q = randn([B, T, H, D], rng).requireGrad(), k = randn([B, T, H, D], rng).requireGrad(), v = randn([B, T, H, D], rng).requireGrad();
    const fwd = timeMs(() => noGrad(() => attention(q, k, v, { scale: 1 / Math.sqrt(D) })), reps, 2);
    const causalFlops = 2 * 2 * B * H * T * T * D / 2;
    kernels.push({ name: 'attention fwd B8 T256 H8 D32 causal', ms: fwd, rate: gf(causalFlops, fwd) });
    const both = timeMs(() => { q.grad = k.grad = v.grad = null; backward(sum(attention(q, k, v, { scale: 1 / Math.sqrt(D) }))); }, reps, 2);
    kernels.push({ name: 'attention fwd+bwd', ms: both, rate: gf(causalFlops * 3.5, both) });
  }

  // A full training step of the reference small transformer.
  const cfg = loadConfig(path.join(REPO, 'bench', 'configs', 'transformer-small.json')) as LlamaConfig;
  const model = new DenseForCausalLM(cfg, { seed: 1 });
  const opt = new AdamW(model.namedParameters(), { lr: 1e-4 });
  const batch = 8, seq = 256;
  const ids = randint([batch, seq], cfg.vocab_size, rng);
  const step = (): void => {
    opt.zeroGrad();
    const loss = nextTokenLoss(model.forward(ids).logits, ids);
    backward(loss);
    const { scale } = clipScale(model.parameters(), 1.0);
    opt.update({ gradScale: scale });
  };
  const warm = quick ? 2 : 3;
  for (let i = 0; i < warm; i++) step();
  const memAfterWarmup = memoryMb();
  const times: number[] = [];
  for (let i = 0; i < (quick ? 4 : 12); i++) {
    const t0 = performance.now();
    step();
    times.push(performance.now() - t0);
  }
  const stepMs = median(times);

  let torchTps: number | null = null;
  if (torchAvailable()) {
    const r = runTorchPeer('train_step.py', ['--config', path.join(REPO, 'bench', 'configs', 'transformer-small.json'),
      '--batch', String(batch), '--seq', String(seq), '--threads', String(threads()),
      '--steps', String(quick ? 4 : 12), '--warmup', String(warm), '--mode', 'train']);
    torchTps = Number(r.tokens_per_s);
  }
  return {
    setting, threads: threads(), sgemm_peak_gflops: peak, gemms, gemm_gflops_weighted: weighted, kernels,
    train_step_ms: stepMs, train_tokens_per_s: (batch * seq) / (stepMs / 1000), pytorch_train_tokens_per_s: torchTps,
    memory_mb_after_warmup: memAfterWarmup, memory_mb_at_end: memoryMb(),
  };
}

function memoryMb(): number {
  const m = process.memoryUsage();
  return Math.round(m.rss / 2 ** 20);
}

/** Runs the measurement in a child process per OpenBLAS setting, prints the comparison. */
export async function runEngineBench(opts: { quick: boolean }): Promise<void> {
  const self = fileURLToPath(import.meta.url);
  const torch = torchAvailable();
  if (!torch) {
    console.log('note: PyTorch (Debian python3-torch) not found: the peer comparison is skipped. Install it with: apt-get install -y python3-torch');
  }
  const results: Measurement[] = [];
  runPerSetting<Measurement>(fileURLToPath(import.meta.url), opts.quick ? ['--quick'] : [], !opts.quick, (m) => {
    results.push(m);
    printTable([
      ['GEMM (x·Wᵀ)', 'engine GFLOP/s', 'BLAS GFLOP/s', 'of peak'],
      ...m.gemms.map((g) => [g.name, g.engine_gflops.toFixed(1), g.blas_gflops.toFixed(1), `${((100 * g.engine_gflops) / m.sgemm_peak_gflops).toFixed(0)}%`]),
      ['sgemm peak (square)', '', m.sgemm_peak_gflops.toFixed(1), ''],
    ]);
    console.log('');
    printTable([['fused kernel', 'ms', 'rate'], ...m.kernels.map((k) => [k.name, k.ms.toFixed(2), k.rate])]);
    console.log('');
    printTable([
      ['training step (d256 L4 H8 ff1024 V8192, 8×256)', 'tokens/s', 'ms/step'],
      ['r1ts', m.train_tokens_per_s.toFixed(0), m.train_step_ms.toFixed(1)],
      ['PyTorch ' + (torch ?? '(absent)'), m.pytorch_train_tokens_per_s?.toFixed(0) ?? '-', m.pytorch_train_tokens_per_s ? ((8 * 256 * 1000) / m.pytorch_train_tokens_per_s).toFixed(1) : '-'],
    ]);
    if (m.pytorch_train_tokens_per_s) console.log(`ratio vs PyTorch: ${(m.train_tokens_per_s / m.pytorch_train_tokens_per_s).toFixed(2)}`);
    console.log(`resident memory: ${m.memory_mb_after_warmup} MB after warm-up, ${m.memory_mb_at_end} MB at the end`);
  });
  // Headline: the setting where r1ts trains fastest, compared with PyTorch under that same setting.
  const best = results.reduce((a, b) => (b.train_tokens_per_s > a.train_tokens_per_s ? b : a));
  const peak = Math.max(...results.map((r) => r.sgemm_peak_gflops));
  const summary = {
    setting: best.setting,
    threads: best.threads,
    train_tokens_per_s: Math.round(best.train_tokens_per_s),
    pytorch_train_tokens_per_s: best.pytorch_train_tokens_per_s === null ? null : Math.round(best.pytorch_train_tokens_per_s),
    ratio_vs_pytorch: best.pytorch_train_tokens_per_s ? +(best.train_tokens_per_s / best.pytorch_train_tokens_per_s).toFixed(3) : null,
    sgemm_peak_gflops: +peak.toFixed(1),
    gemm_fraction_of_peak: +(best.gemm_gflops_weighted / peak).toFixed(3),
    gemm_fraction_of_blas_at_shapes: +(best.gemms.reduce((s, g) => s + g.engine_gflops / g.blas_gflops, 0) / best.gemms.length).toFixed(3),
    settings: results.map((r) => ({ setting: r.setting, sgemm_peak_gflops: +r.sgemm_peak_gflops.toFixed(1), train_tokens_per_s: Math.round(r.train_tokens_per_s), pytorch_train_tokens_per_s: r.pytorch_train_tokens_per_s === null ? null : Math.round(r.pytorch_train_tokens_per_s) })),
  };
  console.log('');
  console.log(JSON.stringify(summary));
}

if (isEntryPoint(import.meta.url)) {
  const args = process.argv.slice(2);
  if (args.includes('--child')) {
    console.log(JSON.stringify(measure(args.includes('--quick'), argValue(args, '--setting') ?? '')));
  } else {
    runEngineBench({ quick: args.includes('--quick') }).catch((e) => { console.error(e); process.exitCode = 1; });
  }
}
