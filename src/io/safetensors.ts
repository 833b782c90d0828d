// safetensors: read (lazily, with positioned reads) and write (atomically), single files and
// sharded checkpoints with a `model.safetensors.index.json`, as Hugging Face writes them.
//
// File layout (https://github.com/huggingface/safetensors):
//   [8 bytes: N, u64 little-endian] [N bytes: JSON header, padded with spaces] [data ...]
//   header = { "__metadata__"?: {string: string},
//              "<name>": { "dtype": "F32", "shape": [..], "data_offsets": [begin, end] }, ... }
//   data_offsets are relative to the first byte after the header; tensors are row-major,
//   little-endian.
//
// Reading never loads a whole file: `openSafetensors` reads only the header(s); each
// `readF32` / `readI32` / ... does one positioned read of that tensor's bytes.
//
// fp8 block dequantisation (official DeepSeek-V3 checkpoints). A linear weight is stored as
//   `<name>`            F8_E4M3 [out, in]
//   `<name>_scale_inv`  F32     [ceil(out/128), ceil(in/128)]
// and the real weight is w[i, j] = fp8(w[i, j]) * scale_inv[floor(i/128), floor(j/128)]
// (DeepSeek's fp8_cast_bf16.py `weight_dequant`). `readWeightF32(name)` does exactly this when
// the companion exists (the block size may be overridden, e.g. from quantization_config's
// weight_block_size); for any other tensor it is `readF32`.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Every dtype string the safetensors format defines that we can decode. */
export type Dtype =
  | 'F64' | 'F32' | 'F16' | 'BF16'
  | 'I64' | 'I32' | 'I16' | 'I8'
  | 'U64' | 'U32' | 'U16' | 'U8'
  | 'BOOL' | 'F8_E4M3' | 'F8_E5M2';

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Readonly<Record<Dtype, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2,
  I64: 8, I32: 4, I16: 2, I8: 1,
  U64: 8, U32: 4, U16: 2, U8: 1,
  BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
};

const INTEGER_DTYPES: ReadonlySet<Dtype> = new Set<Dtype>([
  'I64', 'I32', 'I16', 'I8', 'U64', 'U32', 'U16', 'U8', 'BOOL',
]);

/** The safetensors reference implementation refuses headers above 100 MB; so do we. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** Default fp8 block size of DeepSeek-V3's weights (quantization_config.weight_block_size). */
export const FP8_BLOCK = 128;

/** An error at the checkpoint boundary; the message always names the file. */
export class SafetensorsError extends Error {
  constructor(
    message: string,
    readonly file: string,
    readonly tensor?: string,
  ) {
    super(message);
    this.name = 'SafetensorsError';
  }
}

function fail(file: string, problem: string, tensor?: string): never {
  const where = tensor === undefined ? file : `${file}: tensor '${tensor}'`;
  throw new SafetensorsError(`safetensors ${where}: ${problem}`, file, tensor);
}

if (os.endianness() !== 'LE') {
  throw new Error('r1ts safetensors: a little-endian host is required');
}

// ---------------------------------------------------------------------------------------------
// Header parsing

/** Where one tensor lives, with absolute byte offsets into its file. */
export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** the file holding it */
  file: string;
  /** absolute byte offset of the first byte in `file` */
  begin: number;
  /** absolute byte offset one past the last byte in `file` */
  end: number;
}

/** One parsed file header. */
export interface SafetensorsHeader {
  file: string;
  fileSize: number;
  /** 8 + header length: absolute offset where the data section starts */
  dataStart: number;
  metadata: Record<string, string>;
  tensors: Map<string, TensorInfo>;
}

function isDtype(s: unknown): s is Dtype {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BYTES, s);
}

function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function readExactly(fd: number, file: string, buf: Uint8Array, position: number, what: string): void {
  // fs.readSync reads at most 2 GiB - 1 at a time; loop.
  let done = 0;
  const CHUNK = 1 << 30;
  while (done < buf.length) {
    const len = Math.min(CHUNK, buf.length - done);
    const n = fs.readSync(fd, buf, done, len, position + done);
    if (n === 0) fail(file, `unexpected end of file while reading ${what} (at byte ${position + done})`);
    done += n;
  }
}

/** Reads and validates the header of one .safetensors file (only the header is read). */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    fail(file, `cannot open: ${(e as Error).message}`);
  }
  try {
    const fileSize = fs.fstatSync(fd).size;
    if (fileSize < 8) fail(file, `file is ${fileSize} bytes, too short for the 8-byte header length`);
    const lenBuf = new Uint8Array(8);
    readExactly(fd, file, lenBuf, 0, 'the header length');
    const n64 = new DataView(lenBuf.buffer).getBigUint64(0, true);
    if (n64 > BigInt(MAX_HEADER_BYTES)) {
      fail(file, `header length ${n64} is absurd (over ${MAX_HEADER_BYTES} bytes; file is ${fileSize} bytes) — not a safetensors file?`);
    }
    const n = Number(n64);
    if (8 + n > fileSize) {
      fail(file, `header length ${n} runs past the end of the file (file is ${fileSize} bytes)`);
    }
    const hbuf = new Uint8Array(n);
    readExactly(fd, file, hbuf, 8, 'the header');
    return parseHeaderBytes(file, fileSize, hbuf);
  } finally {
    fs.closeSync(fd);
  }
}

function parseHeaderBytes(file: string, fileSize: number, hbuf: Uint8Array): SafetensorsHeader {
  const dataStart = 8 + hbuf.length;
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(hbuf));
  } catch (e) {
    fail(file, `header is not valid JSON: ${(e as Error).message}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    fail(file, 'header is not a JSON object');
  }
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  const dataSize = fileSize - dataStart;
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null) continue;
      if (typeof raw !== 'object' || Array.isArray(raw)) fail(file, '__metadata__ is not an object');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        metadata[k] = typeof v === 'string' ? v : JSON.stringify(v);
      }
      continue;
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      fail(file, 'header entry is not an object', name);
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!isDtype(e.dtype)) {
      fail(file, `unknown dtype ${JSON.stringify(e.dtype)} (known: ${Object.keys(DTYPE_BYTES).join(', ')})`, name);
    }
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(file, `shape ${JSON.stringify(e.shape)} is not a list of non-negative integers`, name);
    }
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(file, `data_offsets ${JSON.stringify(off)} is not a pair of non-negative integers`, name);
    }
    const [b, en] = off as [number, number];
    const shape = e.shape as number[];
    if (en < b) fail(file, `data_offsets [${b}, ${en}] end before they begin`, name);
    const need = numelOf(shape) * DTYPE_BYTES[e.dtype];
    if (en - b !== need) {
      fail(file, `data_offsets [${b}, ${en}] span ${en - b} bytes but ${e.dtype} ${fmtShape(shape)} needs ${need}`, name);
    }
    if (en > dataSize) {
      fail(file, `data_offsets [${b}, ${en}] run past the end of the file (data section is ${dataSize} bytes, file ${fileSize})`, name);
    }
    tensors.set(name, { name, dtype: e.dtype, shape: shape.slice(), file, begin: dataStart + b, end: dataStart + en });
  }
  // Overlap check: sort by begin, each must start at or after the previous end.
  const sorted = [...tensors.values()].filter((t) => t.end > t.begin).sort((a, c) => a.begin - c.begin);
  for (let i = 1; i < sorted.length; i++) {
    const p = sorted[i - 1]!;
    const t = sorted[i]!;
    if (t.begin < p.end) {
      fail(file, `data_offsets [${t.begin - dataStart}, ${t.end - dataStart}] overlap those of '${p.name}' [${p.begin - dataStart}, ${p.end - dataStart}]`, t.name);
    }
  }
  return { file, fileSize, dataStart, metadata, tensors };
}

// ---------------------------------------------------------------------------------------------
// Element decoding

let f16Table: Float32Array | undefined;
/** f16 bit pattern → f32, all 65536 values (subnormals, inf, NaN exact). */
function f16ToF32Table(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    let v: number;
    if (e === 0) v = m * 2 ** -24;
    else if (e === 31) v = m === 0 ? Infinity : NaN;
    else v = (1 + m / 1024) * 2 ** (e - 15);
    t[h] = s * v;
  }
  f16Table = t;
  return t;
}

let e4m3Table: Float32Array | undefined;
/**
 * fp8 e4m3fn (the "fn" variant DeepSeek and torch.float8_e4m3fn use): 1 sign, 4 exponent
 * (bias 7), 3 mantissa bits; no infinities; S.1111.111 is NaN; max ±448; exponent 0 encodes
 * subnormals m/8 · 2^-6.
 */
export function fp8E4M3Table(): Float32Array {
  if (e4m3Table) return e4m3Table;
  const t = new Float32Array(256);
  for (let b = 0; b < 256; b++) {
    const s = b & 0x80 ? -1 : 1;
    const e = (b >> 3) & 0xf;
    const m = b & 0x7;
    let v: number;
    if (e === 0xf && m === 0x7) v = NaN;
    else if (e === 0) v = (m / 8) * 2 ** -6;
    else v = (1 + m / 8) * 2 ** (e - 7);
    t[b] = s * v;
  }
  e4m3Table = t;
  return t;
}

let e5m2Table: Float32Array | undefined;
/** fp8 e5m2: the top byte of an IEEE f16 (inf and NaN as in f16). */
function fp8E5M2Table(): Float32Array {
  if (e5m2Table) return e5m2Table;
  const f16 = f16ToF32Table();
  const t = new Float32Array(256);
  for (let b = 0; b < 256; b++) t[b] = f16[b << 8]!;
  e5m2Table = t;
  return t;
}

const cvtF32 = new Float32Array(1);
const cvtU32 = new Uint32Array(cvtF32.buffer);

/** f32 → bf16 bits, round to nearest even; NaN stays a (quiet) NaN. */
export function f32ToBf16Bits(x: number): number {
  cvtF32[0] = x;
  const bits = cvtU32[0]!;
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) return ((bits >>> 16) & 0x8000) | 0x7fc0;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** f32 → f16 bits, round to nearest even, with f16 subnormals, overflow to ±inf, NaN kept. */
export function f32ToF16Bits(x: number): number {
  cvtF32[0] = x;
  const bits = cvtU32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal (2^-25): rounds to ±0
    const m = mant | 0x800000;
    const shift = 14 - e; // 14..24
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) === 1)) h++;
    return sign | h; // a carry into 0x400 is the smallest normal, correctly encoded
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++; // a carry may reach 0x7c00 = inf
  return sign | h;
}

/** bf16 bits → f32. */
export function bf16BitsToF32(h: number): number {
  cvtU32[0] = (h & 0xffff) << 16;
  return cvtF32[0]!;
}

/** f16 bits → f32. */
export function f16BitsToF32(h: number): number {
  return f16ToF32Table()[h & 0xffff]!;
}

/** Decodes raw little-endian bytes of `dtype` into f32. */
export function decodeToF32(dtype: Dtype, bytes: Uint8Array, out?: Float32Array): Float32Array {
  const n = bytes.length / DTYPE_BYTES[dtype];
  const o = out ?? new Float32Array(n);
  const buf = bytes.buffer;
  const off = bytes.byteOffset;
  // Aligned typed views need the byte offset to be a multiple of the element size; copy if not.
  const aligned = (k: number): ArrayBuffer | SharedArrayBuffer =>
    off % k === 0 ? buf : bytes.slice().buffer;
  const base = (k: number): number => (off % k === 0 ? off : 0);
  switch (dtype) {
    case 'F32': o.set(new Float32Array(aligned(4), base(4), n)); break;
    case 'F64': { const v = new Float64Array(aligned(8), base(8), n); for (let i = 0; i < n; i++) o[i] = v[i]!; break; }
    case 'F16': { const t = f16ToF32Table(); const v = new Uint16Array(aligned(2), base(2), n); for (let i = 0; i < n; i++) o[i] = t[v[i]!]!; break; }
    case 'BF16': {
      const v = new Uint16Array(aligned(2), base(2), n);
      const u = new Uint32Array(o.buffer, o.byteOffset, n);
      for (let i = 0; i < n; i++) u[i] = v[i]! << 16;
      break;
    }
    case 'F8_E4M3': { const t = fp8E4M3Table(); for (let i = 0; i < n; i++) o[i] = t[bytes[i]!]!; break; }
    case 'F8_E5M2': { const t = fp8E5M2Table(); for (let i = 0; i < n; i++) o[i] = t[bytes[i]!]!; break; }
    case 'I64': { const v = new BigInt64Array(aligned(8), base(8), n); for (let i = 0; i < n; i++) o[i] = Number(v[i]!); break; }
    case 'U64': { const v = new BigUint64Array(aligned(8), base(8), n); for (let i = 0; i < n; i++) o[i] = Number(v[i]!); break; }
    case 'I32': o.set(new Int32Array(aligned(4), base(4), n)); break;
    case 'U32': o.set(new Uint32Array(aligned(4), base(4), n)); break;
    case 'I16': o.set(new Int16Array(aligned(2), base(2), n)); break;
    case 'U16': o.set(new Uint16Array(aligned(2), base(2), n)); break;
    case 'I8': o.set(new Int8Array(buf, off, n)); break;
    case 'U8': o.set(bytes); break;
    case 'BOOL': for (let i = 0; i < n; i++) o[i] = bytes[i] ? 1 : 0; break;
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// Reader

/** Names near `name` (same prefix/suffix, small edit distance), for "missing tensor" errors. */
export function nearNames(name: string, keys: Iterable<string>, count = 5): string[] {
  const scored: Array<[number, string]> = [];
  for (const k of keys) {
    let p = 0;
    while (p < k.length && p < name.length && k[p] === name[p]) p++;
    let s = 0;
    while (s < k.length - p && s < name.length - p && k[k.length - 1 - s] === name[name.length - 1 - s]) s++;
    scored.push([-(p + s) + Math.abs(k.length - name.length) * 0.5, k]);
  }
  scored.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : 1));
  const pool = scored.slice(0, 50).map(([, k]) => k);
  return pool
    .map((k) => [levenshtein(name, k), k] as const)
    .sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : 1))
    .slice(0, count)
    .map(([, k]) => k);
}

function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export interface ReadWeightOptions {
  /** fp8 block size [rows, cols]; default [128, 128] (quantization_config.weight_block_size). */
  blockSize?: [number, number];
}

/**
 * A lazily read safetensors checkpoint: one file, or several shards joined by an index.
 * Headers are parsed on open (index: on first touch of each shard); tensor bytes are read
 * on demand with positioned reads. Call `close()` to release file descriptors.
 */
export class SafetensorsReader {
  /** the path given to openSafetensors (file, directory or index.json) */
  readonly path: string;
  /** `__metadata__` (single file, or merged over shards), or the index's `metadata` */
  readonly metadata: Record<string, string | number>;
  /** every .safetensors file this checkpoint spans */
  readonly files: string[];

  private readonly weightMap: Map<string, string>; // tensor → file
  private readonly headers = new Map<string, SafetensorsHeader>();
  private readonly fds = new Map<string, number>();

  constructor(pathGiven: string, weightMap: Map<string, string>, headers: SafetensorsHeader[], metadata: Record<string, string | number>) {
    this.path = pathGiven;
    this.weightMap = weightMap;
    for (const h of headers) this.headers.set(h.file, h);
    this.files = [...new Set(weightMap.values())];
    for (const h of headers) if (!this.files.includes(h.file)) this.files.push(h.file);
    this.metadata = metadata;
  }

  /** All tensor names, in file order (sharded: index order). */
  keys(): string[] {
    return [...this.weightMap.keys()];
  }

  has(name: string): boolean {
    return this.weightMap.has(name);
  }

  /** dtype, shape and location of a tensor; throws naming near names if it is missing. */
  info(name: string): TensorInfo {
    const file = this.weightMap.get(name);
    if (file === undefined) {
      const near = nearNames(name, this.weightMap.keys());
      fail(this.path, `not found (${this.weightMap.size} tensors${near.length ? `; nearest names: ${near.join(', ')}` : ''})`, name);
    }
    const h = this.header(file);
    const t = h.tensors.get(name);
    if (!t) fail(file, `listed in the index ${this.path} but absent from this shard`, name);
    return t;
  }

  /** Raw little-endian bytes of a tensor (a fresh copy). */
  readBytes(name: string, expectedShape?: readonly number[]): Uint8Array {
    const t = this.info(name);
    this.checkShape(t, expectedShape);
    const out = new Uint8Array(t.end - t.begin);
    readExactly(this.fd(t.file), t.file, out, t.begin, `tensor '${name}'`);
    return out;
  }

  /** A tensor as f32, from any dtype (ints converted, fp8 decoded without scale). */
  readF32(name: string, expectedShape?: readonly number[]): Float32Array {
    const t = this.info(name);
    this.checkShape(t, expectedShape);
    const n = numelOf(t.shape);
    if (t.dtype === 'F32') {
      const out = new Float32Array(n);
      readExactly(this.fd(t.file), t.file, new Uint8Array(out.buffer), t.begin, `tensor '${name}'`);
      return out;
    }
    const bytes = new Uint8Array(t.end - t.begin);
    readExactly(this.fd(t.file), t.file, bytes, t.begin, `tensor '${name}'`);
    return decodeToF32(t.dtype, bytes);
  }

  /**
   * A weight as f32, dequantising fp8 blocks when `<name>_scale_inv` exists:
   * w[i, j] = fp8(w[i, j]) * scale_inv[floor(i / bs0), floor(j / bs1)], bs = 128 × 128 unless
   * `opts.blockSize` says otherwise. Other tensors: same as readF32. An fp8 tensor without a
   * scale is an error here (use readF32 for raw fp8 values).
   */
  readWeightF32(name: string, expectedShape?: readonly number[], opts: ReadWeightOptions = {}): Float32Array {
    const t = this.info(name);
    if (t.dtype !== 'F8_E4M3' && t.dtype !== 'F8_E5M2') return this.readF32(name, expectedShape);
    const sname = `${name}_scale_inv`;
    if (!this.has(sname)) {
      fail(t.file, `${t.dtype} weight without a companion '${sname}' to dequantise it (readF32 gives the raw fp8 values)`, name);
    }
    this.checkShape(t, expectedShape);
    if (t.shape.length !== 2) fail(t.file, `fp8 block dequantisation needs a 2-D weight, got ${fmtShape(t.shape)}`, name);
    const [bs0, bs1] = opts.blockSize ?? [FP8_BLOCK, FP8_BLOCK];
    const [rows, cols] = t.shape as [number, number];
    const sb0 = Math.ceil(rows / bs0);
    const sb1 = Math.ceil(cols / bs1);
    const si = this.info(sname);
    if (!sameShape(si.shape, [sb0, sb1])) {
      fail(si.file, `scale shape ${fmtShape(si.shape)} does not match weight '${name}' ${fmtShape(t.shape)} in blocks of ${bs0}×${bs1} (expected ${fmtShape([sb0, sb1])})`, sname);
    }
    const scale = this.readF32(sname);
    const w = this.readF32(name);
    for (let i = 0; i < rows; i++) {
      const srow = Math.floor(i / bs0) * sb1;
      const wrow = i * cols;
      for (let j = 0; j < cols; j++) w[wrow + j]! *= scale[srow + Math.floor(j / bs1)]!;
    }
    return w;
  }

  /** True for a `<w>_scale_inv` tensor whose weight `<w>` is fp8 (it is folded into readWeightF32). */
  isQuantScale(name: string): boolean {
    if (!name.endsWith('_scale_inv')) return false;
    const w = name.slice(0, -'_scale_inv'.length);
    if (!this.has(w)) return false;
    const d = this.info(w).dtype;
    return d === 'F8_E4M3' || d === 'F8_E5M2';
  }

  /**
   * A tensor as int32, from any integer dtype (I64, I32, I16, I8, U64, U32, U16, U8, BOOL);
   * throws on a value outside the int32 range, and on float dtypes.
   */
  readI32(name: string, expectedShape?: readonly number[]): Int32Array {
    const t = this.info(name);
    if (!INTEGER_DTYPES.has(t.dtype)) fail(t.file, `dtype ${t.dtype} is not an integer type (readI32)`, name);
    const bytes = this.readBytes(name, expectedShape);
    const n = numelOf(t.shape);
    const out = new Int32Array(n);
    const buf = bytes.buffer;
    const check = (v: bigint | number, i: number): number => {
      if (v < -2147483648 || v > 2147483647) {
        fail(t.file, `value ${v} at flat index ${i} overflows int32`, name);
      }
      return Number(v);
    };
    switch (t.dtype) {
      case 'I64': { const v = new BigInt64Array(buf, 0, n); for (let i = 0; i < n; i++) out[i] = check(v[i]!, i); break; }
      case 'U64': { const v = new BigUint64Array(buf, 0, n); for (let i = 0; i < n; i++) out[i] = check(v[i]!, i); break; }
      case 'U32': { const v = new Uint32Array(buf, 0, n); for (let i = 0; i < n; i++) out[i] = check(v[i]!, i); break; }
      case 'I32': out.set(new Int32Array(buf, 0, n)); break;
      case 'I16': out.set(new Int16Array(buf, 0, n)); break;
      case 'U16': out.set(new Uint16Array(buf, 0, n)); break;
      case 'I8': out.set(new Int8Array(buf, 0, n)); break;
      case 'U8': out.set(bytes); break;
      case 'BOOL': for (let i = 0; i < n; i++) out[i] = bytes[i] ? 1 : 0; break;
      default: break;
    }
    return out;
  }

  /** A tensor as int64, from any integer dtype. */
  readI64(name: string, expectedShape?: readonly number[]): BigInt64Array {
    const t = this.info(name);
    if (t.dtype === 'I64') return new BigInt64Array(this.readBytes(name, expectedShape).buffer);
    if (t.dtype === 'U64') {
      const v = new BigUint64Array(this.readBytes(name, expectedShape).buffer);
      const out = new BigInt64Array(v.length);
      for (let i = 0; i < v.length; i++) {
        if (v[i]! > 0x7fffffffffffffffn) fail(t.file, `value ${v[i]} at flat index ${i} overflows int64`, name);
        out[i] = v[i]!;
      }
      return out;
    }
    const v = this.readI32(name, expectedShape);
    return BigInt64Array.from(v, (x) => BigInt(x));
  }

  /** Releases open file descriptors (the reader reopens them if used again). */
  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
  }

  private checkShape(t: TensorInfo, expected?: readonly number[]): void {
    if (expected && !sameShape(t.shape, expected)) {
      fail(t.file, `shape ${fmtShape(t.shape)} (${t.dtype}) but the caller expects ${fmtShape(expected)}`, t.name);
    }
  }

  private header(file: string): SafetensorsHeader {
    let h = this.headers.get(file);
    if (!h) {
      h = readSafetensorsHeader(file);
      this.headers.set(file, h);
    }
    return h;
  }

  private fd(file: string): number {
    let fd = this.fds.get(file);
    if (fd === undefined) {
      try {
        fd = fs.openSync(file, 'r');
      } catch (e) {
        fail(file, `cannot open: ${(e as Error).message}`);
      }
      this.fds.set(file, fd);
    }
    return fd;
  }
}

export const INDEX_NAME = 'model.safetensors.index.json';

/**
 * Opens a checkpoint: a `.safetensors` file, a `model.safetensors.index.json`, or a directory
 * (its index if present, else its `model.safetensors`, else all its `*.safetensors` files
 * joined, duplicates being an error). Only headers are read.
 */
export function openSafetensors(p: string): SafetensorsReader {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch (e) {
    fail(p, `cannot open: ${(e as Error).message}`);
  }
  if (st.isDirectory()) {
    const index = path.join(p, INDEX_NAME);
    if (fs.existsSync(index)) return openIndex(index);
    const single = path.join(p, 'model.safetensors');
    if (fs.existsSync(single)) return openFiles(p, [single]);
    const files = fs.readdirSync(p).filter((f) => f.endsWith('.safetensors')).sort().map((f) => path.join(p, f));
    if (files.length === 0) fail(p, `directory holds no ${INDEX_NAME}, model.safetensors or *.safetensors file`);
    return openFiles(p, files);
  }
  if (p.endsWith('.json')) return openIndex(p);
  return openFiles(p, [p]);
}

function openFiles(given: string, files: string[]): SafetensorsReader {
  const headers = files.map(readSafetensorsHeader);
  const map = new Map<string, string>();
  const metadata: Record<string, string> = {};
  for (const h of headers) {
    Object.assign(metadata, h.metadata);
    const byOffset = [...h.tensors.values()].sort((a, b) => a.begin - b.begin);
    for (const t of byOffset) {
      const prev = map.get(t.name);
      if (prev !== undefined) fail(h.file, `also present in ${prev}`, t.name);
      map.set(t.name, h.file);
    }
  }
  return new SafetensorsReader(given, map, headers, metadata);
}

function openIndex(indexPath: string): SafetensorsReader {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(indexPath, 'utf8'));
  } catch (e) {
    fail(indexPath, `index is not readable JSON: ${(e as Error).message}`);
  }
  const wm = (json as { weight_map?: unknown } | null)?.weight_map;
  if (wm === null || typeof wm !== 'object' || Array.isArray(wm)) fail(indexPath, 'index has no "weight_map" object');
  const dir = path.dirname(indexPath);
  const map = new Map<string, string>();
  const seen = new Set<string>();
  for (const [name, f] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof f !== 'string') fail(indexPath, `weight_map entry is not a file name: ${JSON.stringify(f)}`, name);
    const file = path.join(dir, f);
    if (!seen.has(file)) {
      if (!fs.existsSync(file)) fail(indexPath, `shard ${f} named by the weight_map does not exist`, name);
      seen.add(file);
    }
    map.set(name, file);
  }
  const meta = (json as { metadata?: unknown }).metadata;
  const metadata: Record<string, string | number> = {};
  if (meta && typeof meta === 'object' && !Array.isArray(meta)) {
    for (const [k, v] of Object.entries(meta as Record<string, unknown>)) {
      metadata[k] = typeof v === 'number' || typeof v === 'string' ? v : JSON.stringify(v);
    }
  }
  return new SafetensorsReader(indexPath, map, [], metadata);
}

// ---------------------------------------------------------------------------------------------
// Writer

/** dtypes the writer converts to from typed arrays. */
export type WriteDtype = 'F32' | 'BF16' | 'F16' | 'I64' | 'I32';

/**
 * A tensor to write. `data` is converted to `dtype`: Float32Array → F32/BF16/F16 (round to
 * nearest even); Int32Array or BigInt64Array → I32/I64 (range-checked). A Uint8Array is taken
 * as the raw little-endian bytes of any dtype (e.g. to copy an fp8 tensor through unchanged).
 */
export interface TensorToWrite {
  dtype: WriteDtype | Dtype;
  shape: number[];
  data: Float32Array | Int32Array | BigInt64Array | Uint8Array;
}

/** The default `__metadata__`: transformers refuses archives whose format is not pt/tf/flax/mlx. */
export const DEFAULT_METADATA: Readonly<Record<string, string>> = { format: 'pt' };

const WRITE_CHUNK = 1 << 20; // elements converted per write call

function tensorBytes(name: string, t: TensorToWrite, file: string): number {
  if (!isDtype(t.dtype)) fail(file, `unknown dtype ${JSON.stringify(t.dtype)}`, name);
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    fail(file, `shape ${JSON.stringify(t.shape)} is not a list of non-negative integers`, name);
  }
  const n = numelOf(t.shape);
  const bytes = n * DTYPE_BYTES[t.dtype];
  if (t.data instanceof Uint8Array) {
    if (t.data.length !== bytes) fail(file, `raw data is ${t.data.length} bytes but ${t.dtype} ${fmtShape(t.shape)} needs ${bytes}`, name);
    return bytes;
  }
  if (t.data.length !== n) fail(file, `data has ${t.data.length} elements but shape ${fmtShape(t.shape)} needs ${n}`, name);
  const ok =
    t.data instanceof Float32Array ? ['F32', 'BF16', 'F16'].includes(t.dtype)
    : ['I64', 'I32'].includes(t.dtype);
  if (!ok) fail(file, `cannot write ${t.data.constructor.name} as ${t.dtype} (floats: F32/BF16/F16; ints: I64/I32; or pass raw bytes as a Uint8Array)`, name);
  return bytes;
}

/** Encodes elements [from, to) of a tensor as little-endian bytes of its dtype. */
function encodeChunk(name: string, t: TensorToWrite, from: number, to: number, file: string): Uint8Array {
  const d = t.data;
  const n = to - from;
  if (d instanceof Uint8Array) return d.subarray(from, to); // raw: from/to are bytes here
  switch (t.dtype) {
    case 'F32': {
      const f = d as Float32Array;
      return new Uint8Array(f.buffer, f.byteOffset + from * 4, n * 4);
    }
    case 'BF16': case 'F16': {
      const f = d as Float32Array;
      const out = new Uint16Array(n);
      const conv = t.dtype === 'BF16' ? f32ToBf16Bits : f32ToF16Bits;
      for (let i = 0; i < n; i++) out[i] = conv(f[from + i]!);
      return new Uint8Array(out.buffer);
    }
    case 'I64': {
      if (d instanceof BigInt64Array) return new Uint8Array(d.buffer, d.byteOffset + from * 8, n * 8);
      const out = new BigInt64Array(n);
      for (let i = 0; i < n; i++) out[i] = BigInt((d as Int32Array)[from + i]!);
      return new Uint8Array(out.buffer);
    }
    case 'I32': {
      if (d instanceof Int32Array) return new Uint8Array(d.buffer, d.byteOffset + from * 4, n * 4);
      const out = new Int32Array(n);
      const b = d as BigInt64Array;
      for (let i = 0; i < n; i++) {
        const v = b[from + i]!;
        if (v < -2147483648n || v > 2147483647n) fail(file, `value ${v} at flat index ${from + i} does not fit I32`, name);
        out[i] = Number(v);
      }
      return new Uint8Array(out.buffer);
    }
    default:
      fail(file, `cannot encode typed data as ${t.dtype}`, name);
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done);
}

/** Writes `bytes` to `file` atomically: `file.tmp-<pid>`, fsync, rename. */
function atomicWrite(file: string, body: (fd: number) => void): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    body(fd);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
  try {
    // Make the rename itself durable (best effort: not every platform can fsync a directory).
    const dfd = fs.openSync(path.dirname(file), 'r');
    try { fs.fsyncSync(dfd); } finally { fs.closeSync(dfd); }
  } catch { /* ignore */ }
}

/** Builds the header bytes (JSON, space-padded to a multiple of 8) for tensors in order. */
function buildHeader(file: string, names: string[], tensors: Record<string, TensorToWrite>, metadata: Record<string, string>): { header: Uint8Array; total: number } {
  const h: Record<string, unknown> = {};
  const meta = { ...DEFAULT_METADATA, ...metadata };
  for (const [k, v] of Object.entries(meta)) {
    if (typeof v !== 'string') fail(file, `__metadata__ value for '${k}' must be a string, got ${typeof v}`);
  }
  h['__metadata__'] = meta;
  let off = 0;
  for (const name of names) {
    if (name === '__metadata__') fail(file, 'a tensor may not be called __metadata__', name);
    const t = tensors[name]!;
    const b = tensorBytes(name, t, file);
    h[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + b] };
    off += b;
  }
  const json = new TextEncoder().encode(JSON.stringify(h));
  const padded = Math.ceil(json.length / 8) * 8;
  const header = new Uint8Array(8 + padded).fill(0x20, 8);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  return { header, total: off };
}

/**
 * Writes one .safetensors file atomically. Tensors are stored in the order given, contiguous,
 * after a header padded with spaces to a multiple of 8 bytes; `__metadata__` is
 * `{format: 'pt', ...metadata}` (string values only).
 */
export function writeSafetensors(file: string, tensors: Record<string, TensorToWrite>, metadata: Record<string, string> = {}): void {
  const names = Object.keys(tensors);
  const { header } = buildHeader(file, names, tensors, metadata);
  atomicWrite(file, (fd) => {
    writeAll(fd, header);
    for (const name of names) {
      const t = tensors[name]!;
      const n = t.data instanceof Uint8Array ? t.data.length : numelOf(t.shape);
      for (let i = 0; i < n; i += WRITE_CHUNK) writeAll(fd, encodeChunk(name, t, i, Math.min(n, i + WRITE_CHUNK), file));
    }
  });
}

/** Result of writeShardedSafetensors. */
export interface ShardedWriteResult {
  /** shard file paths, in order */
  files: string[];
  /** the index path, or null when everything fit in one `model.safetensors` */
  index: string | null;
  /** bytes of tensor data over all shards (the index's metadata.total_size) */
  totalSize: number;
}

/** Shard name as transformers writes it: model-00001-of-00003.safetensors. */
export function shardName(i: number, n: number): string {
  return `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
}

/**
 * Writes tensors into `dir` as transformers' save_pretrained does: a single
 * `model.safetensors` if all fit within `maxShardBytes`, else shards
 * `model-0000i-of-0000n.safetensors` (tensors in the order given, a new shard started when the
 * next tensor would overflow the current one; a tensor larger than the limit gets its own
 * shard) plus `model.safetensors.index.json` = {metadata: {total_size}, weight_map}.
 */
export function writeShardedSafetensors(
  dir: string,
  tensors: Record<string, TensorToWrite>,
  maxShardBytes: number,
  metadata: Record<string, string> = {},
): ShardedWriteResult {
  if (!(maxShardBytes > 0)) fail(dir, `maxShardBytes must be positive, got ${maxShardBytes}`);
  fs.mkdirSync(dir, { recursive: true });
  const shards: string[][] = [];
  let cur: string[] = [];
  let curBytes = 0;
  let total = 0;
  for (const name of Object.keys(tensors)) {
    const b = tensorBytes(name, tensors[name]!, dir);
    if (cur.length > 0 && curBytes + b > maxShardBytes) {
      shards.push(cur);
      cur = [];
      curBytes = 0;
    }
    cur.push(name);
    curBytes += b;
    total += b;
  }
  if (cur.length > 0 || shards.length === 0) shards.push(cur);
  const pick = (names: string[]): Record<string, TensorToWrite> =>
    Object.fromEntries(names.map((n) => [n, tensors[n]!]));
  if (shards.length === 1) {
    const f = path.join(dir, 'model.safetensors');
    writeSafetensors(f, tensors, metadata);
    return { files: [f], index: null, totalSize: total };
  }
  const files: string[] = [];
  const weightMap: Record<string, string> = {};
  shards.forEach((names, i) => {
    const base = shardName(i, shards.length);
    const f = path.join(dir, base);
    writeSafetensors(f, pick(names), metadata);
    files.push(f);
    for (const n of names) weightMap[n] = base;
  });
  const sortedMap = Object.fromEntries(Object.keys(weightMap).sort().map((k) => [k, weightMap[k]!]));
  const index = path.join(dir, INDEX_NAME);
  const body = new TextEncoder().encode(JSON.stringify({ metadata: { total_size: total }, weight_map: sortedMap }, null, 2) + '\n');
  atomicWrite(index, (fd) => writeAll(fd, body));
  return { files, index, totalSize: total };
}
