// r1ts conformance <dir>: every golden model folder under dir, compared with transformers.
import type { Backend } from '../../backend/backend.js';
import { checkFolder, ConformanceResult, findGoldenFolders, TOLERANCE } from '../../models/conformance.js';

const fmt = (x: number): string => (Number.isFinite(x) ? x.toExponential(1) : String(x));

/** Prints the table; returns the number of failed folders. */
export function conformanceCommand(dir: string, opts: { backend?: Backend; log?: (s: string) => void } = {}): number {
  const log = opts.log ?? console.log;
  const folders = findGoldenFolders(dir);
  if (folders.length === 0) throw new Error(`${dir}: no folder with golden.safetensors found`);
  log(`tolerances: logits ${TOLERANCE.logits}, loss ${TOLERANCE.loss}, log-probs ${TOLERANCE.logprobs}, gradients ${TOLERANCE.grads} (relative), greedy identical`);
  log(['model'.padEnd(28), 'logits', '  loss  ', 'logprobs', 'grads (worst of n)', 'greedy', 'result'].join(' | '));
  const results: ConformanceResult[] = [];
  for (const f of folders) {
    let r: ConformanceResult;
    try {
      r = checkFolder(f, opts.backend);
    } catch (e) {
      r = { name: f, logits: NaN, loss: NaN, logprobs: NaN, grads: { worst: NaN, name: '', count: 0 }, greedy: false, passed: false, problems: [(e as Error).message] };
    }
    results.push(r);
    log([r.name.padEnd(28), fmt(r.logits).padStart(6), fmt(r.loss).padStart(8), fmt(r.logprobs).padStart(8),
      `${fmt(r.grads.worst)} of ${r.grads.count}`.padEnd(18), (r.greedy ? 'same' : 'DIFF').padEnd(6), r.passed ? 'pass' : 'FAIL'].join(' | '));
    for (const p of r.problems) log(`    ${p}`);
  }
  const failed = results.filter((r) => !r.passed).length;
  log(`${results.length - failed} passed, ${failed} failed`);
  return failed;
}
