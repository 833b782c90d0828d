// Checkpoints that survive crashes and resume exactly.
//
// A checkpoint is a folder in Hugging Face layout (config.json, model.safetensors, and the
// tokenizer files when given) plus what training needs to continue bit for bit:
// optimizer.safetensors (AdamW moments), trainer_state.json (step, RNG, data position, ...).
// It is written into a temporary folder and renamed into place, so a crash mid-write leaves
// the previous checkpoint intact; leftovers of interrupted writes are removed on the next save.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openSafetensors, TensorToWrite, writeSafetensors } from '../io/safetensors.js';
import type { CausalLM } from '../models/common.js';
import { loadModel, saveModel } from '../models/load.js';
import type { Backend } from '../backend/backend.js';
import type { AdamW, AdamWState } from './optim.js';

const PREFIX = 'step-';

export interface TrainerState {
  /** Optimizer steps completed. */
  step: number;
  /** Anything else the trainer needs to continue exactly (RNG state, data cursor, ...). */
  [key: string]: unknown;
}

export function checkpointName(step: number): string {
  return `${PREFIX}${String(step).padStart(7, '0')}`;
}

/** Writes a checkpoint under dir/step-NNNNNNN atomically; keeps the newest `keep` (0 = all). */
export function saveCheckpoint(dir: string, o: {
  model: CausalLM; optimizer?: AdamW; state: TrainerState; tokenizerFiles?: string[]; keep?: number;
  /** Further models saved in sub-folders of the checkpoint (e.g. GRPO's reference policy). */
  extraModels?: Record<string, CausalLM>;
}): string {
  fs.mkdirSync(dir, { recursive: true });
  removeLeftovers(dir);
  const final = path.join(dir, checkpointName(o.state.step));
  const tmp = `${final}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp);
  saveModel(o.model, tmp);
  for (const [name, m] of Object.entries(o.extraModels ?? {})) saveModel(m, path.join(tmp, name));
  for (const f of o.tokenizerFiles ?? []) fs.copyFileSync(f, path.join(tmp, path.basename(f)));
  if (o.optimizer) writeOptimizer(path.join(tmp, 'optimizer.safetensors'), o.optimizer.getState());
  writeJsonSync(path.join(tmp, 'trainer_state.json'), o.state);
  fsyncDir(tmp);
  fs.rmSync(final, { recursive: true, force: true }); // a re-save of the same step
  fs.renameSync(tmp, final);
  fsyncDir(dir);
  if (o.keep && o.keep > 0) {
    for (const old of listCheckpoints(dir).slice(0, -o.keep)) fs.rmSync(path.join(dir, old), { recursive: true, force: true });
  }
  return final;
}

/** Completed checkpoint folder names, oldest first. */
export function listCheckpoints(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((n) => /^step-\d+$/.test(n)).sort();
}

export function latestCheckpoint(dir: string): string | null {
  const all = listCheckpoints(dir);
  return all.length ? path.join(dir, all[all.length - 1]) : null;
}

export interface LoadedCheckpoint {
  model: CausalLM;
  state: TrainerState;
  optimizerState: AdamWState | null;
}

export function loadCheckpoint(ckpt: string, opts: { backend?: Backend } = {}): LoadedCheckpoint {
  const { state, optimizerState } = loadTrainerState(ckpt);
  return { model: loadModel(ckpt, { backend: opts.backend }), state, optimizerState };
}

/** A checkpoint's trainer state and optimizer moments, without its model. */
export function loadTrainerState(ckpt: string): { state: TrainerState; optimizerState: AdamWState | null } {
  const statePath = path.join(ckpt, 'trainer_state.json');
  if (!fs.existsSync(statePath)) throw new Error(`${ckpt}: not a training checkpoint (no trainer_state.json)`);
  let state: TrainerState;
  try {
    state = JSON.parse(fs.readFileSync(statePath, 'utf8')) as TrainerState;
  } catch (e) {
    throw new Error(`${statePath}: not valid JSON (${(e as Error).message})`);
  }
  if (!Number.isInteger(state.step)) throw new Error(`${statePath}: field 'step' must be an integer`);
  const optPath = path.join(ckpt, 'optimizer.safetensors');
  return { state, optimizerState: fs.existsSync(optPath) ? readOptimizer(optPath, state.step) : null };
}

function writeOptimizer(file: string, s: AdamWState): void {
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, { m, v }] of Object.entries(s.moments)) {
    tensors[`m.${name}`] = { dtype: 'F32', shape: [m.length], data: m };
    tensors[`v.${name}`] = { dtype: 'F32', shape: [v.length], data: v };
  }
  writeSafetensors(file, tensors, { format: 'pt', optimizer: 'adamw', step: String(s.step) });
}

function readOptimizer(file: string, fallbackStep: number): AdamWState {
  const r = openSafetensors(file);
  try {
    const moments: AdamWState['moments'] = {};
    for (const key of r.keys()) {
      if (!key.startsWith('m.')) continue;
      const name = key.slice(2);
      if (!r.has(`v.${name}`)) throw new Error(`${file}: has m.${name} but no v.${name}`);
      moments[name] = { m: r.readF32(key), v: r.readF32(`v.${name}`) };
    }
    const step = Number(r.metadata['step'] ?? fallbackStep);
    return { step, moments };
  } finally {
    r.close();
  }
}

function removeLeftovers(dir: string): void {
  for (const n of fs.readdirSync(dir)) {
    const m = /\.tmp-(\d+)$/.exec(n);
    if (m && !processAlive(Number(m[1]))) fs.rmSync(path.join(dir, n), { recursive: true, force: true });
  }
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return false; // our own leftover from an earlier failed save
  try { process.kill(pid, 0); return true; } catch { return false; }
}

/**
 * After a crash a per-step log (JSON lines with a `step` field) may run past the checkpoint
 * being resumed: keep the lines of steps ≤ step.
 */
export function truncateStepLog(file: string, step: number): void {
  if (!fs.existsSync(file)) return;
  const kept = fs.readFileSync(file, 'utf8').split('\n').filter((line) => {
    try { return line.trim() !== '' && (JSON.parse(line) as { step: number }).step <= step; } catch { return false; }
  });
  fs.writeFileSync(file, kept.map((l) => l + '\n').join(''));
}

/** JSON written to a temp file, fsynced, renamed. */
export function writeJsonSync(file: string, value: unknown): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, JSON.stringify(value, null, 2) + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try { fs.fsyncSync(fd); } catch { /* not supported on every filesystem */ } finally { fs.closeSync(fd); }
}
