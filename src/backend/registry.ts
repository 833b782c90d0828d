// The process-wide default backend: the native CPU backend unless set otherwise.
import type { Backend } from './backend.js';
import { CpuBackend } from './cpu/cpu.js';

let current: Backend | null = null;

export function defaultBackend(): Backend {
  if (!current) current = new CpuBackend();
  return current;
}

export function setDefaultBackend(b: Backend): void { current = b; }

/** Runs fn with b as the default backend (tests run the same code on the reference backend). */
export function withBackend<T>(b: Backend, fn: () => T): T {
  const prev = current;
  current = b;
  try { return fn(); } finally { current = prev; }
}
