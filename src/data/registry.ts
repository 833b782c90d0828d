// The built-in task suites by name; users can register their own.
import { arithmeticSuite } from './arithmetic.js';
import { chainSuite } from './chain.js';
import { countdownSuite } from './countdown.js';
import { linearSuite } from './linear.js';
import type { AnyTaskSuite, Task } from './tasks.js';

const suites = new Map<string, AnyTaskSuite>([
  [arithmeticSuite.name, arithmeticSuite],
  [countdownSuite.name, countdownSuite],
  [linearSuite.name, linearSuite],
  [chainSuite.name, chainSuite],
]);

/** Names of the built-in suites, in their default order. */
export const BUILTIN_SUITES = ['arithmetic', 'countdown', 'linear', 'chain'] as const;

export function registerSuite(suite: AnyTaskSuite): void { suites.set(suite.name, suite); }

export function getSuite(name: string): AnyTaskSuite {
  const s = suites.get(name);
  if (!s) throw new Error(`unknown task suite '${name}' (known: ${[...suites.keys()].join(', ')})`);
  return s;
}

export function listSuites(): string[] { return [...suites.keys()]; }

/** Verify a candidate answer for a task of any registered suite. */
export function verifyTask(task: Task, candidateAnswer: string): boolean {
  return getSuite(task.suite).verify(task, candidateAnswer);
}
