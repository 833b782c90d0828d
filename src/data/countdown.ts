// Countdown: reach a target from a few given numbers with + - * / and parentheses.
//
// Knobs: count of numbers (default 3), maxNumber (default 10; numbers are 1..maxNumber, may
// repeat), maxTarget (default 100), useAll (default true: the reference solution uses every
// number; the verifier still accepts any valid solution). A target is never one of the numbers.
//
// The verifier's rules (decided here, tested in test/data.test.ts):
// - The answer is an arithmetic expression over non-negative integer literals with binary
//   + - * / (× ÷ − accepted as synonyms) and parentheses; an optional "= <target>" suffix is
//   allowed when it names the target.
// - Each given number may be used at most once (a number given twice may be used twice);
//   using a number that is not given, or more often than given, fails. Concatenating digits
//   ("1" and "2" as 12) is using 12, so it fails unless 12 is given.
// - Not every number has to be used.
// - No unary minus ("-3 + 5" fails), no leading zeros.
// - Evaluation is exact with rationals: a non-integer intermediate is fine when the final value
//   is exactly the target ((7 / 2) * 4 = 14 passes); division by zero fails.
import type { Rng } from '../tensor/random.js';
import { Rational, evaluateExpression } from './rational.js';
import {
  cleanAnswer, metaNumber, pick, randInt, sampleInPartition,
  type GenerateOpts, type Task, type TaskSuite, type WorkedSolutions,
} from './tasks.js';

export interface CountdownOpts extends GenerateOpts {
  /** How many numbers; default 3. */
  count?: number;
  /** Numbers are drawn from 1..maxNumber; default 10. */
  maxNumber?: number;
  /** Targets are 1..maxTarget; default 100. */
  maxTarget?: number;
  /** The reference solution uses every number; default true. */
  useAll?: boolean;
}

const NAME = 'countdown';

type Op = '+' | '-' | '*' | '/';
type Expr = { kind: 'num'; v: Rational } | { kind: 'op'; op: Op; l: Expr; r: Expr; v: Rational };

const PREC: Record<Op, number> = { '+': 1, '-': 1, '*': 2, '/': 2 };

function apply(op: Op, a: Rational, b: Rational): Rational {
  return op === '+' ? a.add(b) : op === '-' ? a.sub(b) : op === '*' ? a.mul(b) : a.div(b);
}

/** Render with the fewest parentheses that keep the meaning. */
export function renderExpr(e: Expr, parentPrec = 0, rightOf: Op | null = null): string {
  if (e.kind === 'num') return e.v.toString();
  const p = PREC[e.op];
  const s = `${renderExpr(e.l, p, null)} ${e.op} ${renderExpr(e.r, p, e.op)}`;
  const need = p < parentPrec || (p === parentPrec && (rightOf === '-' || rightOf === '/'));
  return need ? `(${s})` : s;
}

/** The evaluation steps of a tree, innermost first: ["3 + 5 = 8", "8 * 2 = 16"]. */
function evalSteps(e: Expr, out: string[] = []): string[] {
  if (e.kind === 'op') {
    evalSteps(e.l, out);
    evalSteps(e.r, out);
    out.push(`${e.l.v} ${e.op} ${e.r.v} = ${e.v}`);
  }
  return out;
}

/** A random expression over the given numbers with integer, positive intermediates. */
function randomTree(rng: Rng, nums: number[]): Expr {
  const nodes: Expr[] = nums.map((n) => ({ kind: 'num', v: Rational.of(n) }));
  while (nodes.length > 1) {
    const i = rng.int(nodes.length);
    let j = rng.int(nodes.length - 1);
    if (j >= i) j++;
    let [l, r] = [nodes[i], nodes[j]];
    const lv = l.v, rv = r.v;
    const ops: Op[] = ['+', '*'];
    if (!lv.eq(rv)) ops.push('-');
    const big = lv.num >= rv.num ? lv : rv, small = big === lv ? rv : lv;
    if (small.num !== 0n && big.num % small.num === 0n) ops.push('/');
    const op = pick(rng, ops);
    if ((op === '-' || op === '/') && big !== lv) [l, r] = [r, l];
    const node: Expr = { kind: 'op', op, l, r, v: apply(op, l.v, r.v) };
    nodes.splice(Math.max(i, j), 1);
    nodes.splice(Math.min(i, j), 1);
    nodes.push(node);
  }
  return nodes[0];
}

/** Parse an expression into a tree (same grammar as evaluateExpression). */
function parseTree(src: string): Expr {
  const toks = src.replace(/[×·]/g, '*').replace(/÷/g, '/').replace(/[\u2212\u2013]/g, '-').match(/\d+|[-+*/()]|\S/g) ?? [];
  let pos = 0;
  const expr = (): Expr => {
    let v = term();
    while (toks[pos] === '+' || toks[pos] === '-') { const op = toks[pos++] as Op; const r = term(); v = { kind: 'op', op, l: v, r, v: apply(op, v.v, r.v) }; }
    return v;
  };
  const term = (): Expr => {
    let v = factor();
    while (toks[pos] === '*' || toks[pos] === '/') { const op = toks[pos++] as Op; const r = factor(); v = { kind: 'op', op, l: v, r, v: apply(op, v.v, r.v) }; }
    return v;
  };
  const factor = (): Expr => {
    const t = toks[pos++];
    if (t === '(') { const v = expr(); if (toks[pos++] !== ')') throw new Error("missing ')'"); return v; }
    if (t !== undefined && /^\d+$/.test(t)) return { kind: 'num', v: new Rational(BigInt(t)) };
    throw new Error(`unexpected '${t ?? 'end'}'`);
  };
  const e = expr();
  if (pos !== toks.length) throw new Error(`unexpected '${toks[pos]}'`);
  return e;
}

function numbersOf(task: Task): number[] {
  const v = task.meta.numbers;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isInteger(x))) {
    throw new Error(`task ${task.id}: meta.numbers must be an array of integers`);
  }
  return v as number[];
}

export function countdownTask(numbers: number[], target: number, solution: string): Task {
  const t: Task = {
    id: '', suite: NAME,
    question: `Make ${target} from ${numbers.join(', ')} using + - * / and each number at most once`,
    answer: solution, meta: { numbers: [...numbers], target },
  };
  t.id = `${NAME}:${countdownSuite.key(t)}`;
  return t;
}

function sample(rng: Rng, o: CountdownOpts): Task {
  const count = o.count ?? 3, maxNumber = o.maxNumber ?? 10, maxTarget = o.maxTarget ?? 100;
  if (count < 2) throw new Error('countdown: count must be at least 2');
  for (let round = 0; ; round++) {
    if (round > 2000) throw new Error(`countdown: no problem found for count=${count}, maxNumber=${maxNumber}, maxTarget=${maxTarget}`);
    const nums = Array.from({ length: count }, () => randInt(rng, 1, maxNumber));
    for (let attempt = 0; attempt < 20; attempt++) {
      let use = nums;
      if (o.useAll === false) use = rng.shuffle([...nums]).slice(0, randInt(rng, 2, count));
      const tree = randomTree(rng, use);
      if (!tree.v.isInteger()) continue;
      const target = Number(tree.v.num);
      if (target < 1 || target > maxTarget || nums.includes(target)) continue;
      return countdownTask(nums, target, renderExpr(tree));
    }
  }
}

export interface CountdownCheck { ok: boolean; reason: string; value?: Rational }

/** Verify with a reason (for messages and tests). */
export function checkCountdown(numbers: readonly number[], target: number, candidate: string): CountdownCheck {
  let s = cleanAnswer(candidate);
  const eq = /^(.*?)=\s*([+-]?\d+)\s*$/s.exec(s);
  if (eq) {
    if (Number(eq[2]) !== target) return { ok: false, reason: `claims = ${eq[2]}, the target is ${target}` };
    s = eq[1];
  }
  let ev;
  try { ev = evaluateExpression(s); } catch (e) {
    return { ok: false, reason: e instanceof RangeError ? 'division by zero' : `not a valid expression: ${(e as Error).message}` };
  }
  const avail = new Map<number, number>();
  for (const n of numbers) avail.set(n, (avail.get(n) ?? 0) + 1);
  for (const n of ev.literals) {
    const k = avail.get(n) ?? 0;
    if (k === 0) return { ok: false, reason: numbers.includes(n) ? `uses ${n} more often than given` : `uses ${n}, which is not given`, value: ev.value };
    avail.set(n, k - 1);
  }
  if (!ev.value.eq(Rational.of(target))) return { ok: false, reason: `equals ${ev.value}, not ${target}`, value: ev.value };
  return { ok: true, reason: 'ok', value: ev.value };
}

// ---------------------------------------------------------------------------------------
// Worked solutions

/** A wrong expression over the numbers, as close to the target as a few random tries find. */
function nearMiss(task: Task, rng: Rng): Expr {
  const nums = numbersOf(task), target = Rational.of(metaNumber(task, 'target'));
  let best: Expr | null = null, bestGap = Infinity;
  for (let i = 0; i < 40; i++) {
    const use = i % 4 === 3 ? rng.shuffle([...nums]).slice(0, 2) : nums;
    const t = randomTree(rng, use);
    if (t.v.eq(target) || !t.v.isInteger()) continue;
    const gap = Math.abs(Number(t.v.sub(target).num));
    if (gap < bestGap || (gap === bestGap && rng.uniform() < 0.5)) { best = t; bestGap = gap; }
  }
  if (best) return best;
  // all trees hit the target (tiny number sets): add the numbers instead, or use one too many
  const sum = nums.reduce((x, y) => x + y, 0);
  const leaves = nums.map((n): Expr => ({ kind: 'num', v: Rational.of(n) }));
  let e = leaves[0];
  for (const l of leaves.slice(1)) e = { kind: 'op', op: '+', l: e, r: l, v: e.v.add(l.v) };
  if (sum !== Number(target.num)) return e;
  return { kind: 'op', op: '*', l: e, r: leaves[0], v: e.v.mul(leaves[0].v) };
}

function steps(task: Task, rng: Rng, slip: boolean): { text: string; answer: string } {
  const target = metaNumber(task, 'target');
  if (!slip) {
    const tree = parseTree(task.answer);
    return { text: stepsText(evalSteps(tree), tree, target), answer: renderExpr(tree) };
  }
  const tree = nearMiss(task, rng);
  const lines = evalSteps(tree);
  // the slip: the last step is miscalculated so that it seems to reach the target
  lines[lines.length - 1] = lines[lines.length - 1].replace(/= [^=]+$/, `= ${target}`);
  return { text: stepsText(lines, tree, target), answer: renderExpr(tree) };
}

function stepsText(lines: string[], tree: Expr, target: number): string {
  return lines.length > 1 ? `${lines.join('. ')}. So ${renderExpr(tree)} = ${target}.` : `${lines.join('. ')}.`;
}

function check(task: Task, answer: string): { text: string; ok: boolean } {
  const nums = numbersOf(task), target = metaNumber(task, 'target');
  const r = checkCountdown(nums, target, answer);
  let tree: Expr | null = null;
  try { tree = parseTree(cleanAnswer(answer).replace(/=.*$/s, '')); } catch { /* reported below */ }
  if (!tree || r.reason === 'division by zero' || r.reason.startsWith('not a valid')) {
    return { text: `${cleanAnswer(answer)} is not a valid expression.`, ok: false };
  }
  const work = evalSteps(tree).join(', ');
  if (r.ok) return { text: `${work}. Correct.`, ok: true };
  if (r.reason.startsWith('uses')) return { text: `${renderExpr(tree)} ${r.reason}.`, ok: false };
  return { text: `${work}, not ${target}.`, ok: false };
}

const worked: WorkedSolutions = {
  direct(task, answer) { return `${cleanAnswer(answer)} = ${metaNumber(task, 'target')}`; },
  steps,
  wrongAnswer(task, rng) { return renderExpr(nearMiss(task, rng)); },
  check,
};

export const countdownSuite: TaskSuite<CountdownOpts> = {
  name: NAME,
  description: 'reach a target from given numbers with + - * / (default: 3 numbers in 1..10)',
  generate(rng, n, opts = {}) {
    return sampleInPartition(NAME, rng, n, opts, (r) => sample(r, opts), (t) => countdownSuite.key(t));
  },
  verify(task, candidate) {
    return checkCountdown(numbersOf(task), metaNumber(task, 'target'), candidate).ok;
  },
  key(task) {
    return `${[...numbersOf(task)].sort((a, b) => a - b).join(',')}=${metaNumber(task, 'target')}`;
  },
  worked,
};
