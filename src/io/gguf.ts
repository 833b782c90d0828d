// GGUF (version 3), the file format of llama.cpp: a writer, a small reader, and the export of
// Hugging Face checkpoints (Qwen2, Llama, DeepSeek-V3) into what llama.cpp loads.
//
// Layout of a GGUF file (all little-endian):
//
//   u32 magic "GGUF" | u32 version (3) | u64 tensor count | u64 metadata count
//   metadata:     string key | u32 value type | value          (× metadata count)
//   tensor infos: string name | u32 n_dims | u64 ne[n_dims] | u32 ggml type | u64 offset   (× tensor count)
//   padding to `general.alignment` (32 unless given)
//   tensor data:  each tensor at its offset (relative to the start of this section), aligned
//
// A string is a u64 byte length and UTF-8 bytes; an array is a u32 item type, a u64 count and
// the items. `ne` lists dimensions fastest-varying first, i.e. a PyTorch shape reversed: a
// Linear weight [out, in] is ne = [in, out].
//
// The export follows llama.cpp's naming (token_embd, blk.N.attn_q, ...) and its conversion
// script's conventions; where llama.cpp computes differently from Hugging Face the weights are
// rearranged here (see `permuteRotaryRows`). test/gguf.test.ts loads the exports of random Qwen2,
// Llama and DeepSeek-V3 models in llama.cpp (node-llama-cpp 3.21.1) and compares next-token
// log-probabilities (within 1e-5 in f32) and greedy tokens (identical) with ours.
//
// Not exported: Qwen2 sliding-window attention, rope types other than default/linear (plus llama3
// for Llama and YaRN for DeepSeek-V3), DeepSeek-V3 attention biases and softmax routing, and the
// MTP modules (llama.cpp's deepseek2 does not load them). llama.cpp's deepseek2 uses rms_norm_eps
// for the MLA-internal norms where transformers fixes 1e-6: the same for configs with eps 1e-6.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig, type DeepseekV3Config, type LlamaConfig, type ModelConfig, type Qwen2Config } from '../models/config.js';
import { f16BitsToF32, f32ToF16Bits, openSafetensors, type SafetensorsReader } from './safetensors.js';
import { DEEPSEEK_PATTERNS, LLAMA3_PATTERN } from '../tokenizer/pretokenize.js';
import { ropeFrequencies } from '../nn/rotary.js';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

// ---------------------------------------------------------------------------------------------
// Metadata values

/** The scalar value types of GGUF metadata (the names are ours; the codes are the format's). */
export type GgufScalarType = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'bool' | 'string' | 'u64' | 'i64' | 'f64';

const TYPE_CODE: Record<GgufScalarType | 'array', number> = {
  u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12,
};
const CODE_TYPE: (GgufScalarType | 'array')[] = ['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'string', 'array', 'u64', 'i64', 'f64'];

export type GgufScalar = number | bigint | boolean | string;

/** A typed metadata value. 64-bit integers may be given as numbers (safe integers) or bigints; they are read back as bigints. */
export type GgufValue =
  | { type: 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'f64'; value: number }
  | { type: 'u64' | 'i64'; value: number | bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'array'; itemType: GgufScalarType; value: GgufScalar[] };

/** Shorthands: `gv.u32(4)`, `gv.str('llama')`, `gv.arr('string', tokens)`. */
export const gv = {
  u8: (value: number): GgufValue => ({ type: 'u8', value }),
  i8: (value: number): GgufValue => ({ type: 'i8', value }),
  u16: (value: number): GgufValue => ({ type: 'u16', value }),
  i16: (value: number): GgufValue => ({ type: 'i16', value }),
  u32: (value: number): GgufValue => ({ type: 'u32', value }),
  i32: (value: number): GgufValue => ({ type: 'i32', value }),
  f32: (value: number): GgufValue => ({ type: 'f32', value }),
  f64: (value: number): GgufValue => ({ type: 'f64', value }),
  u64: (value: number | bigint): GgufValue => ({ type: 'u64', value }),
  i64: (value: number | bigint): GgufValue => ({ type: 'i64', value }),
  bool: (value: boolean): GgufValue => ({ type: 'bool', value }),
  str: (value: string): GgufValue => ({ type: 'string', value }),
  arr: (itemType: GgufScalarType, value: GgufScalar[]): GgufValue => ({ type: 'array', itemType, value }),
};

// ---------------------------------------------------------------------------------------------
// Tensor types

/** The ggml tensor types this module writes and reads. */
export type GgmlType = 'F32' | 'F16' | 'BF16';
const GGML_CODE: Record<GgmlType, number> = { F32: 0, F16: 1, BF16: 30 };
const GGML_BYTES: Record<GgmlType, number> = { F32: 4, F16: 2, BF16: 2 };
function ggmlTypeOf(code: number): GgmlType {
  const t = (Object.keys(GGML_CODE) as GgmlType[]).find((k) => GGML_CODE[k] === code);
  if (!t) throw new Error(`gguf: ggml tensor type ${code} is not supported by this reader (F32, F16, BF16 only)`);
  return t;
}

/** llama.cpp's general.file_type codes (LLAMA_FTYPE_*). */
export const FILE_TYPE = { ALL_F32: 0, MOSTLY_F16: 1 } as const;

/** llama.cpp's token types (tokenizer.ggml.token_type). */
export const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** A tensor to write. `shape` is the PyTorch shape (outermost first); `data` may be a thunk, called once when its bytes are written. */
export interface GgufTensorToWrite {
  name: string;
  shape: readonly number[];
  type: 'F32' | 'F16';
  data: Float32Array | (() => Float32Array);
}

// ---------------------------------------------------------------------------------------------
// Writer

/** A growable little-endian byte buffer. */
class ByteWriter {
  private buf = Buffer.alloc(1 << 16);
  length = 0;
  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const b = Buffer.alloc(size);
    this.buf.copy(b, 0, 0, this.length);
    this.buf = b;
  }
  u8(v: number): void { this.ensure(1); this.buf.writeUInt8(v, this.length); this.length += 1; }
  i8(v: number): void { this.ensure(1); this.buf.writeInt8(v, this.length); this.length += 1; }
  u16(v: number): void { this.ensure(2); this.buf.writeUInt16LE(v, this.length); this.length += 2; }
  i16(v: number): void { this.ensure(2); this.buf.writeInt16LE(v, this.length); this.length += 2; }
  u32(v: number): void { this.ensure(4); this.buf.writeUInt32LE(v, this.length); this.length += 4; }
  i32(v: number): void { this.ensure(4); this.buf.writeInt32LE(v, this.length); this.length += 4; }
  f32(v: number): void { this.ensure(4); this.buf.writeFloatLE(v, this.length); this.length += 4; }
  f64(v: number): void { this.ensure(8); this.buf.writeDoubleLE(v, this.length); this.length += 8; }
  u64(v: number | bigint): void { this.ensure(8); this.buf.writeBigUInt64LE(BigInt(v), this.length); this.length += 8; }
  i64(v: number | bigint): void { this.ensure(8); this.buf.writeBigInt64LE(BigInt(v), this.length); this.length += 8; }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.ensure(b.length);
    b.copy(this.buf, this.length);
    this.length += b.length;
  }
  zeros(n: number): void { this.ensure(n); this.buf.fill(0, this.length, this.length + n); this.length += n; }
  bytes(): Buffer { return this.buf.subarray(0, this.length); }
}

function checkInt(key: string, type: string, v: number | bigint, lo: bigint, hi: bigint): void {
  if (typeof v === 'number' && !Number.isInteger(v)) throw new Error(`gguf: ${key}: ${type} value ${v} is not an integer`);
  const b = BigInt(v);
  if (b < lo || b > hi) throw new Error(`gguf: ${key}: value ${v} is out of range for ${type}`);
}

const INT_RANGE: Record<string, [bigint, bigint]> = {
  u8: [0n, 255n], i8: [-128n, 127n], u16: [0n, 65535n], i16: [-32768n, 32767n],
  u32: [0n, 4294967295n], i32: [-2147483648n, 2147483647n],
  u64: [0n, 18446744073709551615n], i64: [-9223372036854775808n, 9223372036854775807n],
};

function writeScalar(w: ByteWriter, key: string, type: GgufScalarType, v: GgufScalar): void {
  const range = INT_RANGE[type];
  if (range) {
    if (typeof v !== 'number' && typeof v !== 'bigint') throw new Error(`gguf: ${key}: expected an integer for ${type}, got ${typeof v}`);
    checkInt(key, type, v, range[0], range[1]);
  }
  switch (type) {
    case 'u8': return w.u8(Number(v));
    case 'i8': return w.i8(Number(v));
    case 'u16': return w.u16(Number(v));
    case 'i16': return w.i16(Number(v));
    case 'u32': return w.u32(Number(v));
    case 'i32': return w.i32(Number(v));
    case 'u64': return w.u64(v as number | bigint);
    case 'i64': return w.i64(v as number | bigint);
    case 'f32':
    case 'f64':
      if (typeof v !== 'number') throw new Error(`gguf: ${key}: expected a number for ${type}, got ${typeof v}`);
      return type === 'f32' ? w.f32(v) : w.f64(v);
    case 'bool':
      if (typeof v !== 'boolean') throw new Error(`gguf: ${key}: expected a boolean, got ${typeof v}`);
      return w.u8(v ? 1 : 0);
    case 'string':
      if (typeof v !== 'string') throw new Error(`gguf: ${key}: expected a string, got ${typeof v}`);
      return w.str(v);
  }
}

function writeValue(w: ByteWriter, key: string, v: GgufValue): void {
  w.u32(TYPE_CODE[v.type]);
  if (v.type === 'array') {
    w.u32(TYPE_CODE[v.itemType]);
    w.u64(v.value.length);
    for (const x of v.value) writeScalar(w, key, v.itemType, x);
  } else {
    writeScalar(w, key, v.type, v.value);
  }
}

const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;
const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** f32 values as the little-endian bytes of `type`. */
function encodeTensor(data: Float32Array, type: 'F32' | 'F16'): Uint8Array {
  if (type === 'F32') return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = f32ToF16Bits(data[i]!);
  return new Uint8Array(out.buffer);
}

/**
 * Writes a GGUF v3 file: the metadata in the given order, then the tensors (each aligned to
 * `general.alignment` when the metadata sets it, 32 bytes otherwise). Tensor data given as a
 * thunk is produced one tensor at a time, so a large model never has to be in memory whole.
 * The file is written to a temporary name and renamed into place.
 */
export function writeGguf(file: string, metadata: ReadonlyMap<string, GgufValue> | Record<string, GgufValue>, tensors: readonly GgufTensorToWrite[]): void {
  const entries = metadata instanceof Map ? [...metadata.entries()] : Object.entries(metadata);
  const alignEntry = entries.find(([k]) => k === 'general.alignment');
  const alignment = alignEntry ? Number(alignEntry[1].value) : GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || alignment % 8 !== 0) throw new Error(`gguf: general.alignment must be a positive multiple of 8, got ${alignment}`);
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`gguf: duplicate tensor name ${t.name}`);
    names.add(t.name);
    if (Buffer.byteLength(t.name, 'utf8') >= 64) throw new Error(`gguf: tensor name ${t.name} is longer than ggml's 63 bytes`);
    if (t.shape.length < 1 || t.shape.length > 4) throw new Error(`gguf: tensor ${t.name} has ${t.shape.length} dimensions (1 to 4 allowed)`);
  }

  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(tensors.length);
  w.u64(entries.length);
  for (const [key, value] of entries) {
    w.str(key);
    writeValue(w, key, value);
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    w.str(t.name);
    w.u32(t.shape.length);
    for (let i = t.shape.length - 1; i >= 0; i--) w.u64(t.shape[i]!);
    w.u32(GGML_CODE[t.type]);
    w.u64(offset);
    offsets.push(offset);
    offset = alignUp(offset + numel(t.shape) * GGML_BYTES[t.type], alignment);
  }
  w.zeros(alignUp(w.length, alignment) - w.length);

  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    const header = w.bytes();
    fs.writeSync(fd, header);
    let pos = 0;
    const pad = Buffer.alloc(alignment);
    tensors.forEach((t, i) => {
      if (pos !== offsets[i]) fs.writeSync(fd, pad, 0, offsets[i]! - pos);
      const data = typeof t.data === 'function' ? t.data() : t.data;
      if (data.length !== numel(t.shape)) throw new Error(`gguf: tensor ${t.name}: ${data.length} values for shape [${t.shape.join(', ')}]`);
      const bytes = encodeTensor(data, t.type);
      fs.writeSync(fd, bytes);
      pos = offsets[i]! + bytes.length;
    });
    if (pos !== offset) fs.writeSync(fd, pad, 0, offset - pos);
    fs.closeSync(fd);
    fs.renameSync(tmp, file);
  } catch (e) {
    try { fs.closeSync(fd); } catch { /* already closed */ }
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Reader (whole file in memory; for tests and inspection)

export interface GgufTensorInfo {
  name: string;
  /** PyTorch order (outermost first): ne reversed. */
  shape: number[];
  type: GgmlType;
  /** Byte offset relative to the start of the data section. */
  offset: number;
}

export interface GgufFile {
  version: number;
  alignment: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  /** Absolute byte offset of the data section. */
  dataOffset: number;
  bytes: Buffer;
}

class ByteReader {
  pos = 0;
  constructor(readonly buf: Buffer, readonly source: string) {}
  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new Error(`gguf ${this.source}: truncated at byte ${this.pos} (needs ${n} more)`);
  }
  u8(): number { this.need(1); return this.buf.readUInt8(this.pos++); }
  i8(): number { this.need(1); return this.buf.readInt8(this.pos++); }
  u16(): number { this.need(2); const v = this.buf.readUInt16LE(this.pos); this.pos += 2; return v; }
  i16(): number { this.need(2); const v = this.buf.readInt16LE(this.pos); this.pos += 2; return v; }
  u32(): number { this.need(4); const v = this.buf.readUInt32LE(this.pos); this.pos += 4; return v; }
  i32(): number { this.need(4); const v = this.buf.readInt32LE(this.pos); this.pos += 4; return v; }
  f32(): number { this.need(4); const v = this.buf.readFloatLE(this.pos); this.pos += 4; return v; }
  f64(): number { this.need(8); const v = this.buf.readDoubleLE(this.pos); this.pos += 8; return v; }
  u64(): bigint { this.need(8); const v = this.buf.readBigUInt64LE(this.pos); this.pos += 8; return v; }
  i64(): bigint { this.need(8); const v = this.buf.readBigInt64LE(this.pos); this.pos += 8; return v; }
  size(what: string): number {
    const v = this.u64();
    if (v > BigInt(this.buf.length)) throw new Error(`gguf ${this.source}: ${what} ${v} is larger than the file`);
    return Number(v);
  }
  str(): string {
    const n = this.size('string length');
    this.need(n);
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
}

function readScalar(r: ByteReader, type: GgufScalarType): GgufScalar {
  switch (type) {
    case 'u8': return r.u8();
    case 'i8': return r.i8();
    case 'u16': return r.u16();
    case 'i16': return r.i16();
    case 'u32': return r.u32();
    case 'i32': return r.i32();
    case 'f32': return r.f32();
    case 'f64': return r.f64();
    case 'u64': return r.u64();
    case 'i64': return r.i64();
    case 'bool': return r.u8() !== 0;
    case 'string': return r.str();
  }
}

function typeOfCode(r: ByteReader, code: number): GgufScalarType | 'array' {
  const t = CODE_TYPE[code];
  if (t === undefined) throw new Error(`gguf ${r.source}: unknown value type ${code} at byte ${r.pos - 4}`);
  return t;
}

/** Parses a GGUF file (versions 2 and 3). Nested arrays are not supported. */
export function parseGguf(bytes: Buffer, source = '<buffer>'): GgufFile {
  const r = new ByteReader(bytes, source);
  const magic = r.u32();
  if (magic !== GGUF_MAGIC) throw new Error(`gguf ${source}: not a GGUF file (magic 0x${magic.toString(16)})`);
  const version = r.u32();
  if (version !== 2 && version !== 3) throw new Error(`gguf ${source}: version ${version} is not supported (2 and 3 are)`);
  const nTensors = r.size('tensor count');
  const nKv = r.size('metadata count');
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < nKv; i++) {
    const key = r.str();
    const type = typeOfCode(r, r.u32());
    if (type === 'array') {
      const itemType = typeOfCode(r, r.u32());
      if (itemType === 'array') throw new Error(`gguf ${source}: ${key}: nested arrays are not supported by this reader`);
      const n = r.size('array length');
      const value: GgufScalar[] = new Array(n);
      for (let j = 0; j < n; j++) value[j] = readScalar(r, itemType);
      metadata.set(key, { type: 'array', itemType, value });
    } else {
      metadata.set(key, { type, value: readScalar(r, type) } as GgufValue);
    }
  }
  const tensors: GgufTensorInfo[] = [];
  for (let i = 0; i < nTensors; i++) {
    const name = r.str();
    const nDims = r.u32();
    if (nDims > 4) throw new Error(`gguf ${source}: tensor ${name} has ${nDims} dimensions`);
    const ne: number[] = [];
    for (let d = 0; d < nDims; d++) ne.push(Number(r.u64()));
    const type = ggmlTypeOf(r.u32());
    const offset = Number(r.u64());
    tensors.push({ name, shape: ne.reverse(), type, offset });
  }
  const al = metadata.get('general.alignment');
  const alignment = al ? Number(al.value) : GGUF_DEFAULT_ALIGNMENT;
  const dataOffset = alignUp(r.pos, alignment);
  for (const t of tensors) {
    const end = dataOffset + t.offset + numel(t.shape) * GGML_BYTES[t.type];
    if (t.offset % alignment !== 0) throw new Error(`gguf ${source}: tensor ${t.name} offset ${t.offset} is not aligned to ${alignment}`);
    if (end > bytes.length) throw new Error(`gguf ${source}: tensor ${t.name} runs past the end of the file`);
  }
  return { version, alignment, metadata, tensors, dataOffset, bytes };
}

/** Reads and parses a GGUF file. */
export function readGguf(file: string): GgufFile {
  return parseGguf(fs.readFileSync(file), file);
}

/** One tensor of a parsed file as f32 values (PyTorch row-major order). */
export function ggufTensorF32(g: GgufFile, name: string): Float32Array {
  const t = g.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`gguf: no tensor ${name}`);
  const n = numel(t.shape);
  const start = g.dataOffset + t.offset;
  const out = new Float32Array(n);
  if (t.type === 'F32') {
    for (let i = 0; i < n; i++) out[i] = g.bytes.readFloatLE(start + 4 * i);
  } else {
    for (let i = 0; i < n; i++) {
      const h = g.bytes.readUInt16LE(start + 2 * i);
      out[i] = t.type === 'F16' ? f16BitsToF32(h) : new Float32Array(new Uint32Array([h << 16]).buffer)[0]!;
    }
  }
  return out;
}

/** A metadata value without its type (arrays as JS arrays, 64-bit integers as bigints). */
export function ggufValue(g: GgufFile, key: string): GgufScalar | GgufScalar[] | undefined {
  return g.metadata.get(key)?.value;
}

// ---------------------------------------------------------------------------------------------
// Rotary layouts

/**
 * Hugging Face's Llama stores each head's rotary dims half-split (dim i pairs with i + D/2);
 * llama.cpp's `llama` architecture rotates adjacent pairs (2i, 2i+1), like the original Meta
 * weights. Reordering the output rows of q_proj / k_proj (and their biases) per head from
 * [x_0..x_{D/2-1}, y_0..y_{D/2-1}] to [x_0, y_0, x_1, y_1, ...] makes the two agree: q·k per
 * head is unchanged because q and k are permuted alike. (convert_hf_to_gguf.py does the same.)
 *
 * `rows` is [heads × D] rows of `cols` values each; returns a new array. With `rotaryDims` <
 * D only the rows [offset, offset + rotaryDims) of each head block of `blockRows` are permuted.
 */
export function permuteRotaryRows(w: Float32Array, heads: number, cols: number, opts: { blockRows?: number; offset?: number; rotaryDims?: number } = {}): Float32Array {
  const total = w.length / cols;
  const blockRows = opts.blockRows ?? total / heads;
  const offset = opts.offset ?? 0;
  const R = opts.rotaryDims ?? blockRows;
  if (!Number.isInteger(blockRows) || blockRows * heads !== total) throw new Error(`permuteRotaryRows: ${total} rows are not ${heads} heads`);
  if (R % 2 !== 0 || offset + R > blockRows) throw new Error(`permuteRotaryRows: rotary dims ${R} at ${offset} do not fit a head of ${blockRows} rows`);
  const out = Float32Array.from(w);
  const half = R / 2;
  for (let h = 0; h < heads; h++) {
    const base = h * blockRows + offset;
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const src = base + j * half + i; // half-split position
        const dst = base + 2 * i + j; // interleaved position
        out.set(w.subarray(src * cols, (src + 1) * cols), dst * cols);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Tokenizer → tokenizer.ggml.*

/** llama.cpp's names of the pre-tokenizers whose split regex equals ours. */
export type LlamaCppPre = 'gpt-2' | 'llama-bpe' | 'deepseek-v3' | 'qwen2';

const QWEN2_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

type Json = Record<string, unknown>;

/** Which of llama.cpp's pre-tokenizers a tokenizer.json's pre_tokenizer is (byte-level BPE only). */
export function detectLlamaCppPre(preTokenizer: unknown): LlamaCppPre {
  const pt = preTokenizer as Json | null;
  if (!pt || typeof pt !== 'object') throw new Error('gguf export: tokenizer.json has no pre_tokenizer (byte-level BPE expected)');
  if (pt['type'] === 'ByteLevel') {
    if (pt['use_regex'] === false) throw new Error('gguf export: a ByteLevel pre-tokenizer without its regex has no llama.cpp equivalent');
    return 'gpt-2';
  }
  if (pt['type'] !== 'Sequence' || !Array.isArray(pt['pretokenizers'])) throw new Error(`gguf export: unsupported pre_tokenizer type ${JSON.stringify(pt['type'])}`);
  const parts = pt['pretokenizers'] as Json[];
  const last = parts.at(-1);
  if (!last || last['type'] !== 'ByteLevel') throw new Error('gguf export: the pre_tokenizer sequence does not end in ByteLevel');
  const patterns = parts.slice(0, -1).map((p) => {
    const re = (p['pattern'] as Json | undefined)?.['Regex'];
    if (p['type'] !== 'Split' || typeof re !== 'string' || p['behavior'] !== 'Isolated' || p['invert'] === true) {
      throw new Error(`gguf export: unsupported pre_tokenizer step ${JSON.stringify(p).slice(0, 120)}`);
    }
    return re;
  });
  const same = (a: readonly string[]) => a.length === patterns.length && a.every((x, i) => x === patterns[i]);
  if (same(DEEPSEEK_PATTERNS)) return 'deepseek-v3';
  if (same([LLAMA3_PATTERN])) return 'llama-bpe';
  if (same([QWEN2_PATTERN])) return 'qwen2';
  throw new Error(`gguf export: the split regex ${JSON.stringify(patterns).slice(0, 200)} is not one llama.cpp knows here (gpt-2, llama-bpe, deepseek-v3, qwen2); pass opts.pre to choose one`);
}

interface TokenizerMetadata {
  entries: [string, GgufValue][];
  vocabSize: number;
}

function tokenString(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json)['content'] === 'string') return (v as Json)['content'] as string;
  return null;
}

/**
 * The tokenizer.ggml.* entries for a byte-level BPE tokenizer folder (tokenizer.json +
 * tokenizer_config.json), padded with unused "[PADi]" tokens up to the model's vocab size.
 */
export function tokenizerMetadata(dir: string, modelVocab: number, config: ModelConfig, opts: { pre?: LlamaCppPre } = {}): TokenizerMetadata {
  const tj = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')) as Json;
  const tcFile = path.join(dir, 'tokenizer_config.json');
  const tc = fs.existsSync(tcFile) ? (JSON.parse(fs.readFileSync(tcFile, 'utf8')) as Json) : {};
  const model = tj['model'] as Json | undefined;
  if (!model || model['type'] !== 'BPE') throw new Error(`gguf export: ${dir}/tokenizer.json is not a BPE tokenizer (type ${JSON.stringify(model?.['type'])})`);
  if (model['byte_fallback'] === true) throw new Error('gguf export: byte_fallback BPE (SentencePiece style) is not supported; byte-level BPE only');
  const pre = opts.pre ?? detectLlamaCppPre(tj['pre_tokenizer']);

  const vocab = model['vocab'] as Record<string, number>;
  const byId: (string | undefined)[] = [];
  for (const [tok, id] of Object.entries(vocab)) byId[id] = tok;
  const special = new Set<number>();
  const userDefined = new Set<number>();
  for (const a of (tj['added_tokens'] as Json[] | undefined) ?? []) {
    const id = a['id'] as number;
    byId[id] = a['content'] as string;
    (a['special'] === false ? userDefined : special).add(id);
  }
  if (byId.length > modelVocab) throw new Error(`gguf export: the tokenizer has ${byId.length} tokens but the model only ${modelVocab}`);
  const tokens: string[] = [];
  const types: number[] = [];
  for (let i = 0; i < modelVocab; i++) {
    const t = byId[i];
    if (t === undefined) {
      tokens.push(`[PAD${i}]`);
      types.push(TOKEN_TYPE.UNUSED);
    } else {
      tokens.push(t);
      types.push(special.has(i) ? TOKEN_TYPE.CONTROL : userDefined.has(i) ? TOKEN_TYPE.USER_DEFINED : TOKEN_TYPE.NORMAL);
    }
  }
  const merges = ((model['merges'] as (string | [string, string])[] | undefined) ?? []).map((m) => (typeof m === 'string' ? m : `${m[0]} ${m[1]}`));

  const idOf = (v: unknown): number | null => {
    const s = tokenString(v);
    if (s === null) return null;
    const i = byId.indexOf(s);
    return i < 0 ? null : i;
  };
  const cfgId = (v: number | number[] | null): number | null => (Array.isArray(v) ? (v[0] ?? null) : v);
  const bos = idOf(tc['bos_token']) ?? cfgId(config.bos_token_id);
  const eos = idOf(tc['eos_token']) ?? cfgId(config.eos_token_id);
  const pad = idOf(tc['pad_token']) ?? config.pad_token_id;
  // BOS: tokenizer_config.json's add_bos_token when given, else whether the post-processor
  // template starts with a special token (how a tokenizer.json alone adds BOS).
  const pp = tj['post_processor'] as Json | null | undefined;
  const single = pp?.['type'] === 'TemplateProcessing' ? (pp['single'] as Json[] | undefined) : undefined;
  const addBos = typeof tc['add_bos_token'] === 'boolean' ? (tc['add_bos_token'] as boolean) : single?.[0]?.['SpecialToken'] !== undefined;

  const entries: [string, GgufValue][] = [
    ['tokenizer.ggml.model', gv.str('gpt2')],
    ['tokenizer.ggml.pre', gv.str(pre)],
    ['tokenizer.ggml.tokens', gv.arr('string', tokens)],
    ['tokenizer.ggml.token_type', gv.arr('i32', types)],
    ['tokenizer.ggml.merges', gv.arr('string', merges)],
  ];
  if (bos !== null) entries.push(['tokenizer.ggml.bos_token_id', gv.u32(bos)]);
  if (eos !== null) entries.push(['tokenizer.ggml.eos_token_id', gv.u32(eos)]);
  if (pad !== null) entries.push(['tokenizer.ggml.padding_token_id', gv.u32(pad)]);
  entries.push(['tokenizer.ggml.add_bos_token', gv.bool(addBos)]);
  entries.push(['tokenizer.ggml.add_eos_token', gv.bool(tc['add_eos_token'] === true)]);
  let chat = typeof tc['chat_template'] === 'string' ? (tc['chat_template'] as string) : null;
  const jinja = path.join(dir, 'chat_template.jinja');
  if (chat === null && fs.existsSync(jinja)) chat = fs.readFileSync(jinja, 'utf8');
  if (chat !== null) entries.push(['tokenizer.chat_template', gv.str(chat)]);
  return { entries, vocabSize: tokens.length };
}

// ---------------------------------------------------------------------------------------------
// Export

export interface ExportGgufOptions {
  /** Tensor type of the matrices (vectors, norms and the MoE router stay f32 as in llama.cpp's converter). Default 'f32'. */
  dtype?: 'f32' | 'f16';
  /** Folder with tokenizer.json (+ tokenizer_config.json); default the model folder. */
  tokenizerDir?: string;
  /** Override the detected llama.cpp pre-tokenizer name. */
  pre?: LlamaCppPre;
  /** general.name (default: the model folder's name). */
  name?: string;
}

export interface ExportGgufResult {
  file: string;
  architecture: string;
  tensors: number;
  bytes: number;
  /** Hugging Face tensors left out (MTP modules, duplicated head copies). */
  skipped: string[];
}

/** A tensor in the export plan: its GGUF name, PyTorch shape, and how to make its f32 data. */
interface Planned {
  name: string;
  shape: number[];
  matrix: boolean;
  data: () => Float32Array;
}

function ropeMetadata(arch: string, config: ModelConfig): [string, GgufValue][] {
  const r = config.rope;
  const out: [string, GgufValue][] = [[`${arch}.rope.freq_base`, gv.f32(r.theta)]];
  switch (r.type) {
    case 'default':
      return out;
    case 'linear':
      out.push([`${arch}.rope.scaling.type`, gv.str('linear')], [`${arch}.rope.scaling.factor`, gv.f32(r.factor!)]);
      return out;
    case 'llama3':
      // llama.cpp divides each frequency by the rope_freqs.weight tensor written by densePlan.
      if (config.model_type === 'llama') return out;
      break;
    case 'yarn': {
      if (config.model_type !== 'deepseek_v3') break;
      out.push(
        [`${arch}.rope.scaling.type`, gv.str('yarn')],
        [`${arch}.rope.scaling.factor`, gv.f32(r.factor!)],
        [`${arch}.rope.scaling.original_context_length`, gv.u32(r.originalMaxPositions!)],
      );
      if (r.mscaleAllDim !== undefined) out.push([`${arch}.rope.scaling.yarn_log_multiplier`, gv.f32(0.1 * r.mscaleAllDim)]);
      return out;
    }
    default:
      break;
  }
  throw new Error(`gguf export: rope type "${r.type}" of this ${config.model_type} model is not supported by the exporter (default and linear; llama3 for Llama; yarn for DeepSeek-V3)`);
}

function densePlan(config: LlamaConfig | Qwen2Config, st: SafetensorsReader): { arch: string; meta: [string, GgufValue][]; tensors: Planned[] } {
  const arch = config.model_type === 'llama' ? 'llama' : 'qwen2';
  if (config.model_type === 'qwen2' && config.use_sliding_window) throw new Error('gguf export: Qwen2 sliding-window attention is not supported by the exporter');
  if (config.model_type === 'llama' && config.pretraining_tp !== 1) throw new Error('gguf export: pretraining_tp != 1 is not supported');
  if (config.hidden_act !== 'silu') throw new Error(`gguf export: hidden_act ${config.hidden_act} (llama.cpp's ${arch} uses SiLU)`);
  const H = config.num_attention_heads, Hkv = config.num_key_value_heads, D = config.head_dim;
  const meta: [string, GgufValue][] = [
    [`${arch}.vocab_size`, gv.u32(config.vocab_size)],
    [`${arch}.context_length`, gv.u32(config.max_position_embeddings)],
    [`${arch}.embedding_length`, gv.u32(config.hidden_size)],
    [`${arch}.block_count`, gv.u32(config.num_hidden_layers)],
    [`${arch}.feed_forward_length`, gv.u32(config.intermediate_size)],
    [`${arch}.attention.head_count`, gv.u32(H)],
    [`${arch}.attention.head_count_kv`, gv.u32(Hkv)],
    [`${arch}.attention.key_length`, gv.u32(D)],
    [`${arch}.attention.value_length`, gv.u32(D)],
    [`${arch}.attention.layer_norm_rms_epsilon`, gv.f32(config.rms_norm_eps)],
    [`${arch}.rope.dimension_count`, gv.u32(D)],
    ...ropeMetadata(arch, config),
  ];
  const tensors: Planned[] = [];
  const add = (hf: string, name: string, transform?: (w: Float32Array, shape: number[]) => Float32Array) => {
    const shape = st.info(hf).shape;
    tensors.push({ name, shape, matrix: shape.length >= 2, data: () => {
      const w = st.readWeightF32(hf);
      return transform ? transform(w, shape) : w;
    } });
  };
  // q/k rows to llama.cpp's interleaved rotary layout (llama arch only; qwen2 is NEOX = half-split).
  const permute = (heads: number) => (w: Float32Array, shape: number[]) =>
    arch === 'llama' ? permuteRotaryRows(w, heads, shape.length === 2 ? shape[1]! : 1) : w;
  add('model.embed_tokens.weight', 'token_embd.weight');
  for (let l = 0; l < config.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`, b = `blk.${l}.`;
    add(`${p}input_layernorm.weight`, `${b}attn_norm.weight`);
    for (const [proj, name, heads] of [['q_proj', 'attn_q', H], ['k_proj', 'attn_k', Hkv], ['v_proj', 'attn_v', 0], ['o_proj', 'attn_output', 0]] as const) {
      for (const kind of ['weight', 'bias']) {
        const hf = `${p}self_attn.${proj}.${kind}`;
        if (st.has(hf)) add(hf, `${b}${name}.${kind}`, heads ? permute(heads) : undefined);
      }
    }
    add(`${p}post_attention_layernorm.weight`, `${b}ffn_norm.weight`);
    for (const [proj, name] of [['gate_proj', 'ffn_gate'], ['up_proj', 'ffn_up'], ['down_proj', 'ffn_down']] as const) {
      for (const kind of ['weight', 'bias']) {
        const hf = `${p}mlp.${proj}.${kind}`;
        if (st.has(hf)) add(hf, `${b}${name}.${kind}`);
      }
    }
  }
  add('model.norm.weight', 'output_norm.weight');
  if (!config.tie_word_embeddings && st.has('lm_head.weight')) add('lm_head.weight', 'output.weight');
  if (config.rope.type === 'llama3') {
    // Llama 3 scaling as per-frequency divisors: base frequency / scaled frequency.
    const base = ropeFrequencies({ ...config.rope, type: 'default' }, D, config.max_position_embeddings).invFreq;
    const scaled = ropeFrequencies(config.rope, D, config.max_position_embeddings).invFreq;
    tensors.push({ name: 'rope_freqs.weight', shape: [D / 2], matrix: false, data: () => Float32Array.from(base, (f, i) => f / scaled[i]!) });
  }
  return { arch, meta, tensors };
}

/** Stacks the per-expert weights of one projection into [E, out, in]. */
function stackExperts(st: SafetensorsReader, prefix: string, proj: string, E: number): { shape: number[]; data: () => Float32Array } {
  const s0 = st.info(`${prefix}mlp.experts.0.${proj}.weight`).shape;
  const n = s0[0]! * s0[1]!;
  return {
    shape: [E, s0[0]!, s0[1]!],
    data: () => {
      const out = new Float32Array(E * n);
      for (let e = 0; e < E; e++) out.set(st.readWeightF32(`${prefix}mlp.experts.${e}.${proj}.weight`, s0), e * n);
      return out;
    },
  };
}

function deepseekPlan(config: DeepseekV3Config, st: SafetensorsReader): { arch: string; meta: [string, GgufValue][]; tensors: Planned[]; skipped: string[] } {
  const arch = 'deepseek2';
  if (config.attention_bias) throw new Error('gguf export: DeepSeek-V3 with attention_bias has no llama.cpp equivalent');
  if (config.scoring_func !== 'sigmoid' || config.topk_method !== 'noaux_tc') {
    throw new Error(`gguf export: DeepSeek-V3 routing ${config.scoring_func}/${config.topk_method} is not supported (sigmoid/noaux_tc)`);
  }
  const H = config.num_attention_heads;
  const { qk_nope_head_dim: Dn, qk_rope_head_dim: Dr, v_head_dim: Dv, kv_lora_rank: Lkv } = config;
  const meta: [string, GgufValue][] = [
    [`${arch}.vocab_size`, gv.u32(config.vocab_size)],
    [`${arch}.context_length`, gv.u32(config.max_position_embeddings)],
    [`${arch}.embedding_length`, gv.u32(config.hidden_size)],
    [`${arch}.block_count`, gv.u32(config.num_hidden_layers)],
    [`${arch}.feed_forward_length`, gv.u32(config.intermediate_size)],
    [`${arch}.attention.head_count`, gv.u32(H)],
    // MLA runs as MQA over the cached latent in llama.cpp: one "kv head" of width Lkv + Dr.
    [`${arch}.attention.head_count_kv`, gv.u32(1)],
    [`${arch}.attention.layer_norm_rms_epsilon`, gv.f32(config.rms_norm_eps)],
    [`${arch}.leading_dense_block_count`, gv.u32(config.first_k_dense_replace)],
    [`${arch}.attention.q_lora_rank`, gv.u32(config.q_lora_rank ?? 0)],
    [`${arch}.attention.kv_lora_rank`, gv.u32(Lkv)],
    [`${arch}.attention.key_length`, gv.u32(Lkv + Dr)],
    [`${arch}.attention.value_length`, gv.u32(Lkv)],
    [`${arch}.attention.key_length_mla`, gv.u32(Dn + Dr)],
    [`${arch}.attention.value_length_mla`, gv.u32(Dv)],
    [`${arch}.expert_feed_forward_length`, gv.u32(config.moe_intermediate_size)],
    [`${arch}.expert_count`, gv.u32(config.n_routed_experts)],
    [`${arch}.expert_used_count`, gv.u32(config.num_experts_per_tok)],
    [`${arch}.expert_shared_count`, gv.u32(config.n_shared_experts)],
    [`${arch}.expert_weights_scale`, gv.f32(config.routed_scaling_factor)],
    [`${arch}.expert_weights_norm`, gv.bool(config.norm_topk_prob)],
    [`${arch}.expert_gating_func`, gv.u32(2)], // LLAMA_EXPERT_GATING_FUNC_TYPE_SIGMOID
    [`${arch}.expert_group_count`, gv.u32(config.n_group)],
    [`${arch}.expert_group_used_count`, gv.u32(config.topk_group)],
    [`${arch}.rope.dimension_count`, gv.u32(Dr)],
    ...ropeMetadata(arch, config),
  ];
  const tensors: Planned[] = [];
  const add = (hf: string, name: string, transform?: (w: Float32Array, shape: number[]) => Float32Array, matrix?: boolean) => {
    const shape = st.info(hf).shape;
    tensors.push({ name, shape, matrix: matrix ?? shape.length >= 2, data: () => {
      const w = st.readWeightF32(hf);
      return transform ? transform(w, shape) : w;
    } });
  };
  // llama.cpp rotates adjacent pairs (as the official weights are laid out, rope_interleave);
  // a half-split checkpoint gets its rotary rows reordered.
  const ropeRows = (blockRows: number, offset: number, heads: number) => (w: Float32Array, shape: number[]) =>
    config.rope_interleave ? w : permuteRotaryRows(w, heads, shape[1]!, { blockRows, offset, rotaryDims: Dr });
  add('model.embed_tokens.weight', 'token_embd.weight');
  for (let l = 0; l < config.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`, b = `blk.${l}.`;
    add(`${p}input_layernorm.weight`, `${b}attn_norm.weight`);
    if (config.q_lora_rank) {
      add(`${p}self_attn.q_a_proj.weight`, `${b}attn_q_a.weight`);
      add(`${p}self_attn.q_a_layernorm.weight`, `${b}attn_q_a_norm.weight`);
      add(`${p}self_attn.q_b_proj.weight`, `${b}attn_q_b.weight`, ropeRows(Dn + Dr, Dn, H));
    } else {
      add(`${p}self_attn.q_proj.weight`, `${b}attn_q.weight`, ropeRows(Dn + Dr, Dn, H));
    }
    add(`${p}self_attn.kv_a_proj_with_mqa.weight`, `${b}attn_kv_a_mqa.weight`, ropeRows(Lkv + Dr, Lkv, 1));
    add(`${p}self_attn.kv_a_layernorm.weight`, `${b}attn_kv_a_norm.weight`);
    // kv_b [H·(Dn+Dv), Lkv] → k_b [H, Lkv, Dn] (transposed per head, for the absorbed query) and v_b [H, Dv, Lkv].
    const kvb = `${p}self_attn.kv_b_proj.weight`;
    const kvbShape = st.info(kvb).shape;
    if (kvbShape[0] !== H * (Dn + Dv) || kvbShape[1] !== Lkv) throw new Error(`gguf export: ${kvb} has shape [${kvbShape}]`);
    tensors.push({ name: `${b}attn_k_b.weight`, shape: [H, Lkv, Dn], matrix: true, data: () => {
      const w = st.readWeightF32(kvb);
      const out = new Float32Array(H * Lkv * Dn);
      for (let h = 0; h < H; h++)
        for (let d = 0; d < Dn; d++)
          for (let c = 0; c < Lkv; c++) out[(h * Lkv + c) * Dn + d] = w[(h * (Dn + Dv) + d) * Lkv + c]!;
      return out;
    } });
    tensors.push({ name: `${b}attn_v_b.weight`, shape: [H, Dv, Lkv], matrix: true, data: () => {
      const w = st.readWeightF32(kvb);
      const out = new Float32Array(H * Dv * Lkv);
      for (let h = 0; h < H; h++) out.set(w.subarray((h * (Dn + Dv) + Dn) * Lkv, (h + 1) * (Dn + Dv) * Lkv), h * Dv * Lkv);
      return out;
    } });
    add(`${p}self_attn.o_proj.weight`, `${b}attn_output.weight`);
    add(`${p}post_attention_layernorm.weight`, `${b}ffn_norm.weight`);
    if (l < config.first_k_dense_replace) {
      add(`${p}mlp.gate_proj.weight`, `${b}ffn_gate.weight`);
      add(`${p}mlp.up_proj.weight`, `${b}ffn_up.weight`);
      add(`${p}mlp.down_proj.weight`, `${b}ffn_down.weight`);
    } else {
      add(`${p}mlp.gate.weight`, `${b}ffn_gate_inp.weight`, undefined, false); // the router stays f32
      add(`${p}mlp.gate.e_score_correction_bias`, `${b}exp_probs_b.bias`);
      for (const [proj, name] of [['gate_proj', 'ffn_gate_exps'], ['up_proj', 'ffn_up_exps'], ['down_proj', 'ffn_down_exps']] as const) {
        const s = stackExperts(st, p, proj, config.n_routed_experts);
        tensors.push({ name: `${b}${name}.weight`, shape: s.shape, matrix: true, data: s.data });
      }
      if (config.n_shared_experts > 0) {
        add(`${p}mlp.shared_experts.gate_proj.weight`, `${b}ffn_gate_shexp.weight`);
        add(`${p}mlp.shared_experts.up_proj.weight`, `${b}ffn_up_shexp.weight`);
        add(`${p}mlp.shared_experts.down_proj.weight`, `${b}ffn_down_shexp.weight`);
      }
    }
  }
  add('model.norm.weight', 'output_norm.weight');
  if (!config.tie_word_embeddings) add('lm_head.weight', 'output.weight');
  const skipped = st.keys().filter((k) => {
    const m = /^model\.layers\.(\d+)\./.exec(k);
    return m !== null && Number(m[1]) >= config.num_hidden_layers;
  });
  return { arch, meta, tensors, skipped };
}

/**
 * Exports a Hugging Face checkpoint folder (config.json, model.safetensors or a sharded index,
 * tokenizer.json) as a GGUF file that llama.cpp loads: Qwen2 → `qwen2`, Llama → `llama`
 * (q/k rows permuted to llama.cpp's rotary layout), DeepSeek-V3 → `deepseek2` (MLA with
 * kv_b split into k_b/v_b, stacked experts; the MTP modules are left out).
 */
export function exportGguf(modelDir: string, outFile: string, opts: ExportGgufOptions = {}): ExportGgufResult {
  const dtype = opts.dtype ?? 'f32';
  if (dtype !== 'f32' && dtype !== 'f16') throw new Error(`gguf export: dtype must be f32 or f16, got ${String(dtype)}`);
  const config = loadConfig(modelDir);
  const st = openSafetensors(modelDir);
  try {
    const plan = config.model_type === 'deepseek_v3' ? deepseekPlan(config, st) : { ...densePlan(config, st), skipped: [] as string[] };
    const tokDir = opts.tokenizerDir ?? modelDir;
    if (!fs.existsSync(path.join(tokDir, 'tokenizer.json'))) {
      throw new Error(`gguf export: no tokenizer.json in ${tokDir} (llama.cpp needs the vocabulary; pass tokenizerDir)`);
    }
    const tok = tokenizerMetadata(tokDir, config.vocab_size, config, { pre: opts.pre });
    const meta = new Map<string, GgufValue>([
      ['general.architecture', gv.str(plan.arch)],
      ['general.type', gv.str('model')],
      ['general.name', gv.str(opts.name ?? path.basename(path.resolve(modelDir)))],
      ['general.file_type', gv.u32(dtype === 'f16' ? FILE_TYPE.MOSTLY_F16 : FILE_TYPE.ALL_F32)],
      ['general.alignment', gv.u32(GGUF_DEFAULT_ALIGNMENT)],
      ...plan.meta,
      ...tok.entries,
    ]);
    const tensors: GgufTensorToWrite[] = plan.tensors.map((t) => {
      return { name: t.name, shape: t.shape, type: dtype === 'f16' && t.matrix ? 'F16' : 'F32', data: t.data };
    });
    writeGguf(outFile, meta, tensors);
    return { file: outFile, architecture: plan.arch, tensors: tensors.length, bytes: fs.statSync(outFile).size, skipped: plan.skipped };
  } finally {
    st.close();
  }
}
