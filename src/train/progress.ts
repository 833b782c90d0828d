// A progress bar with rate and ETA (cli-progress) on a terminal; plain periodic lines elsewhere.
import cliProgress from 'cli-progress';

export class Progress {
  private readonly bar: cliProgress.SingleBar | null;
  private lastLine = 0;
  private readonly started = performance.now();

  constructor(private readonly total: number, start: number, private readonly quiet: boolean, private readonly label = 'step') {
    const tty = process.stderr.isTTY && !quiet;
    this.bar = tty
      ? new cliProgress.SingleBar({
        format: `${label} {value}/{total} |{bar}| {percentage}% | {info} | {rate}/s | ETA {eta_formatted}`,
        hideCursor: true, etaBuffer: 20, stream: process.stderr,
      }, cliProgress.Presets.shades_classic)
      : null;
    this.bar?.start(total, start, { info: '', rate: '0' });
  }

  /** Updates the bar; `info` values are shown as key value pairs. */
  tick(value: number, info: Record<string, number>): void {
    const text = Object.entries(info).map(([k, v]) => `${k} ${formatNumber(v)}`).join(' ');
    const elapsed = (performance.now() - this.started) / 1000;
    if (this.bar) {
      this.bar.update(value, { info: text, rate: formatNumber(value / Math.max(elapsed, 1e-9)) });
    } else if (!this.quiet && (performance.now() - this.lastLine > 5000 || value === this.total)) {
      this.lastLine = performance.now();
      const eta = value > 0 ? (elapsed / value) * (this.total - value) : 0;
      console.error(`${this.label} ${value}/${this.total} | ${text} | ETA ${eta.toFixed(0)}s`);
    }
  }

  stop(): void { this.bar?.stop(); }
}

function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a >= 1000 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(3);
}
