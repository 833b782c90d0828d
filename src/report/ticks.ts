// Axis ticks with nice round numbers (1, 2, 5 × 10^k), log-scale ticks, and tick-label formatting
// that never prints float noise (0.30000000000000004) and keeps labels short (20k, 1.5M, 1e-5).

export interface LinearTicks {
  /** Tick positions, ascending, all within [lo, hi]. */
  ticks: number[];
  /** The distance between two ticks. */
  step: number;
  /** The axis domain: the data range, widened to whole ticks when `loose`. */
  lo: number;
  hi: number;
}

/** The smallest of 1, 2, 2.5, 5 × 10^k that is ≥ `raw`. */
export function niceStep(raw: number): number {
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const exp = Math.floor(Math.log10(raw));
  const f = raw / 10 ** exp;
  const m = [1, 2, 2.5, 5, 10].find((c) => c >= f - 1e-9) ?? 10;
  return clean(m * 10 ** exp);
}

/** Rounds away binary noise: 0.1 + 0.2 → 0.3. */
const clean = (v: number): number => (v === 0 ? 0 : Number(v.toPrecision(12)));

/**
 * Ticks for a linear axis over [min, max] with about `target` ticks. `loose` widens the domain to
 * the enclosing ticks (the usual choice for y); otherwise the domain is [min, max] exactly and
 * only the ticks inside it are kept (the usual choice for steps on x). A zero-width range is
 * widened around its value first.
 */
export function linearTicks(min: number, max: number, target = 5, loose = false): LinearTicks {
  if (!Number.isFinite(min) || !Number.isFinite(max)) { min = 0; max = 1; }
  if (min > max) [min, max] = [max, min];
  if (max - min < Math.abs(max) * 1e-12 || max === min) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= pad; max += pad;
  }
  const step = niceStep((max - min) / Math.max(1, target));
  const first = Math.ceil(min / step - 1e-9), last = Math.floor(max / step + 1e-9);
  const lo = loose ? Math.min(min, clean(Math.floor(min / step + 1e-9) * step)) : min;
  const hi = loose ? Math.max(max, clean(Math.ceil(max / step - 1e-9) * step)) : max;
  const ticks: number[] = [];
  const from = loose ? Math.floor(min / step + 1e-9) : first, to = loose ? Math.ceil(max / step - 1e-9) : last;
  for (let i = from; i <= to && ticks.length < 1000; i++) ticks.push(clean(i * step));
  return { ticks, step, lo, hi };
}

export interface LogTicks {
  /** Labelled ticks (powers of ten, or 1-2-5 multiples over a narrow range). */
  ticks: number[];
  /** Unlabelled minor ticks (2..9 × 10^k) when the range spans few decades. */
  minor: number[];
  lo: number;
  hi: number;
}

/** Ticks for a log10 axis over [min, max] (both > 0). */
export function logTicks(min: number, max: number, target = 5): LogTicks {
  if (!(min > 0) || !Number.isFinite(min)) min = max > 0 && Number.isFinite(max) ? max / 10 : 1;
  if (!(max > 0) || !Number.isFinite(max)) max = min * 10;
  if (min > max) [min, max] = [max, min];
  if (max / min < 1.0001) { min /= 1.5; max *= 1.5; }
  const e0 = Math.floor(Math.log10(min) + 1e-9), e1 = Math.ceil(Math.log10(max) - 1e-9);
  const decades = e1 - e0;
  const inRange = (v: number): boolean => v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9);
  if (decades >= 2) {
    // Loose: widen to whole decades; label every decade or every k-th when there are many.
    const every = decades <= target + 2 ? 1 : Math.ceil(decades / Math.max(1, target));
    const ticks: number[] = [], minor: number[] = [];
    for (let e = e0; e <= e1; e++) {
      if ((e - e0) % every === 0) ticks.push(clean(10 ** e));
      if (decades <= 6 && e < e1) for (let m = 2; m <= 9; m++) minor.push(clean(m * 10 ** e));
    }
    return { ticks, minor, lo: 10 ** e0, hi: 10 ** e1 };
  }
  // A narrow range (under two decades): widen to the enclosing 1-2-5 values and label those;
  // when that gives fewer than three labels, label every integer multiple m × 10^k instead.
  const cands: number[] = [];
  for (let e = e0 - 1; e <= e1; e++) for (let m = 1; m <= 9; m++) cands.push(clean(m * 10 ** e));
  const nice = cands.filter((v) => [1, 2, 5].includes(Number((v / 10 ** Math.floor(Math.log10(v) + 1e-9)).toPrecision(3))));
  const lo = [...nice].reverse().find((v) => v <= min * (1 + 1e-9)) ?? min;
  const hi = nice.find((v) => v >= max * (1 - 1e-9)) ?? max;
  const within = (v: number): boolean => v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9);
  let ticks = nice.filter(within);
  let minor = cands.filter((v) => within(v) && !ticks.includes(v));
  if (ticks.length < 3) { ticks = cands.filter(within); minor = []; }
  return { ticks, minor, lo, hi };
}

const SI: Array<[number, string]> = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];

/**
 * Formats a tick value so that all labels of one axis (spaced `step` apart) read alike:
 * 0.05 / 0.1 / 0.15, 2k / 4k, 1.5M, 2e-5. `step` 0 means "format this number on its own".
 */
export function formatTick(v: number, step = 0): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0 || Math.abs(v) < Math.abs(step) * 1e-9) return '0';
  const a = Math.abs(v), ref = step > 0 ? step : a;
  if (a >= 1e5 || (step >= 1e4 && a >= 1e4)) {
    for (const [unit, suffix] of SI) {
      if (a >= unit) return (v / unit).toFixed(decimalsFor(ref / unit)) + suffix;
    }
  }
  if (a < 1e-3 || (step > 0 && step < 1e-4)) return expo(v, ref);
  return v.toFixed(step > 0 ? decimalsFor(ref) : Math.min(6, decimalsFor(ref)));
}

/** Decimals needed to show multiples of `step` exactly (step = 0.05 → 2; 20 → 0). */
function decimalsFor(step: number): number {
  if (!(step > 0)) return 0;
  // Nice steps are 1, 2, 5 (or 2.5) × 10^k: find the digits that keep them exact.
  for (let d = 0; d <= 12; d++) {
    const s = step * 10 ** d;
    if (Math.abs(s - Math.round(s)) < 1e-6 * Math.max(1, s)) return d;
  }
  return 12;
}

function trimZeros(s: string): string {
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

function expo(v: number, ref: number): string {
  // Digits of the mantissa that the spacing needs: step 2e-6 at value 3.4e-5 → one decimal.
  const ev = Math.floor(Math.log10(Math.abs(v)));
  const er = Math.floor(Math.log10(Math.abs(ref) || Math.abs(v)));
  const digits = Math.min(6, Math.max(0, ev - er));
  const [m, e] = v.toExponential(digits).split('e');
  return `${trimZeros(m)}e${Number(e)}`;
}

/** Short label for a power of ten on a log axis: 0.001, 0.1, 1, 100, 1e5, 1e-4. */
export function formatLogTick(v: number): string {
  const e = Math.log10(v);
  if (Math.abs(e - Math.round(e)) < 1e-9) {
    const k = Math.round(e);
    if (k >= -3 && k <= 4) return formatTick(10 ** k);
    return `1e${k}`;
  }
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return formatTick(v, v);
  return formatTick(v);
}

/** A number for a table or summary: integers as they are, others to 4 significant digits. */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const a = Math.abs(v);
  if (a >= 1e-3 && a < 1e6) return trimZeros(v.toFixed(Math.max(0, 3 - Math.floor(Math.log10(a)))));
  return v.toExponential(3).replace(/\.?0+e/, 'e');
}
