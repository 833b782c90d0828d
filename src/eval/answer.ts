// Answer extraction and mathematical equivalence of answer strings.
//
// extractAnswer(completion): the text inside the last <answer>…</answer> (trimmed, as
// src/data/template.ts does), else the content of the last complete \boxed{…} / \fbox{…}
// (balanced braces), else null.
//
// isEquivalent(a, b): whether two answers denote the same thing. Both strings are normalised
// (LaTeX cleanup), parsed into a value — an exact rational number, a list (tuple / interval /
// set / bare comma list) of values, or plain text — and the values compared. Never throws:
// garbage compares false. The rules:
//
// Normalisation
// - Wrappers dropped anywhere: \boxed{…}, \fbox{…}, $…$, $$…$$, \(…\), \[…\]; \left / \right
//   and \big…; LaTeX spacing (\, \; \: \! \quad ~); \displaystyle; a trailing period.
// - \text{…}, \mathrm{…}, \mbox{…}, \textbf{…} …: the content is kept when the command is the
//   whole answer or the content does not start with a letter (\text{5} → 5); otherwise it is a
//   unit or a word and is dropped ("5\text{ cm}" → 5).
// - Degrees (^\circ, ^{\circ}, °) and currency ($, \$) are dropped; \% becomes %.
// - \frac, \dfrac, \tfrac, \cfrac (also \frac12) become a division; an integer directly before a
//   fraction is a mixed number when the answer starts with it (3\frac{1}{2} = 7/2, -3\frac12 = -7/2);
//   elsewhere adjacency is multiplication (2(3) = 6). \sqrt{x} is exact when x is a perfect
//   square of a rational (√(9/4) = 3/2), otherwise the answer is compared as text.
// - \cdot, \times, ×, ·, ∗ are multiplication; \div, ÷ division; −, – minus; {,} a comma;
//   other braces group like parentheses; \{ … \} is a set.
// - "x = 5", "x_1 = 5", "ans = 5" ≡ "5": a leading `identifier =` is dropped (also per item of
//   a list: "x = 1, y = 2" is the list 1, 2).
// - Units: trailing words after a number are dropped ("12 apples" ≡ 12, "5 cm" ≡ 5). A number
//   written straight against letters ("5x") is not a number.
//
// Numbers and expressions: evaluated exactly with BigInt rationals — integers, decimals
// (".5", "12.0"), scientific notation ("1.5e3"), fractions, unary minus, + − × ÷, ^ with an
// integer exponent (2^-1 = 1/2), parentheses, implicit multiplication before a parenthesis
// ("2(3+1)" = 8). "2*3" ≡ "6", "0.5" ≡ "1/2" ≡ "2/4", "12" ≡ "12.0". Outside brackets a comma
// followed by exactly three digits is a thousands separator ("1,000" ≡ 1000); inside brackets,
// and anywhere else, commas separate items ("1,2" is a list).
//
// Decimal tolerance (the only inexact rule): when a side is a single decimal literal with at
// least DECIMAL_TOLERANCE_DIGITS (6) fractional digits, it is taken as a rounded or truncated
// value, and it matches any value closer than one unit in its last digit:
// 0.333333 ≡ 1/3 and 0.6666666 ≡ 2/3, but 0.333 ≢ 1/3 and 0.33 ≢ 0.333. The comparison itself
// is exact (rationals), never floating point.
//
// Percentages: "p%" equals both p and p/100 — answer keys often drop the sign ("50" for 50%)
// and a model may answer with the fraction (0.5). When both sides carry % the numbers p are
// compared. (So equivalence is not transitive across %: 50% ≡ 50 and 50% ≡ 0.5, but 50 ≢ 0.5.)
//
// Lists: "(1, 2)", "[1, 2)", "\{1, 2\}", "1, 2". Two bracketed lists (tuples, intervals) match
// when they have the same brackets and equal items in order; a bracketed list against a bare
// comma list matches in order ignoring the brackets; sets and bare lists match as multisets
// (in any order); a set never matches a bracketed tuple. Items are compared recursively.
//
// Text: anything else (symbols, \pi, \sqrt{2}, words) is compared as text with whitespace
// removed and case ignored — "\sqrt{2}" ≡ "\sqrt 2", "Yes" ≡ "yes", but "2\sqrt{2}" ≢ "\sqrt{8}"
// (no symbolic algebra). Text never equals a number. An empty answer equals nothing.
import { Rational } from '../data/rational.js';

// ---------------------------------------------------------------------------------------
// Extraction

/** The last <answer>…</answer> content, else the last \boxed{…} / \fbox{…} content, else null. */
export function extractAnswer(completion: string): string | null {
  if (typeof completion !== 'string') return null;
  const tags = [...completion.matchAll(/<answer>([\s\S]*?)<\/answer>/g)];
  if (tags.length) return tags[tags.length - 1][1].trim();
  return lastBoxed(completion);
}

/** The content of the last complete \boxed{…} or \fbox{…} (balanced braces), or null. */
export function lastBoxed(text: string): string | null {
  let last: string | null = null;
  for (const m of text.matchAll(/\\(?:boxed|fbox)\s*\{/g)) {
    const open = m.index! + m[0].length - 1;
    const close = matchingBrace(text, open);
    if (close >= 0) last = text.slice(open + 1, close).trim();
  }
  return last;
}

/** Index of the '}' closing the '{' at `open` (escaped \{ \} do not count), or -1. */
function matchingBrace(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') { i++; continue; }
    if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return i;
  }
  return -1;
}

// ---------------------------------------------------------------------------------------
// Equivalence

/** Fractional digits from which a decimal literal is treated as rounded (see the header). */
export const DECIMAL_TOLERANCE_DIGITS = 6;

/** Answers longer than this are not parsed (they compare false). */
const MAX_ANSWER_LENGTH = 2000;
const MAX_LIST_ITEMS = 256;

/** Whether two answer strings are mathematically equivalent (see the rules above). Never throws. */
export function isEquivalent(a: string, b: string): boolean {
  try {
    const x = parseAnswer(a);
    const y = parseAnswer(b);
    return x !== null && y !== null && valuesEqual(x, y);
  } catch {
    return false;
  }
}

/** A parsed answer. */
export type AnswerValue =
  | { kind: 'number'; value: Rational; percent: boolean; /** fractional digits if written as one decimal literal, else -1 */ digits: number }
  | { kind: 'list'; open: string; close: string; items: AnswerValue[] }
  | { kind: 'text'; text: string };

/** Normalise and parse an answer; null for a non-string, an empty or an over-long answer. Never throws. */
export function parseAnswer(answer: string): AnswerValue | null {
  if (typeof answer !== 'string' || answer.length > MAX_ANSWER_LENGTH) return null;
  try {
    const s = normalizeAnswer(answer);
    if (s === '') return null;
    const v = parseValue(s, 0);
    return v.kind === 'text' && v.text === '' ? null : v;
  } catch {
    return null;
  }
}

// --- normalisation ---------------------------------------------------------------------

const SET_OPEN = '⦃';
const SET_CLOSE = '⦄';
const TEXT_COMMANDS = ['text', 'textbf', 'textit', 'textrm', 'textnormal', 'mathrm', 'mathbf', 'mathit', 'mbox', 'operatorname'];
const FRAC_COMMANDS = ['frac', 'dfrac', 'tfrac', 'cfrac'];

/** LaTeX and typography cleanup to a plain expression string (see the header). */
export function normalizeAnswer(answer: string): string {
  let s = answer.trim();
  s = s.replace(/\\\$/g, '').replace(/\$/g, '').replace(/\\[()[\]]/g, '');
  s = replaceCommand(s, ['boxed', 'fbox'], 1, ({ args }) => args[0]);
  // A dropped unit takes an exponent right after it with it ("5\text{ cm}^2" → 5).
  s = replaceCommand(s, TEXT_COMMANDS, 1, ({ args, whole }) => (whole || !/^\s*[A-Za-z]/.test(args[0]) ? args[0] : '\u0001'));
  s = s.replace(/\u0001\s*(?:\^\s*(?:\{[^{}]*\}|\S))?/g, ' ');
  s = s
    .replace(/(\d)\\,(?=\d{3}(?!\d))/g, '$1') // 1\,000 (a thin space between thousands)
    .replace(/\\(?:left|right|bigg|Bigg|big|Big)[lr]?(?![A-Za-z])/g, '')
    .replace(/\\(?:displaystyle|qquad|quad)(?![A-Za-z])/g, ' ')
    .replace(/\\[,;:! ]/g, ' ')
    .replace(/~/g, ' ')
    .replace(/\^\s*\{\s*\\circ\s*\}|\^\s*\\circ(?![A-Za-z])|\\circ(?![A-Za-z])|°|\\degree(?![A-Za-z])/g, '')
    .replace(/\\%/g, '%')
    .replace(/\{,\}/g, ',');
  s = replaceCommand(s, FRAC_COMMANDS, 2, ({ args, before }) => {
    const frac = `((${normalizeAnswer(args[0])})/(${normalizeAnswer(args[1])}))`;
    // An integer alone before the fraction makes a mixed number: 3\frac{1}{2} = 3 + 1/2.
    const m = /^(\s*(?:[A-Za-z][A-Za-z0-9]*\s*=\s*)?[-+]?\s*)(\d+)\s*$/.exec(before);
    return m ? { replaceBefore: before.length - m[1].length, text: `(${m[2]}+${frac})` } : frac;
  });
  s = replaceCommand(s, ['sqrt'], 1, ({ args, optional }) => (optional !== null ? `root(${optional},${args[0]})` : `sqrt(${normalizeAnswer(args[0])})`));
  s = s
    .replace(/\\(?:cdot|times|ast)(?![A-Za-z])|[×·∗]/g, '*')
    .replace(/\\div(?![A-Za-z])|÷/g, '/')
    .replace(/[\u2212\u2013\u2014]/g, '-')
    .replace(/\\\{/g, SET_OPEN)
    .replace(/\\\}/g, SET_CLOSE)
    .replace(/\{/g, '(')
    .replace(/\}/g, ')')
    .replace(/\s+/g, ' ')
    .trim();
  while (s.endsWith('.')) s = s.slice(0, -1).trimEnd(); // a trailing period ("5." → 5)
  return s;
}

interface CommandMatch {
  args: string[];
  /** The [n] optional argument (only read for \sqrt), or null. */
  optional: string | null;
  /** The text before the command in the (partly rewritten) string. */
  before: string;
  /** Whether the command and its arguments are the whole string (ignoring spaces). */
  whole: boolean;
}
type Replacement = string | { text: string; replaceBefore: number };
const commandRegexes = new Map<string, RegExp>();

/**
 * Rewrite every `\name{arg}…` (name in `names`, exactly nArgs arguments, each a braced group or
 * a single character) with fn's result. A command whose arguments cannot be read is left as is.
 */
function replaceCommand(s: string, names: string[], nArgs: number, fn: (m: CommandMatch) => Replacement): string {
  if (!s.includes('\\')) return s;
  const key = names.join('|');
  let re = commandRegexes.get(key);
  if (!re) { re = new RegExp(`\\\\(${key})(?![A-Za-z])`, 'g'); commandRegexes.set(key, re); }
  let out = '';
  let from = 0;
  for (;;) {
    re.lastIndex = from;
    const m = re.exec(s);
    if (!m) break;
    let i = m.index + m[0].length;
    let optional: string | null = null;
    const skipSpaces = () => { while (s[i] === ' ') i++; };
    skipSpaces();
    if (names.includes('sqrt') && s[i] === '[') {
      const close = s.indexOf(']', i);
      if (close < 0) break;
      optional = s.slice(i + 1, close);
      i = close + 1;
    }
    const args: string[] = [];
    for (let k = 0; k < nArgs; k++) {
      skipSpaces();
      if (s[i] === '{') {
        const close = matchingBrace(s, i);
        if (close < 0) break;
        args.push(s.slice(i + 1, close));
        i = close + 1;
      } else if (s[i] !== undefined && s[i] !== '}' && s[i] !== '\\') {
        args.push(s[i]);
        i++;
      } else break;
    }
    if (args.length < nArgs) { out += s.slice(from, m.index + m[0].length); from = m.index + m[0].length; continue; }
    const before = out + s.slice(from, m.index);
    const whole = before.trim() === '' && s.slice(i).trim() === '';
    const r = fn({ args, optional, before, whole });
    if (typeof r === 'string') out = before + r;
    else out = before.slice(0, before.length - r.replaceBefore) + r.text;
    from = i;
  }
  return out + s.slice(from);
}

// --- parsing ---------------------------------------------------------------------------

const OPENERS = '([' + SET_OPEN;
const CLOSERS = ')]' + SET_CLOSE;

function parseValue(input: string, depth: number): AnswerValue {
  if (depth > 8) throw new Error('answer nested too deeply');
  const s = stripVariable(input.trim());
  if (s === '') return { kind: 'text', text: '' };

  // A bracketed list: "(1, 2)", "[0, 1)", "\{1, 2\}" (a set may have a single item).
  if (OPENERS.includes(s[0]) && CLOSERS.includes(s[s.length - 1]) && closerOf(s, 0) === s.length - 1) {
    const inner = s.slice(1, -1);
    const parts = splitTopLevel(inner);
    if (parts.length > 1 || s[0] === SET_OPEN) return list(s[0], s[s.length - 1], parts, depth);
  }
  const n = parseNumber(s);
  if (n) return n;
  const parts = splitTopLevel(s);
  if (parts.length > 1) return list('', '', parts, depth);
  return { kind: 'text', text: s.replace(/\s+/g, '').toLowerCase() };
}

function list(open: string, close: string, parts: string[], depth: number): AnswerValue {
  if (parts.length > MAX_LIST_ITEMS) throw new Error('too many items');
  return { kind: 'list', open, close, items: parts.map((p) => parseValue(p, depth + 1)) };
}

/** "x = 5" → "5"; also "x_1 = 5", "x_(1) = 5" (braces are parentheses by now), "ans = 5". */
function stripVariable(s: string): string {
  return s.replace(/^[A-Za-z][A-Za-z0-9]*(?:_(?:\([A-Za-z0-9]+\)|[A-Za-z0-9]))?\s*=(?!=)\s*/, '');
}

/** Index of the bracket closing the one at `open` (any of ( [ ⦃ against any of ) ] ⦄), or -1. */
function closerOf(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (OPENERS.includes(s[i])) depth++;
    else if (CLOSERS.includes(s[i]) && --depth === 0) return i;
  }
  return -1;
}

/** Split on commas (and semicolons) outside brackets. */
function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let depth = 0, start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (OPENERS.includes(c)) depth++;
    else if (CLOSERS.includes(c)) depth--;
    else if ((c === ',' || c === ';') && depth === 0) { parts.push(s.slice(start, i)); start = i + 1; }
  }
  parts.push(s.slice(start));
  return parts.map((p) => p.trim());
}

/** A number or an exact arithmetic expression, with an optional % and trailing unit words; null if not one. */
function parseNumber(input: string): AnswerValue | null {
  let s = input;
  let percent = false;
  const pm = /^(.*?)\s*(?:%|percent)$/.exec(s);
  if (pm) { s = pm[1]; percent = true; }
  let r = evaluate(s);
  if (!r) {
    // Trailing unit words: "12 apples", "5 cm", "3 square units".
    const um = /^(.*[\d)])\s+[A-Za-z]+(?:\s+[A-Za-z]+)*$/.exec(s);
    if (um) {
      r = evaluate(um[1]);
      if (!r && !percent) {
        const pu = /^(.*?)\s*%$/.exec(um[1]);
        if (pu) { r = evaluate(pu[1]); percent = r !== null; }
      }
    }
  }
  return r ? { kind: 'number', value: r.value, percent, digits: r.digits } : null;
}

// --- exact expression evaluation ---------------------------------------------------------

type Token = { t: 'num'; v: Rational; digits: number } | { t: 'op'; v: string };

const NUMBER_RE = /(?:\d{1,3}(?:,\d{3})+(?![\d])|\d+)(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?/y;

function tokenize(s: string): Token[] | null {
  const toks: Token[] = [];
  for (let i = 0; i < s.length;) {
    const c = s[i];
    if (c === ' ') { i++; continue; }
    NUMBER_RE.lastIndex = i;
    const m = NUMBER_RE.exec(s);
    if (m) {
      const lit = literal(m[0]);
      if (!lit) return null;
      toks.push({ t: 'num', ...lit });
      i += m[0].length;
      continue;
    }
    if ('+-*/^()'.includes(c)) { toks.push({ t: 'op', v: c }); i++; continue; }
    if (s.startsWith('sqrt', i)) { toks.push({ t: 'op', v: 'sqrt' }); i += 4; continue; }
    return null;
  }
  return toks;
}

/** A numeric literal ("1,234.50", "1.5e-3", ".5") as an exact rational and its fractional digits. */
function literal(text: string): { v: Rational; digits: number } | null {
  const m = /^([\d,]*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m) return null;
  const intPart = m[1].replace(/,/g, '') || '0';
  const frac = m[2] ?? '';
  const exp = m[3] === undefined ? 0 : Number(m[3]);
  if (!Number.isSafeInteger(exp) || Math.abs(exp) > 1000) return null;
  let num = BigInt(intPart + frac);
  let den = 10n ** BigInt(frac.length);
  if (exp > 0) num *= 10n ** BigInt(exp);
  if (exp < 0) den *= 10n ** BigInt(-exp);
  return { v: new Rational(num, den), digits: m[3] === undefined && m[2] !== undefined ? frac.length : -1 };
}

/** Evaluate exactly; null on any syntax error, division by zero or non-rational result. */
function evaluate(s: string): { value: Rational; digits: number } | null {
  const toks = tokenize(s);
  if (!toks || toks.length === 0) return null;
  try {
    const value = new ExprParser(toks).parseAll();
    // A single (signed) decimal literal keeps its digits for the decimal tolerance.
    const lit = toks.length === 1 ? toks[0] : toks.length === 2 && toks[0].t === 'op' && (toks[0].v === '-' || toks[0].v === '+') ? toks[1] : null;
    return { value, digits: lit && lit.t === 'num' ? lit.digits : -1 };
  } catch {
    return null;
  }
}

/**
 * Recursive descent, usual precedence:
 *   expr := term (('+'|'-') term)*
 *   term := unary (('*'|'/') unary | <implicit * before '(' or sqrt>)*
 *   unary := ('-'|'+') unary | power           (so -2^2 = -4)
 *   power := primary ('^' unary)?              (right-associative; integer exponents only)
 *   primary := number | '(' expr ')' | 'sqrt' primary
 */
class ExprParser {
  private pos = 0;
  constructor(private readonly toks: Token[]) {}

  parseAll(): Rational {
    const v = this.expr();
    if (this.pos !== this.toks.length) throw new Error('trailing tokens');
    return v;
  }

  private isOp(v: string): boolean {
    const t = this.toks[this.pos];
    return t !== undefined && t.t === 'op' && t.v === v;
  }

  private expr(): Rational {
    let v = this.term();
    while (this.isOp('+') || this.isOp('-')) {
      const op = (this.toks[this.pos++] as { v: string }).v;
      const r = this.term();
      v = op === '+' ? v.add(r) : v.sub(r);
    }
    return v;
  }

  private term(): Rational {
    let v = this.unary();
    for (;;) {
      if (this.isOp('*')) { this.pos++; v = v.mul(this.unary()); }
      else if (this.isOp('/')) { this.pos++; v = v.div(this.unary()); }
      else if (this.isOp('(') || this.isOp('sqrt')) v = v.mul(this.power());
      else return v;
    }
  }

  private unary(): Rational {
    if (this.isOp('-')) { this.pos++; return new Rational(0n).sub(this.unary()); }
    if (this.isOp('+')) { this.pos++; return this.unary(); }
    return this.power();
  }

  private power(): Rational {
    const base = this.primary();
    if (!this.isOp('^')) return base;
    this.pos++;
    return pow(base, this.unary());
  }

  private primary(): Rational {
    const t = this.toks[this.pos++];
    if (t === undefined) throw new Error('unexpected end');
    if (t.t === 'num') return t.v;
    if (t.v === '(') {
      const v = this.expr();
      if (!this.isOp(')')) throw new Error("missing ')'");
      this.pos++;
      return v;
    }
    if (t.v === 'sqrt') return sqrt(this.primary());
    throw new Error(`unexpected '${t.v}'`);
  }
}

const MAX_RESULT_BITS = 1 << 16;

function bits(n: bigint): number { return (n < 0n ? -n : n).toString(16).length * 4; }

function pow(base: Rational, exp: Rational): Rational {
  if (!exp.isInteger()) throw new Error('non-integer exponent');
  const e = exp.num < 0n ? -exp.num : exp.num;
  if (e > 100000n || (bits(base.num) + bits(base.den)) * Number(e) > MAX_RESULT_BITS) throw new Error('power too large');
  const p = new Rational(base.num ** e, base.den ** e);
  return exp.num < 0n ? new Rational(1n).div(p) : p;
}

function sqrt(x: Rational): Rational {
  if (x.num < 0n) throw new Error('sqrt of a negative number');
  const a = isqrt(x.num), b = isqrt(x.den);
  if (a * a !== x.num || b * b !== x.den) throw new Error('irrational square root');
  return new Rational(a, b);
}

function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = BigInt(Math.floor(Math.sqrt(Number(n))));
  // Newton steps fix the float estimate (exact for any size).
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) { while (x * x > n) x--; while ((x + 1n) * (x + 1n) <= n) x++; return x; }
    x = y;
  }
}

// --- comparison ------------------------------------------------------------------------

function valuesEqual(x: AnswerValue, y: AnswerValue): boolean {
  if (x.kind === 'number' && y.kind === 'number') return numbersEqual(x, y);
  if (x.kind === 'list' && y.kind === 'list') return listsEqual(x, y);
  if (x.kind === 'text' && y.kind === 'text') return x.text !== '' && x.text === y.text;
  return false;
}

type NumberValue = Extract<AnswerValue, { kind: 'number' }>;

function numbersEqual(x: NumberValue, y: NumberValue): boolean {
  if (x.percent === y.percent) return close(x.value, x.digits, y.value, y.digits);
  const [p, q] = x.percent ? [x, y] : [y, x];
  const hundredth = p.value.div(new Rational(100n));
  return close(p.value, p.digits, q.value, q.digits) || close(hundredth, p.digits >= 0 ? p.digits + 2 : -1, q.value, q.digits);
}

/** Exact equality, or within one unit of the last digit of a long decimal literal. */
function close(a: Rational, aDigits: number, b: Rational, bDigits: number): boolean {
  if (a.eq(b)) return true;
  const d = a.sub(b);
  const abs = d.num < 0n ? -d.num : d.num;
  const within = (digits: number) => digits >= DECIMAL_TOLERANCE_DIGITS && abs * 10n ** BigInt(digits) < d.den;
  return within(aDigits) || within(bDigits);
}

type ListValue = Extract<AnswerValue, { kind: 'list' }>;

function listsEqual(x: ListValue, y: ListValue): boolean {
  if (x.items.length !== y.items.length) return false;
  const isSet = (l: ListValue) => l.open === SET_OPEN;
  const bracketed = (l: ListValue) => l.open === '(' || l.open === '[';
  if ((isSet(x) && bracketed(y)) || (isSet(y) && bracketed(x))) return false;
  if (bracketed(x) && bracketed(y) && (x.open !== y.open || x.close !== y.close)) return false;
  if (bracketed(x) || bracketed(y)) return x.items.every((v, i) => valuesEqual(v, y.items[i]));
  // Sets and bare lists: a multiset match, in any order.
  const used = new Array<boolean>(y.items.length).fill(false);
  return x.items.every((v) => {
    const j = y.items.findIndex((w, k) => !used[k] && valuesEqual(v, w));
    if (j < 0) return false;
    used[j] = true;
    return true;
  });
}
