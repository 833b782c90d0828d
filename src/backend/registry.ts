// The process-wide default backend: the native CPU backend, or the TS reference backend when
// R1TS_BACKEND=ref (slow, but needs no native build: useful for debugging a kernel).
import type { Backend } from './backend.js';
import { CpuBackend } from './cpu/cpu.js';
import { RefBackend } from './ref/ref.js';

let current: Backend | null = null;

export function defaultBackend(): Backend {
  if (!current) {
    const choice = process.env.R1TS_BACKEND ?? 'cpu';
    if (choice === 'ref') current = new RefBackend();
    else if (choice === 'cpu') current = new CpuBackend();
    else throw new Error(`R1TS_BACKEND=${choice}: unknown backend (use cpu or ref)`);
  }
  return current;
}

export function setDefaultBackend(b: Backend): void { current = b; }

/** Runs fn with b as the default backend (tests run the same code on the reference backend). */
export function withBackend<T>(b: Backend, fn: () => T): T {
  const prev = current;
  current = b;
  try { return fn(); } finally { current = prev; }
}
