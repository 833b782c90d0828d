// Exact rational numbers (bigint numerator/denominator) and a parser for the small
// arithmetic expressions that the task verifiers accept. No floating point anywhere, so
// `7 / 2 * 4` is exactly 14 and `1 / 3 * 3` is exactly 1.

export class Rational {
  /** Always reduced, denominator > 0. */
  readonly num: bigint;
  readonly den: bigint;

  constructor(num: bigint, den: bigint = 1n) {
    if (den === 0n) throw new RangeError('Rational: zero denominator');
    if (den < 0n) { num = -num; den = -den; }
    const g = gcd(num < 0n ? -num : num, den);
    this.num = g > 1n ? num / g : num;
    this.den = g > 1n ? den / g : den;
  }

  static of(n: number | bigint): Rational {
    if (typeof n === 'number' && !Number.isInteger(n)) throw new RangeError(`Rational.of: ${n} is not an integer`);
    return new Rational(BigInt(n));
  }

  add(o: Rational): Rational { return new Rational(this.num * o.den + o.num * this.den, this.den * o.den); }
  sub(o: Rational): Rational { return new Rational(this.num * o.den - o.num * this.den, this.den * o.den); }
  mul(o: Rational): Rational { return new Rational(this.num * o.num, this.den * o.den); }
  /** Throws RangeError on division by zero. */
  div(o: Rational): Rational {
    if (o.num === 0n) throw new RangeError('division by zero');
    return new Rational(this.num * o.den, this.den * o.num);
  }
  eq(o: Rational): boolean { return this.num === o.num && this.den === o.den; }
  isInteger(): boolean { return this.den === 1n; }
  toString(): string { return this.den === 1n ? this.num.toString() : `${this.num}/${this.den}`; }
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) { const t = a % b; a = b; b = t; }
  return a === 0n ? 1n : a;
}

/**
 * Parse a plain number written as an integer ("-12", "+7", "1,035"), a decimal ("12.50")
 * or a fraction ("-3/4"). Returns null for anything else. Surrounding spaces are ignored.
 */
export function parseNumber(s: string): Rational | null {
  const t = s.trim().replace(/\u2212/g, '-');
  let m = /^([+-]?)(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?$/.exec(t);
  if (m) {
    const sign = m[1] === '-' ? -1n : 1n;
    const intPart = BigInt(m[2].replace(/,/g, ''));
    const frac = m[3] ?? '';
    const den = 10n ** BigInt(frac.length);
    return new Rational(sign * (intPart * den + (frac ? BigInt(frac) : 0n)), den);
  }
  m = /^([+-]?)(\d+)\s*\/\s*(\d+)$/.exec(t);
  if (m) {
    const den = BigInt(m[3]);
    if (den === 0n) return null;
    return new Rational((m[1] === '-' ? -1n : 1n) * BigInt(m[2]), den);
  }
  return null;
}

/** The result of evaluating an expression: its exact value and the literals it used, in order. */
export interface Evaluated { value: Rational; literals: number[] }

/**
 * Evaluate an arithmetic expression exactly: non-negative integer literals, binary + - * /
 * (also the symbols × ÷ − and ·), parentheses. There is no unary minus (Countdown has no
 * negation). Throws an Error with a readable message on a syntax error and a RangeError on
 * division by zero.
 */
export function evaluateExpression(src: string): Evaluated {
  if (src.length > 500) throw new Error('expression too long');
  const toks: string[] = [];
  const norm = src.replace(/[×·]/g, '*').replace(/÷/g, '/').replace(/[\u2212\u2013]/g, '-');
  for (let i = 0; i < norm.length;) {
    const c = norm[i];
    if (c === ' ' || c === '\t' || c === '\n') { i++; continue; }
    if (c >= '0' && c <= '9') {
      let j = i;
      while (j < norm.length && norm[j] >= '0' && norm[j] <= '9') j++;
      toks.push(norm.slice(i, j));
      i = j;
      continue;
    }
    if ('+-*/()'.includes(c)) { toks.push(c); i++; continue; }
    throw new Error(`unexpected character '${c}' at position ${i}`);
  }
  let pos = 0;
  const literals: number[] = [];
  const peek = (): string | undefined => toks[pos];
  const expr = (): Rational => {
    let v = term();
    while (peek() === '+' || peek() === '-') {
      const op = toks[pos++];
      const r = term();
      v = op === '+' ? v.add(r) : v.sub(r);
    }
    return v;
  };
  const term = (): Rational => {
    let v = factor();
    while (peek() === '*' || peek() === '/') {
      const op = toks[pos++];
      const r = factor();
      v = op === '*' ? v.mul(r) : v.div(r);
    }
    return v;
  };
  const factor = (): Rational => {
    const t = toks[pos++];
    if (t === undefined) throw new Error('unexpected end of expression');
    if (t === '(') {
      const v = expr();
      if (toks[pos++] !== ')') throw new Error("missing ')'");
      return v;
    }
    if (/^\d+$/.test(t)) {
      if (t.length > 1 && t[0] === '0') throw new Error(`number with a leading zero: ${t}`);
      literals.push(Number(t));
      return new Rational(BigInt(t));
    }
    throw new Error(`unexpected '${t}'`);
  };
  if (toks.length === 0) throw new Error('empty expression');
  const value = expr();
  if (pos !== toks.length) throw new Error(`unexpected '${toks[pos]}' after the expression`);
  return { value, literals };
}
