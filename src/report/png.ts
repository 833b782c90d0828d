// SVG → PNG.
//
// The renderer is resvg (@resvg/resvg-js): a Rust SVG renderer whose prebuilt binary ships inside
// an npm package per platform (optionalDependencies; nothing is downloaded at install time), with
// anti-aliased shapes and real font shaping. Text needs a font file: we pass DejaVu Sans from the
// `dejavu-fonts-ttf` npm package, so PNGs look the same on a bare machine with no system fonts
// (system fonts are only a fallback when that package is missing).
//
// The module loads resvg lazily, so importing the report code never fails; `pngSupport()` says
// whether PNGs can be made here and why not.

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { ResvgRenderOptions } from '@resvg/resvg-js';
import { writeFileAtomic } from './fsutil.js';

type ResvgModule = typeof import('@resvg/resvg-js');

const require = createRequire(import.meta.url);
let loaded: { mod: ResvgModule | null; error: string | null } | null = null;
let fonts: string[] | null = null;

function resvg(): ResvgModule {
  if (!loaded) {
    try {
      loaded = { mod: require('@resvg/resvg-js') as ResvgModule, error: null };
    } catch (err) {
      loaded = { mod: null, error: (err as Error).message.split('\n')[0] };
    }
  }
  if (!loaded.mod) {
    throw new Error(`PNG output needs @resvg/resvg-js with its binary for ${process.platform}-${process.arch} ` +
      `(npm install, without --omit=optional): ${loaded.error}`);
  }
  return loaded.mod;
}

const SYSTEM_FONT_DIRS = ['/usr/share/fonts/truetype/dejavu', '/usr/share/fonts/TTF', '/usr/share/fonts/dejavu'];

/** The font files given to resvg: DejaVu Sans (regular + bold) from npm, else from the system. */
export function fontFiles(): string[] {
  if (fonts) return fonts;
  const want = ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf'];
  const dirs: string[] = [];
  try { dirs.push(path.join(path.dirname(require.resolve('dejavu-fonts-ttf/package.json')), 'ttf')); } catch { /* not installed */ }
  dirs.push(...SYSTEM_FONT_DIRS);
  for (const dir of dirs) {
    const files = want.map((f) => path.join(dir, f)).filter((f) => fs.existsSync(f));
    if (files.length) return (fonts = files);
  }
  return (fonts = []);
}

export interface PngSupport {
  ok: boolean;
  renderer: 'resvg' | null;
  /** Font files handed to the renderer; empty means system fonts (text may be missing). */
  fonts: string[];
  reason?: string;
}

/** Whether PNGs can be rendered on this machine, and with which fonts. */
export function pngSupport(): PngSupport {
  try {
    resvg();
  } catch (err) {
    return { ok: false, renderer: null, fonts: fontFiles(), reason: (err as Error).message };
  }
  return { ok: true, renderer: 'resvg', fonts: fontFiles() };
}

export interface PngOptions {
  /** Pixel density: 2 makes a PNG twice the SVG's width and height (default 1). */
  scale?: number;
  /** Background for transparent areas (default: none; plotSvg paints its own white). */
  background?: string;
}

/** Rasterises an SVG document to PNG bytes. */
export function svgToPng(svg: string, opts: PngOptions = {}): Buffer {
  const { Resvg } = resvg();
  const files = fontFiles();
  const scale = opts.scale ?? 1;
  if (!(scale > 0 && scale <= 16)) throw new RangeError(`scale must be in (0, 16], got ${opts.scale}`);
  const options: ResvgRenderOptions = {
    font: {
      fontFiles: files,
      loadSystemFonts: files.length === 0,
      defaultFontFamily: 'DejaVu Sans',
      sansSerifFamily: 'DejaVu Sans',
      defaultFontSize: 12,
    },
    fitTo: scale === 1 ? { mode: 'original' } : { mode: 'zoom', value: scale },
    textRendering: 1,
    shapeRendering: 2,
    logLevel: 'off',
  };
  if (opts.background) options.background = opts.background;
  return new Resvg(svg, options).render().asPng();
}

/** Renders `svg` and writes it to `file` atomically; returns the PNG's size in pixels. */
export function writePng(file: string, svg: string, opts: PngOptions = {}): { width: number; height: number } {
  const png = svgToPng(svg, opts);
  writeFileAtomic(file, png);
  return readPngSize(png);
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Checks the PNG signature and IHDR chunk and returns the image size; throws on anything else. */
export function readPngSize(png: Uint8Array): { width: number; height: number; bitDepth: number; colorType: number } {
  const b = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  if (b.length < 33 || !b.subarray(0, 8).equals(PNG_SIGNATURE)) throw new Error('not a PNG: bad signature');
  if (b.readUInt32BE(8) !== 13 || b.toString('latin1', 12, 16) !== 'IHDR') throw new Error('not a PNG: first chunk is not IHDR');
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20), bitDepth: b[24], colorType: b[25] };
}
