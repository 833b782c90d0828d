// `r1ts params <config.json>`: parameter accounting of a Hugging Face config.

import { loadConfig } from '../../models/config.js';
import { COMPONENTS, countParameters, type ParameterCount } from '../../models/params.js';

/** 671026419200 → "671,026,419,200". */
export function withSeparators(n: number): string {
  return n.toLocaleString('en-US');
}

/** 671026419200 → "671.03B", 11610068224 → "11.61B", 257728 → "257.7K". */
export function humanCount(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e12) return `${(n / 1e12).toFixed(2)}T`;
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (a >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd())
    .join('\n');
}

/** The report as text lines (also used by tests). */
export function formatParameterCount(title: string, p: ParameterCount): string {
  const rows: string[][] = [['component', 'total', '', 'activated', '']];
  for (const c of COMPONENTS) {
    if (c === 'mtp' || (p.components[c] === 0 && p.activatedComponents[c] === 0)) continue;
    rows.push([c, withSeparators(p.components[c]), humanCount(p.components[c]), withSeparators(p.activatedComponents[c]), humanCount(p.activatedComponents[c])]);
  }
  rows.push(['', '', '', '', '']);
  rows.push(['total (main model)', withSeparators(p.total), humanCount(p.total), withSeparators(p.activated), humanCount(p.activated)]);
  rows.push(['  without input embedding', withSeparators(p.totalWithoutEmbedding), humanCount(p.totalWithoutEmbedding), withSeparators(p.activatedWithoutEmbedding), humanCount(p.activatedWithoutEmbedding)]);
  const noEH = p.total - p.components.embedding - p.components.lm_head;
  rows.push(['  without embedding and lm_head', withSeparators(noEH), humanCount(noEH), withSeparators(p.activatedWithoutEmbeddingAndHead), humanCount(p.activatedWithoutEmbeddingAndHead)]);
  if (p.mtp.modules > 0) {
    rows.push(['', '', '', '', '']);
    rows.push([`MTP (${p.mtp.modules} module${p.mtp.modules > 1 ? 's' : ''}, apart)`, withSeparators(p.mtp.total), humanCount(p.mtp.total), withSeparators(p.mtp.activated), humanCount(p.mtp.activated)]);
    rows.push(['  + stored embed/head copies', withSeparators(p.mtp.total + p.mtp.sharedCopies), humanCount(p.mtp.total + p.mtp.sharedCopies), '', '']);
    rows.push(['main + MTP', withSeparators(p.total + p.mtp.total), humanCount(p.total + p.mtp.total), '', '']);
  }
  const notes: string[] = [];
  if (p.routerBias > 0) notes.push(`counts mlp.gate.e_score_correction_bias (${withSeparators(p.routerBias)}), a checkpoint tensor that transformers keeps as a buffer`);
  notes.push('activated = per token: all but the routed experts not chosen (embedding and lm_head included)');
  if (p.mtp.modules > 0) notes.push('MTP shares embedding and output head with the main model; their stored copies are not counted');
  return `${title}\n\n${table(rows)}\n\n${notes.map((n) => `note: ${n}`).join('\n')}\n`;
}

/** Prints parameter accounting for a config.json (or a checkpoint directory). */
export async function paramsCommand(configPath: string, opts: { json?: boolean } = {}): Promise<void> {
  const config = loadConfig(configPath);
  const p = countParameters(config);
  if (opts.json) {
    process.stdout.write(JSON.stringify({ config: configPath, model_type: config.model_type, ...p }, null, 2) + '\n');
    return;
  }
  process.stdout.write(formatParameterCount(`${configPath} (${config.model_type})`, p));
}
