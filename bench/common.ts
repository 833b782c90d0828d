// Shared benchmark helpers: timing, the PyTorch peer, environment variants.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = (() => {
  let d = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(d, 'package.json')) && path.dirname(d) !== d) d = path.dirname(d);
  return d;
})();

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Median wall time (ms) of fn over `reps` runs after `warmup` runs. */
export function timeMs(fn: () => void, reps: number, warmup = 1): number {
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}

export function threads(): number {
  return Number(process.env.R1TS_THREADS ?? os.availableParallelism());
}

/** Debian's python3-torch lives under the system interpreter, not whatever python3 is first on PATH. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

export function torchAvailable(): string | null {
  const r = spawnSync(SYSTEM_PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** Runs a PyTorch peer script; returns its last stdout line parsed as JSON. */
export function runTorchPeer(script: string, args: string[], env: NodeJS.ProcessEnv = process.env): Record<string, unknown> {
  const r = spawnSync(SYSTEM_PYTHON, [path.join(REPO, 'bench', 'torch', script), ...args], { encoding: 'utf8', env, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`PyTorch peer ${script} failed (exit ${r.status}):\n${r.stderr.slice(-2000)}`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

/** The environment variants the benchmarks compare under (see README: OpenBLAS core type). */
export function blasEnvironments(all: boolean): { name: string; env: NodeJS.ProcessEnv }[] {
  const asSet = { name: `as set (OPENBLAS_CORETYPE=${process.env.OPENBLAS_CORETYPE ?? 'unset'})`, env: { ...process.env } };
  if (!all || (process.env.OPENBLAS_CORETYPE === undefined && process.env.OPENBLAS_L2_SIZE === undefined)) return [asSet];
  const auto = { ...process.env };
  delete auto.OPENBLAS_CORETYPE;
  delete auto.OPENBLAS_L2_SIZE;
  return [asSet, { name: 'OpenBLAS auto-detected core (OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE unset)', env: auto }];
}

export function printTable(rows: (string | number)[][]): void {
  const cells = rows.map((r) => r.map(String));
  const widths = cells[0].map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  for (const r of cells) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
}

/**
 * Runs `script --child ...args --setting NAME` once per OpenBLAS setting (all: both), each in
 * its own process so the BLAS reads its environment afresh; returns each child's last JSON line.
 */
export function runPerSetting<T>(script: string, args: string[], all: boolean, show: (result: T) => void): { setting: string; result: T }[] {
  const out: { setting: string; result: T }[] = [];
  for (const { name, env } of blasEnvironments(all)) {
    console.log(`\n== ${name}, ${threads()} threads`);
    const r = spawnSync(process.execPath, [script, '--child', ...args, '--setting', name],
      { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(`benchmark child failed under "${name}" (exit ${r.status})`);
    const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as T;
    show(result);
    out.push({ setting: name, result });
  }
  return out;
}

/** True when this module is the process's entry point. */
export function isEntryPoint(metaUrl: string): boolean {
  return !!process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(metaUrl);
}

/** The value after a flag in argv, if present. */
export function argValue(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}
