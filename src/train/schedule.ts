// Learning-rate schedules.

/** Linear warmup to `peak`, then cosine decay to `peak * minRatio` at `total` steps. */
export function warmupCosine(step: number, o: { peak: number; warmup: number; total: number; minRatio?: number }): number {
  const minLr = o.peak * (o.minRatio ?? 0.1);
  if (step < o.warmup) return (o.peak * (step + 1)) / o.warmup;
  if (step >= o.total) return minLr;
  const progress = (step - o.warmup) / Math.max(1, o.total - o.warmup);
  return minLr + 0.5 * (o.peak - minLr) * (1 + Math.cos(Math.PI * progress));
}
