// Run reports: plots (SVG + PNG), metrics.jsonl reading, and the HTML report of a run folder.
export * from './plot.js';
export * from './png.js';
export * from './ticks.js';
export { writeRunReport, metricPlot, standardPlots, slug } from './html.js';
export type { Cell, ReportTable, ReportPlot, RunReport, WriteReportOptions, WrittenReport, MetricPlotOptions } from './html.js';
export * from './metrics.js';
export { writeFileAtomic } from './fsutil.js';
