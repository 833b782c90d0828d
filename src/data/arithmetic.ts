// Multi-digit arithmetic: a + b, a - b, a * b on small non-negative integers.
//
// Knobs: ops (default all three), digits of the operands of + and - (default 2: 10..99),
// digits of the two factors of * (default [1, 1]: 1..9 × 1..9), allowNegative (default false:
// the larger operand of a subtraction comes first). A 1-digit operand is 1..9.
// Answer: the exact integer; verify accepts any numeral equal to it ("85", "+85", "85.0",
// "170/2", "\boxed{85}").
import type { Rng } from '../tensor/random.js';
import {
  cleanAnswer, integerAnswer, metaNumber, metaString, numericAnswer, pick, randInt, sampleInPartition,
  type GenerateOpts, type Task, type TaskSuite, type WorkedSolutions,
} from './tasks.js';

export type ArithOp = '+' | '-' | '*';

export interface ArithmeticOpts extends GenerateOpts {
  ops?: ArithOp[];
  /** Digits of each operand of + and -; default 2. */
  digits?: number;
  /** Digits of the two factors of *; default [1, 1]. */
  mulDigits?: [number, number];
  /** Allow a negative difference (a < b); default false. */
  allowNegative?: boolean;
}

const NAME = 'arithmetic';

function range(d: number): [number, number] {
  if (!Number.isInteger(d) || d < 1 || d > 12) throw new Error(`arithmetic: digits must be an integer in 1..12, got ${d}`);
  return d === 1 ? [1, 9] : [10 ** (d - 1), 10 ** d - 1];
}

export function arithmeticTask(a: number, op: ArithOp, b: number): Task {
  const value = op === '+' ? a + b : op === '-' ? a - b : a * b;
  const t: Task = {
    id: '', suite: NAME, question: `Compute ${a} ${op} ${b}`, answer: String(value),
    meta: { a, b, op },
  };
  t.id = `${NAME}:${arithmeticSuite.key(t)}`;
  return t;
}

function sample(rng: Rng, o: ArithmeticOpts): Task {
  const op = pick<ArithOp>(rng, o.ops ?? ['+', '-', '*']);
  if (op === '*') {
    const [d1, d2] = o.mulDigits ?? [1, 1];
    const [l1, h1] = range(d1), [l2, h2] = range(d2);
    return arithmeticTask(randInt(rng, l1, h1), '*', randInt(rng, l2, h2));
  }
  const [lo, hi] = range(o.digits ?? 2);
  let a = randInt(rng, lo, hi), b = randInt(rng, lo, hi);
  if (op === '-' && !o.allowNegative && a < b) [a, b] = [b, a];
  return arithmeticTask(a, op, b);
}

function parts(task: Task): { a: number; b: number; op: ArithOp; value: number } {
  const a = metaNumber(task, 'a'), b = metaNumber(task, 'b');
  const op = metaString(task, 'op') as ArithOp;
  if (op !== '+' && op !== '-' && op !== '*') throw new Error(`task ${task.id}: unknown op '${op}'`);
  return { a, b, op, value: op === '+' ? a + b : op === '-' ? a - b : a * b };
}

// ---------------------------------------------------------------------------------------
// Worked solutions

const digitsOf = (n: number): number[] => String(n).split('').reverse().map(Number);

interface Slip { col: number; kind: 'carry' | 'digit'; delta: number }

/** Column addition; a slip drops the carry out of column `col` or puts the column sum off by delta. */
function addColumns(a: number, b: number, slip: Slip | null): { lines: string[]; result: number } {
  const da = digitsOf(a), db = digitsOf(b);
  const n = Math.max(da.length, db.length);
  const lines: string[] = [];
  let carry = 0, result = 0;
  for (let i = 0; i < n; i++) {
    const terms: number[] = [];
    if (i < da.length) terms.push(da[i]);
    if (i < db.length) terms.push(db[i]);
    if (carry) terms.push(carry);
    let s = terms.reduce((x, y) => x + y, 0);
    if (slip && slip.col === i && slip.kind === 'digit') s = Math.max(0, s + slip.delta);
    let cOut = Math.floor(s / 10);
    const d = s % 10;
    let line = terms.length === 1 ? `bring down ${s}` : `${terms.join(' + ')} = ${s}`;
    if (slip && slip.col === i && slip.kind === 'carry' && cOut > 0) { line += `, write ${d}`; cOut = 0; }
    else if (cOut > 0) line += `, write ${d} carry ${cOut}`;
    lines.push(line + '.');
    result += d * 10 ** i;
    carry = cOut;
  }
  if (carry) { lines.push(`write the carry ${carry}.`); result += carry * 10 ** n; }
  return { lines, result };
}

/** Column subtraction of a >= b; a slip forgets to pay back a borrow or puts a digit off by delta. */
function subColumns(a: number, b: number, slip: Slip | null): { lines: string[]; result: number } {
  const da = digitsOf(a), db = digitsOf(b);
  const lines: string[] = [];
  let borrow = 0, result = 0;
  for (let i = 0; i < da.length; i++) {
    const top = da[i] - borrow;
    const topText = borrow ? `${da[i]} - ${borrow}` : `${da[i]}`;
    const y = i < db.length ? db[i] : 0;
    let d: number, line: string;
    let nextBorrow = 0;
    if (top < y) {
      d = top + 10 - y;
      line = `${topText} - ${y} needs a borrow: ${top + 10} - ${y} = ${d}`;
      nextBorrow = 1;
    } else if (i < db.length) {
      d = top - y;
      line = `${topText} - ${y} = ${d}`;
    } else {
      d = top;
      line = borrow ? `${topText} = ${d}` : `bring down ${d}`;
    }
    if (slip && slip.col === i && slip.kind === 'digit') {
      const wrong = d + slip.delta >= 0 && d + slip.delta <= 9 ? d + slip.delta : d - slip.delta;
      line = line.replace(new RegExp(`= ${d}$`), `= ${wrong}`);
      d = wrong;
    }
    lines.push(line + '.');
    result += d * 10 ** i;
    borrow = slip && slip.col === i && slip.kind === 'carry' ? 0 : nextBorrow;
  }
  return { lines, result };
}

/** Column multiplication of a multi-digit x by a one-digit y. */
function mulColumns(x: number, y: number, slip: Slip | null): { lines: string[]; result: number } {
  const dx = digitsOf(x);
  const lines: string[] = [];
  let carry = 0, result = 0;
  for (let i = 0; i < dx.length; i++) {
    let p = dx[i] * y;
    if (slip && slip.col === i && slip.kind === 'digit') p = Math.max(0, p + slip.delta * y);
    const s = p + carry;
    let cOut = Math.floor(s / 10);
    const d = s % 10;
    let line = carry ? `${dx[i]} * ${y} + ${carry} = ${s}` : `${dx[i]} * ${y} = ${s}`;
    if (slip && slip.col === i && slip.kind === 'carry' && cOut > 0) { line += `, write ${d}`; cOut = 0; }
    else if (cOut > 0) line += `, write ${d} carry ${cOut}`;
    lines.push(line + '.');
    result += d * 10 ** i;
    carry = cOut;
  }
  if (carry) { lines.push(`write the carry ${carry}.`); result += carry * 10 ** dx.length; }
  return { lines, result };
}

/**
 * p * q written as a sum of easy partial products: by the decimal digits of q when q >= 10,
 * otherwise q split in halves (or repeated addition when q <= 3). A slip puts one partial
 * product off by one times-table row (±p).
 */
function decomposition(p: number, q: number, rng: Rng | null, slip: boolean): { text: string; result: number } {
  if (q === 1) {
    const r = slip ? p + (rng && rng.uniform() < 0.5 && p > 1 ? -1 : 1) : p;
    return { text: `${p} * 1 = ${r}`, result: r };
  }
  if (q <= 3) {
    const terms = Array(q).fill(p) as number[];
    let s = p * q;
    if (slip) s += rng && rng.uniform() < 0.5 ? -1 : 1;
    return { text: `${p} * ${q} = ${terms.join(' + ')} = ${s}`, result: s };
  }
  let qs: number[];
  if (q >= 10) qs = digitsOf(q).map((d, i) => d * 10 ** i).filter((v) => v > 0).reverse();
  else { const h = Math.floor(q / 2); qs = [h, q - h]; }
  if (qs.length === 1) { const h = Math.floor(qs[0] / 2); qs = [h, qs[0] - h]; }
  const partials = qs.map((v) => p * v);
  if (slip && rng) {
    const j = rng.int(partials.length);
    const unit = p * (qs[j] >= 10 ? 10 ** Math.floor(Math.log10(qs[j])) : 1);
    partials[j] += partials[j] - unit > 0 && rng.uniform() < 0.5 ? -unit : unit;
  }
  const result = partials.reduce((x, y) => x + y, 0);
  return {
    text: `${p} * ${q} = ${qs.map((v) => `${p} * ${v}`).join(' + ')} = ${partials.join(' + ')} = ${result}`,
    result,
  };
}

function steps(task: Task, rng: Rng, slip: boolean): { text: string; answer: string } {
  const { a, b, op, value } = parts(task);
  for (let attempt = 0; attempt < 20; attempt++) {
    const r = stepsOnce(a, b, op, rng, slip);
    if (!slip || r.result !== value) return { text: r.text, answer: String(r.result) };
  }
  // could not find a slip that changes the result (cannot happen for the shapes above)
  const wrong = value + 1;
  return { text: `${a} ${op} ${b} = ${wrong}.`, answer: String(wrong) };
}

function stepsOnce(a: number, b: number, op: ArithOp, rng: Rng, slip: boolean): { text: string; result: number } {
  const mkSlip = (cols: number, carryCols: number[]): Slip | null => {
    if (!slip) return null;
    if (carryCols.length > 0 && rng.uniform() < 0.6) return { col: pick(rng, carryCols), kind: 'carry', delta: 0 };
    return { col: rng.int(cols), kind: 'digit', delta: rng.uniform() < 0.5 ? -1 : 1 };
  };
  if (op === '+') {
    const clean = addColumns(a, b, null);
    const carryCols = clean.lines.map((l, i) => (l.includes('carry') && !l.startsWith('write') ? i : -1)).filter((i) => i >= 0);
    const r = addColumns(a, b, mkSlip(Math.max(digitsOf(a).length, digitsOf(b).length), carryCols));
    return { text: `${r.lines.join(' ')} So ${a} + ${b} = ${r.result}.`, result: r.result };
  }
  if (op === '-') {
    const neg = a < b;
    const [x, y] = neg ? [b, a] : [a, b];
    const clean = subColumns(x, y, null);
    const borrowCols = clean.lines.map((l, i) => (l.includes('borrow') && i + 1 < clean.lines.length ? i : -1)).filter((i) => i >= 0);
    const r = subColumns(x, y, mkSlip(digitsOf(x).length, borrowCols));
    const res = neg ? -r.result : r.result;
    const pre = neg ? `${a} is less than ${b}, so compute ${b} - ${a} and negate. ` : '';
    return { text: `${pre}${r.lines.join(' ')} So ${a} - ${b} = ${res}.`, result: res };
  }
  // multiplication: column method for a multi-digit by a one-digit factor, else partial products
  const colMul = (x: number, y: number): { text: string; result: number } => {
    const clean = mulColumns(x, y, null);
    const carryCols = clean.lines.map((l, i) => (l.includes('carry') && !l.startsWith('write') ? i : -1)).filter((i) => i >= 0);
    const r = mulColumns(x, y, mkSlip(digitsOf(x).length, carryCols));
    return { text: `${r.lines.join(' ')} So ${a} * ${b} = ${r.result}.`, result: r.result };
  };
  if (a >= 10 && b < 10) return colMul(a, b);
  if (b >= 10 && a < 10) return colMul(b, a);
  const d = decomposition(a, b, rng, slip);
  return { text: `${d.text}.`, result: d.result };
}

function check(task: Task, answer: string): { text: string; ok: boolean } {
  const { a, b, op, value } = parts(task);
  const whole = integerAnswer(answer);
  if (whole === null) return { text: `${cleanAnswer(answer)} is not a whole number.`, ok: false };
  const n = Number(whole);
  const ok = n === value;
  if (op === '+') {
    const back = n - b;
    return ok ? { text: `${n} - ${b} = ${back}. Correct.`, ok } : { text: `${n} - ${b} = ${back}, not ${a}.`, ok };
  }
  if (op === '-') {
    const back = n + b;
    return ok ? { text: `${n} + ${b} = ${back}. Correct.`, ok } : { text: `${n} + ${b} = ${back}, not ${a}.`, ok };
  }
  const d = decomposition(b, a, null, false);
  return ok ? { text: `${d.text}. Correct.`, ok } : { text: `${d.text}, not ${n}.`, ok };
}

const worked: WorkedSolutions = {
  direct(task, answer) { const { a, b, op } = parts(task); return `${a} ${op} ${b} = ${cleanAnswer(answer)}`; },
  steps,
  wrongAnswer(task, rng) { return steps(task, rng, true).answer; },
  check,
};

export const arithmeticSuite: TaskSuite<ArithmeticOpts> = {
  name: NAME,
  description: 'multi-digit addition, subtraction and multiplication (default: 2-digit +/-, 1x1-digit *)',
  generate(rng, n, opts = {}) {
    return sampleInPartition(NAME, rng, n, opts, (r) => sample(r, opts), (t) => arithmeticSuite.key(t));
  },
  verify(task, candidate) {
    const v = numericAnswer(candidate);
    if (v === null) return false;
    const { value } = parts(task);
    return v.isInteger() && v.num === BigInt(value);
  },
  key(task) {
    const { a, b, op } = parts(task);
    if (op === '-') return `${a}-${b}`;
    const [x, y] = a <= b ? [a, b] : [b, a];
    return `${x}${op}${y}`;
  },
  worked,
};
