// Linear equations in one variable: a·x + b = c with an integer solution.
//
// Knobs: maxCoef (a in 1..maxCoef, default 5), negativeCoef (a may be negative; default false),
// maxX (x in -maxX..maxX, default 9), maxConst (b in -maxConst..maxConst, default 9).
// Question "Solve 3x + 4 = 19 for x"; answer "5". verify accepts "5", "x = 5", "5.0", "10/2".
import type { Rng } from '../tensor/random.js';
import {
  cleanAnswer, integerAnswer, metaNumber, pick, randInt, sampleInPartition,
  type GenerateOpts, type Task, type TaskSuite, type WorkedSolutions,
} from './tasks.js';

export interface LinearOpts extends GenerateOpts {
  maxCoef?: number;
  negativeCoef?: boolean;
  maxX?: number;
  maxConst?: number;
}

const NAME = 'linear';

function lhs(a: number, b: number): string {
  const ax = a === 1 ? 'x' : a === -1 ? '-x' : `${a}x`;
  return b === 0 ? ax : b > 0 ? `${ax} + ${b}` : `${ax} - ${-b}`;
}

export function linearTask(a: number, b: number, c: number): Task {
  if (a === 0 || (c - b) % a !== 0) throw new Error(`linear: ${a}x + ${b} = ${c} has no integer solution`);
  const t: Task = {
    id: '', suite: NAME, question: `Solve ${lhs(a, b)} = ${c} for x`,
    answer: String((c - b) / a), meta: { a, b, c },
  };
  t.id = `${NAME}:${linearSuite.key(t)}`;
  return t;
}

function sample(rng: Rng, o: LinearOpts): Task {
  const maxCoef = o.maxCoef ?? 5, maxX = o.maxX ?? 9, maxConst = o.maxConst ?? 9;
  let a = randInt(rng, 1, maxCoef);
  if (o.negativeCoef && rng.uniform() < 0.5) a = -a;
  const x = randInt(rng, -maxX, maxX);
  let b = randInt(rng, -maxConst, maxConst);
  if (a === 1 && b === 0) b = randInt(rng, 1, Math.max(1, maxConst)); // "x = 7" is no problem
  return linearTask(a, b, a * x + b);
}

function parts(task: Task): { a: number; b: number; c: number; x: number } {
  const a = metaNumber(task, 'a'), b = metaNumber(task, 'b'), c = metaNumber(task, 'c');
  return { a, b, c, x: (c - b) / a };
}

/** "3 * 5 + 4" with the signs written naturally. */
function substitute(a: number, b: number, x: number): { text: string; value: number } {
  const xs = x < 0 ? `(${x})` : `${x}`;
  const ax = a === 1 ? xs : `${a} * ${xs}`;
  const text = b === 0 ? ax : b > 0 ? `${ax} + ${b}` : `${ax} - ${-b}`;
  return { text, value: a * x + b };
}

function steps(task: Task, rng: Rng, slip: boolean): { text: string; answer: string } {
  const { a, b, c, x } = parts(task);
  // slips: 'sign' moves b to the other side with the wrong sign; 'final' gets the last
  // computation (the division, or the subtraction when a = 1) off by one
  const kinds = ['final'];
  if (b !== 0 && (c + b) % a === 0 && (c + b) / a !== x) kinds.push('sign');
  const kind = slip ? pick(rng, kinds) : 'none';
  const off = pick(rng, [-1, 1]);
  let rhs = kind === 'sign' ? c + b : c - b;
  if (kind === 'final' && a === 1) rhs += off;
  const lines: string[] = [`${lhs(a, b)} = ${c}.`];
  if (b > 0) lines.push(`Subtract ${b} from both sides: ${lhs(a, 0)} = ${rhs}.`);
  else if (b < 0) lines.push(`Add ${-b} to both sides: ${lhs(a, 0)} = ${rhs}.`);
  let result = rhs / a;
  if (kind === 'final' && a !== 1) result += off;
  if (a === -1) lines.push(`Multiply both sides by -1: x = ${result}.`);
  else if (a !== 1) lines.push(`Divide both sides by ${a}: x = ${result}.`);
  else if (b === 0 && kind === 'final') lines.push(`x = ${result}.`);
  lines.push(`So x = ${result}.`);
  return { text: lines.join(' '), answer: String(result) };
}

function check(task: Task, answer: string): { text: string; ok: boolean } {
  const { a, b, c, x } = parts(task);
  const whole = integerAnswer(cleanAnswer(answer).replace(/^x\s*=\s*/i, ''));
  if (whole === null) return { text: `${cleanAnswer(answer)} is not a whole number.`, ok: false };
  const n = Number(whole);
  const s = substitute(a, b, n);
  return n === x ? { text: `${s.text} = ${s.value}. Correct.`, ok: true } : { text: `${s.text} = ${s.value}, not ${c}.`, ok: false };
}

const worked: WorkedSolutions = {
  direct(task, answer) { const { a, b, c } = parts(task); return `${lhs(a, b)} = ${c}, so x = ${cleanAnswer(answer)}`; },
  steps,
  wrongAnswer(task, rng) { return steps(task, rng, true).answer; },
  check,
};

export const linearSuite: TaskSuite<LinearOpts> = {
  name: NAME,
  description: 'linear equations a*x + b = c with an integer solution (default: a in 1..5, x and b in -9..9)',
  generate(rng, n, opts = {}) {
    return sampleInPartition(NAME, rng, n, opts, (r) => sample(r, opts), (t) => linearSuite.key(t));
  },
  verify(task, candidate) {
    const whole = integerAnswer(cleanAnswer(candidate).replace(/^x\s*=\s*/i, ''));
    return whole !== null && whole === BigInt(parts(task).x);
  },
  key(task) { const { a, b, c } = parts(task); return `${a}x+${b}=${c}`; },
  worked,
};
