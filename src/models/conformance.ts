// Conformance with Hugging Face transformers: for a model folder holding golden.safetensors
// (see ../shared/golden/README.md), compare our logits, loss, token log-probabilities, every
// parameter's gradient and the greedy continuation against the reference's.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Backend } from '../backend/backend.js';
import { openSafetensors, SafetensorsReader } from '../io/safetensors.js';
import { backward, gatherLast, logSoftmax, narrow, noGrad, reshape, Tensor, tensor } from '../tensor/index.js';
import { generate } from '../generate/generate.js';
import { nextTokenLoss } from './common.js';
import { loadModel } from './load.js';

export const TOLERANCE = { logits: 1e-4, loss: 1e-4, logprobs: 1e-4, grads: 1e-3 };

export interface ConformanceResult {
  name: string;
  logits: number;
  loss: number;
  logprobs: number;
  /** The worst gradient's relative error and its parameter. */
  grads: { worst: number; name: string; count: number };
  greedy: boolean;
  passed: boolean;
  problems: string[];
}

/** ‖a − b‖ / ‖b‖. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let d = 0, n = 0;
  for (let i = 0; i < a.length; i++) { d += (a[i] - b[i]) ** 2; n += b[i] ** 2; }
  return Math.sqrt(d) / Math.max(Math.sqrt(n), 1e-30);
}

/** Folders under dir (or dir itself) that hold golden.safetensors. */
export function findGoldenFolders(dir: string): string[] {
  if (fs.existsSync(path.join(dir, 'golden.safetensors'))) return [dir];
  return fs.readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && fs.existsSync(path.join(dir, e.name, 'golden.safetensors')))
    .map((e) => path.join(dir, e.name))
    .sort();
}

function ids(golden: SafetensorsReader, name: string, backend: Backend): Tensor {
  const info = golden.info(name);
  return tensor(golden.readI32(name), info.shape, { backend, dtype: 'i32' });
}

/**
 * The reference gradient for one of our parameters. transformers 5 keeps routed experts fused
 * (experts.gate_up_proj (E, 2I, C) = [gate; up] rows per expert, experts.down_proj (E, C, I)),
 * while checkpoints and this model keep them per expert; slice the fused tensor accordingly.
 */
function referenceGrad(golden: SafetensorsReader, name: string, cache: Map<string, Float32Array>): Float32Array | undefined {
  if (golden.has(`grad.${name}`)) return golden.readF32(`grad.${name}`);
  const m = /^(.*\.experts)\.(\d+)\.(gate_proj|up_proj|down_proj)\.weight$/.exec(name);
  if (!m) return undefined;
  const [, prefix, eStr, proj] = m;
  const fusedName = `grad.${prefix}.${proj === 'down_proj' ? 'down_proj' : 'gate_up_proj'}`;
  if (!golden.has(fusedName)) return undefined;
  let fused = cache.get(fusedName);
  if (!fused) { fused = golden.readF32(fusedName); cache.set(fusedName, fused); }
  const [E, rows, cols] = golden.info(fusedName).shape;
  const e = Number(eStr);
  const block = fused.subarray(e * rows * cols, (e + 1) * rows * cols);
  if (proj === 'down_proj') return block;
  const half = (rows / 2) * cols;
  void E;
  return proj === 'gate_proj' ? block.subarray(0, half) : block.subarray(half);
}

export function checkFolder(dir: string, backend?: Backend): ConformanceResult {
  const name = path.basename(dir);
  const problems: string[] = [];
  const model = loadModel(dir, { backend });
  const b = model.parameters()[0].backend;
  const golden = openSafetensors(path.join(dir, 'golden.safetensors'));
  try {
    const input = ids(golden, 'input_ids', b);
    const { logits } = model.forward(input);
    const logitsErr = relativeError(logits.toArray(), golden.readF32('logits', logits.shape));

    const loss = nextTokenLoss(logits, input);
    const lossErr = relativeError([loss.item()], golden.readF32('loss'));

    const [B, T, V] = logits.shape;
    const logprobs = noGrad(() => {
      const lp = logSoftmax(reshape(narrow(logits.detach(), 1, 0, T - 1), [B * (T - 1), V]));
      return gatherLast(lp, reshape(narrow(input, 1, 1, T - 1), [B * (T - 1), 1]));
    });
    const logprobErr = relativeError(logprobs.toArray(), golden.readF32('token_logprobs'));

    backward(loss);
    const cache = new Map<string, Float32Array>();
    let worst = 0, worstName = '', count = 0;
    for (const [pname, p] of model.namedParameters()) {
      const ref = referenceGrad(golden, pname, cache);
      if (!ref) { problems.push(`no reference gradient for ${pname}`); continue; }
      const err = p.grad ? relativeError(p.grad.toArray(), ref) : relativeError(new Float32Array(ref.length), ref);
      count++;
      if (!(err <= worst)) { worst = err; worstName = pname; }
    }

    // Greedy continuation through the KV cache, as the reference made it.
    const prompt = golden.readI32('greedy_prompt');
    const [PB, P] = golden.info('greedy_prompt').shape;
    const expected = golden.readI32('greedy_output');
    const N = expected.length / PB - P;
    const rows = Array.from({ length: PB }, (_, r) => Array.from(prompt.subarray(r * P, (r + 1) * P)));
    const produced = generate(model, rows, { maxNewTokens: N }).flatMap((c, r) => [...rows[r], ...c.tokens]);
    const greedy = produced.length === expected.length && produced.every((v, i) => v === expected[i]);

    if (!(logitsErr <= TOLERANCE.logits)) problems.push(`logits differ (${logitsErr.toExponential(2)})`);
    if (!(lossErr <= TOLERANCE.loss)) problems.push(`loss differs (${lossErr.toExponential(2)})`);
    if (!(logprobErr <= TOLERANCE.logprobs)) problems.push(`token log-probs differ (${logprobErr.toExponential(2)})`);
    if (!(worst <= TOLERANCE.grads)) problems.push(`gradient of ${worstName} differs (${worst.toExponential(2)})`);
    if (!greedy) problems.push('greedy continuation differs');
    return {
      name, logits: logitsErr, loss: lossErr, logprobs: logprobErr,
      grads: { worst, name: worstName, count }, greedy, passed: problems.length === 0, problems,
    };
  } finally {
    golden.close();
  }
}
