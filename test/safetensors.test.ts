// safetensors read/write: round trips of every dtype, bf16/f16 rounding, sharded checkpoints,
// fp8 block dequantisation, malformed files, and the golden checkpoints' headers.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { sharedDir } from './util/shared.js';
import {
  bf16BitsToF32, DTYPE_BYTES, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, fp8E4M3Table, INDEX_NAME,
  openSafetensors, readSafetensorsHeader, writeSafetensors, writeShardedSafetensors, type Dtype,
} from '../src/io/safetensors.js';


const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'r1ts-st-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
let counter = 0;
const tmpFile = (name = 'x'): string => path.join(tmp, `${name}-${counter++}.safetensors`);

/** Builds a raw safetensors file from a header object and a data blob (for malformed cases). */
function rawFile(header: unknown, data: Uint8Array | number, opts: { lengthOverride?: bigint; rawHeader?: string } = {}): string {
  const json = new TextEncoder().encode(opts.rawHeader ?? JSON.stringify(header));
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, opts.lengthOverride ?? BigInt(json.length), true);
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const f = tmpFile('raw');
  fs.writeFileSync(f, Buffer.concat([len, json, body]));
  return f;
}

test('round trip F32, BF16, F16, I64, I32 through write and read', () => {
  const f = tmpFile();
  const x = Float32Array.from([0, 1, -2.5, 3.25, 1e-3, -7, 65504, 0.1]);
  const ints = Int32Array.from([0, -1, 2147483647, -2147483648, 5, 6]);
  const big = BigInt64Array.from([0n, -1n, 123456789n, -5n]);
  writeSafetensors(f, {
    f32: { dtype: 'F32', shape: [2, 4], data: x },
    bf16: { dtype: 'BF16', shape: [8], data: x },
    f16: { dtype: 'F16', shape: [4, 2], data: x },
    i64: { dtype: 'I64', shape: [4], data: big },
    i64from32: { dtype: 'I64', shape: [2, 3], data: ints },
    i32: { dtype: 'I32', shape: [6], data: ints },
    empty: { dtype: 'F32', shape: [0, 3], data: new Float32Array(0) },
  }, { note: 'hello' });
  const r = openSafetensors(f);
  assert.deepEqual(r.keys(), ['f32', 'bf16', 'f16', 'i64', 'i64from32', 'i32', 'empty']);
  assert.equal(r.metadata['format'], 'pt');
  assert.equal(r.metadata['note'], 'hello');
  assert.deepEqual(r.info('f32').shape, [2, 4]);
  assert.deepEqual(r.readF32('f32', [2, 4]), x);
  // values exactly representable in bf16 / f16 come back exactly
  const bf = r.readF32('bf16');
  for (const i of [0, 1, 2, 3, 5]) assert.equal(bf[i], x[i]);
  assert.equal(bf[7], bf16BitsToF32(f32ToBf16Bits(0.1)));
  const h = r.readF32('f16');
  for (const i of [0, 1, 2, 3, 5, 6]) assert.equal(h[i], x[i]);
  assert.equal(r.info('bf16').dtype, 'BF16');
  assert.equal(r.info('f16').dtype, 'F16');
  assert.deepEqual(r.readI64('i64'), big);
  assert.deepEqual(r.readI32('i64'), Int32Array.from([0, -1, 123456789, -5]));
  assert.deepEqual(r.readI32('i64from32'), ints);
  assert.deepEqual(r.readI32('i32', [6]), ints);
  assert.deepEqual(r.readF32('i32').slice(0, 2), Float32Array.from([0, -1]));
  assert.equal(r.readF32('empty').length, 0);
  r.close();
  assert.deepEqual(fs.readdirSync(tmp).filter((n) => n.includes('.tmp-')), [], 'no temporary file left behind');
});

test('reads every dtype from raw bytes (F64, I16, I8, U8, U16, U32, BOOL, F8_E4M3, F8_E5M2)', () => {
  const f = tmpFile();
  const f64 = Float64Array.from([1.5, -2, 1e300]);
  const i16 = Int16Array.from([-32768, 7, 32767]);
  const i8 = Int8Array.from([-128, 0, 127]);
  const u8 = Uint8Array.from([0, 200, 255]);
  const u16 = Uint16Array.from([0, 65535, 3]);
  const u32 = Uint32Array.from([1, 4294967295, 2]);
  const raw = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  writeSafetensors(f, {
    f64: { dtype: 'F64', shape: [3], data: raw(f64) },
    i16: { dtype: 'I16', shape: [3], data: raw(i16) },
    i8: { dtype: 'I8', shape: [3], data: raw(i8) },
    u8: { dtype: 'U8', shape: [3], data: u8 },
    u16: { dtype: 'U16', shape: [3], data: raw(u16) },
    u32: { dtype: 'U32', shape: [3], data: raw(u32) },
    bool: { dtype: 'BOOL', shape: [3], data: Uint8Array.from([1, 0, 1]) },
    e4m3: { dtype: 'F8_E4M3', shape: [4], data: Uint8Array.from([0x38, 0xb8, 0x7e, 0x01]) },
    e5m2: { dtype: 'F8_E5M2', shape: [3], data: Uint8Array.from([0x3c, 0x7c, 0xc0]) },
  });
  const r = openSafetensors(f);
  assert.deepEqual(r.readF32('f64'), Float32Array.from([1.5, -2, Infinity]));
  assert.deepEqual(r.readI32('i16'), Int32Array.from([-32768, 7, 32767]));
  assert.deepEqual(r.readI32('i8'), Int32Array.from([-128, 0, 127]));
  assert.deepEqual(r.readI32('u8'), Int32Array.from([0, 200, 255]));
  assert.deepEqual(r.readF32('u16'), Float32Array.from([0, 65535, 3]));
  assert.deepEqual(r.readI32('bool'), Int32Array.from([1, 0, 1]));
  assert.deepEqual(r.readF32('e4m3'), Float32Array.from([1, -1, 448, 2 ** -9]));
  assert.deepEqual(r.readF32('e5m2'), Float32Array.from([1, Infinity, -2]));
  assert.throws(() => r.readI32('u32'), (e: Error) => e.message.includes(f) && /4294967295 .*overflows int32/.test(e.message));
  assert.throws(() => r.readI32('f64'), (e: Error) => e.message.includes(f) && /'f64'.*not an integer type/.test(e.message));
  assert.deepEqual(r.readBytes('u8'), u8);
  r.close();
});

test('I64 values that overflow int32 are an error naming file, tensor and value', () => {
  const f = tmpFile();
  writeSafetensors(f, { ids: { dtype: 'I64', shape: [2], data: BigInt64Array.from([1n, 1n << 40n]) } });
  const r = openSafetensors(f);
  assert.throws(() => r.readI32('ids'), (e: Error) => e.message.includes(f) && e.message.includes("'ids'") && e.message.includes(String(1n << 40n)));
  assert.deepEqual(r.readI64('ids'), BigInt64Array.from([1n, 1n << 40n]));
  assert.throws(() => writeSafetensors(tmpFile(), { ids: { dtype: 'I32', shape: [2], data: BigInt64Array.from([1n, 1n << 40n]) } }), /does not fit I32/);
});

test('header is 8-byte aligned, space padded, offsets contiguous, metadata strings', () => {
  const f = tmpFile();
  writeSafetensors(f, {
    a: { dtype: 'F32', shape: [3], data: new Float32Array(3) },
    b: { dtype: 'BF16', shape: [5], data: new Float32Array(5) },
    c: { dtype: 'I64', shape: [1], data: new BigInt64Array(1) },
  });
  const buf = fs.readFileSync(f);
  const n = Number(buf.readBigUInt64LE(0));
  assert.equal(n % 8, 0);
  const text = buf.subarray(8, 8 + n).toString('utf8');
  assert.match(text, /^\{.*\} *$/);
  const h = JSON.parse(text);
  assert.deepEqual(h.__metadata__, { format: 'pt' });
  assert.deepEqual(h.a.data_offsets, [0, 12]);
  assert.deepEqual(h.b.data_offsets, [12, 22]);
  assert.deepEqual(h.c.data_offsets, [22, 30]);
  assert.equal(buf.length, 8 + n + 30);
  // Overwrite in place atomically.
  writeSafetensors(f, { z: { dtype: 'F32', shape: [1], data: Float32Array.from([4]) } });
  assert.deepEqual(openSafetensors(f).keys(), ['z']);
  assert.throws(() => writeSafetensors(tmpFile(), { a: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } }), /'a'.*3 elements but shape \[2, 2\] needs 4/);
  assert.throws(() => writeSafetensors(tmpFile(), { a: { dtype: 'BF16', shape: [1], data: new Int32Array(1) } }), /cannot write Int32Array as BF16/);
});

/** Nearest-even check of an encoder against its decoder: x is closest to decode(bits). */
function checkNearestEven(x: number, bits: number, decode: (b: number) => number, mantMask: number): void {
  const v = decode(bits);
  if (!Number.isFinite(v)) return; // overflow handled separately
  for (const nb of [bits - 1, bits + 1]) {
    if (nb < 0 || ((nb ^ bits) & 0x8000) !== 0) continue;
    const w = decode(nb);
    if (!Number.isFinite(w)) continue;
    const dv = Math.abs(x - v);
    const dw = Math.abs(x - w);
    assert.ok(dv <= dw, `x=${x}: ${v} (0x${bits.toString(16)}) is not nearest; ${w} is closer`);
    if (dv === dw) assert.equal(bits & 1 & mantMask, 0, `x=${x}: tie not rounded to even`);
  }
}

test('f32 → bf16 rounds to nearest even (ties, NaN, inf, overflow)', () => {
  assert.equal(f32ToBf16Bits(1), 0x3f80);
  assert.equal(f32ToBf16Bits(1 + 2 ** -8), 0x3f80); // tie → even (down)
  assert.equal(f32ToBf16Bits(1 + 3 * 2 ** -8), 0x3f82); // tie → even (up)
  assert.equal(f32ToBf16Bits(1 + 2 ** -8 + 2 ** -20), 0x3f81); // above the tie → up
  assert.equal(f32ToBf16Bits(-0), 0x8000);
  assert.equal(f32ToBf16Bits(Infinity), 0x7f80);
  assert.equal(f32ToBf16Bits(-Infinity), 0xff80);
  assert.equal(f32ToBf16Bits(3.4028234663852886e38), 0x7f80); // max f32 rounds to inf
  assert.ok(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(NaN))));
  assert.equal(f32ToBf16Bits(1e-40), 0x0001); // f32 subnormal 1e-40 ≈ 0x000116c2 → bf16 0x0001
  const rng = mulberry(7);
  const f = new Float32Array(1);
  for (let i = 0; i < 20000; i++) {
    f[0] = (rng() - 0.5) * 2 ** Math.floor(rng() * 60 - 30);
    checkNearestEven(f[0]!, f32ToBf16Bits(f[0]!), bf16BitsToF32, 0xffff);
  }
});

test('f32 → f16 rounds to nearest even (ties, subnormals, overflow, NaN)', () => {
  assert.equal(f32ToF16Bits(1), 0x3c00);
  assert.equal(f32ToF16Bits(1 + 2 ** -11), 0x3c00); // tie → even
  assert.equal(f32ToF16Bits(1 + 3 * 2 ** -11), 0x3c02);
  assert.equal(f32ToF16Bits(65504), 0x7bff);
  assert.equal(f32ToF16Bits(65519), 0x7bff);
  assert.equal(f32ToF16Bits(65520), 0x7c00); // tie between max and 2^16 → even → inf
  assert.equal(f32ToF16Bits(1e10), 0x7c00);
  assert.equal(f32ToF16Bits(-1e10), 0xfc00);
  assert.equal(f32ToF16Bits(2 ** -14), 0x0400); // smallest normal
  assert.equal(f32ToF16Bits(2 ** -24), 0x0001); // smallest subnormal
  assert.equal(f32ToF16Bits(2 ** -25), 0x0000); // tie → even 0
  assert.equal(f32ToF16Bits(1.5 * 2 ** -25), 0x0001);
  assert.equal(f32ToF16Bits(3 * 2 ** -25), 0x0002); // tie between 1 and 2 units → 2
  assert.equal(f32ToF16Bits(-(2 ** -26)), 0x8000);
  assert.equal(f32ToF16Bits((1 - 2 ** -12) * 2 ** -14), 0x0400); // rounds up into the normals
  assert.ok(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN))));
  assert.equal(f16BitsToF32(0x0001), 2 ** -24);
  const rng = mulberry(11);
  const f = new Float32Array(1);
  for (let i = 0; i < 20000; i++) {
    f[0] = (rng() - 0.5) * 2 ** Math.floor(rng() * 44 - 28);
    checkNearestEven(f[0]!, f32ToF16Bits(f[0]!), f16BitsToF32, 0xffff);
  }
});

test('fp8 e4m3fn decoding: normals, subnormals, NaN, max', () => {
  const t = fp8E4M3Table();
  assert.equal(t[0x00], 0);
  assert.ok(Object.is(t[0x80], -0));
  assert.equal(t[0x38], 1); // e=7 m=0
  assert.equal(t[0x08], 2 ** -6); // smallest normal
  assert.equal(t[0x01], 2 ** -9); // smallest subnormal: 1/8 · 2^-6
  assert.equal(t[0x07], (7 / 8) * 2 ** -6); // largest subnormal
  assert.equal(t[0x7e], 448); // max
  assert.equal(t[0xfe], -448);
  assert.equal(t[0x77], 240); // e=14 m=7: 1.875 · 2^7 — still finite (no infinities in e4m3fn)
  assert.ok(Number.isNaN(t[0x7f]!));
  assert.ok(Number.isNaN(t[0xff]!));
  const finite = [...t].filter((v) => Number.isFinite(v)).length;
  assert.equal(finite, 254);
});

test('fp8 weights with _scale_inv are dequantised by 128×128 blocks', () => {
  const rows = 130;
  const cols = 260; // scale [2, 3]: ceil(130/128) × ceil(260/128)
  const w = new Uint8Array(rows * cols);
  for (let i = 0; i < w.length; i++) w[i] = [0x38, 0x40, 0xb8, 0x01, 0x7e, 0x30][i % 6]!; // 1, 2, -1, 2^-9, 448, 0.5
  const scale = Float32Array.from([1, 2, 4, 0.5, 0.25, 8]);
  const f = tmpFile('fp8');
  writeSafetensors(f, {
    'layer.weight': { dtype: 'F8_E4M3', shape: [rows, cols], data: w },
    'layer.weight_scale_inv': { dtype: 'F32', shape: [2, 3], data: scale },
    'bad.weight': { dtype: 'F8_E4M3', shape: [rows, cols], data: w },
    'bad.weight_scale_inv': { dtype: 'F32', shape: [1, 3], data: new Float32Array(3) },
    'raw.weight': { dtype: 'F8_E4M3', shape: [2], data: Uint8Array.from([0x38, 0x40]) },
    'plain.weight': { dtype: 'BF16', shape: [2], data: Float32Array.from([1, 2]) },
  });
  const r = openSafetensors(f);
  const t = fp8E4M3Table();
  const out = r.readWeightF32('layer.weight', [rows, cols]);
  for (const [i, j] of [[0, 0], [0, 127], [0, 128], [0, 259], [127, 5], [128, 0], [129, 200], [129, 259], [64, 130]] as const) {
    const expect = t[w[i * cols + j]!]! * scale[Math.floor(i / 128) * 3 + Math.floor(j / 128)]!;
    assert.equal(out[i * cols + j], expect, `w[${i}, ${j}]`);
  }
  assert.equal(out[129 * cols + 259], t[w[129 * cols + 259]!]! * 8);
  assert.ok(r.isQuantScale('layer.weight_scale_inv'));
  assert.ok(!r.isQuantScale('plain.weight'));
  // other block sizes on request
  const out2 = r.readWeightF32('layer.weight', undefined, { blockSize: [128, 128] });
  assert.deepEqual(out2, out);
  assert.throws(() => r.readWeightF32('bad.weight'), (e: Error) => e.message.includes(f) && /bad.weight_scale_inv.*scale shape \[1, 3\].*expected \[2, 3\]/.test(e.message));
  assert.throws(() => r.readWeightF32('raw.weight'), /without a companion 'raw.weight_scale_inv'/);
  assert.deepEqual(r.readF32('raw.weight'), Float32Array.from([1, 2]));
  assert.deepEqual(r.readWeightF32('plain.weight'), Float32Array.from([1, 2]));
});

test('sharded write: shards + index like transformers, read back through dir and index', () => {
  const dir = path.join(tmp, 'sharded');
  const tensors: Record<string, { dtype: 'F32' | 'BF16'; shape: number[]; data: Float32Array }> = {};
  for (let i = 0; i < 5; i++) tensors[`t${i}`] = { dtype: i % 2 ? 'BF16' : 'F32', shape: [4, 8], data: Float32Array.from({ length: 32 }, (_, k) => i + k / 32) }; // exact in bf16
  const res = writeShardedSafetensors(dir, tensors, 200); // F32 4×8 = 128 bytes, BF16 64 bytes
  assert.ok(res.index);
  assert.equal(res.totalSize, 3 * 128 + 2 * 64);
  assert.deepEqual(res.files.map((f) => path.basename(f)), [
    'model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors',
  ]);
  const index = JSON.parse(fs.readFileSync(path.join(dir, INDEX_NAME), 'utf8'));
  assert.equal(index.metadata.total_size, 512);
  assert.equal(index.weight_map.t0, 'model-00001-of-00003.safetensors');
  assert.equal(index.weight_map.t4, 'model-00003-of-00003.safetensors');
  for (const r of [openSafetensors(dir), openSafetensors(path.join(dir, INDEX_NAME))]) {
    assert.deepEqual(r.keys().sort(), ['t0', 't1', 't2', 't3', 't4']);
    for (let i = 0; i < 5; i++) assert.deepEqual(r.readF32(`t${i}`, [4, 8]), tensors[`t${i}`]!.data);
    assert.equal(r.files.length, 3);
    r.close();
  }
  // everything fits: one model.safetensors, no index
  const dir1 = path.join(tmp, 'single');
  const res1 = writeShardedSafetensors(dir1, tensors, 1 << 20);
  assert.equal(res1.index, null);
  assert.deepEqual(fs.readdirSync(dir1), ['model.safetensors']);
  assert.deepEqual(openSafetensors(dir1).readF32('t3'), tensors['t3']!.data);
  // an index naming a missing shard
  const bad = path.join(tmp, 'badindex');
  fs.mkdirSync(bad);
  fs.writeFileSync(path.join(bad, INDEX_NAME), JSON.stringify({ weight_map: { a: 'nope.safetensors' } }));
  assert.throws(() => openSafetensors(bad), (e: Error) => e.message.includes(INDEX_NAME) && /shard nope.safetensors .*does not exist/.test(e.message));
});

test('malformed files: each error names the file and the problem', () => {
  const ok = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const cases: Array<[string, string, RegExp]> = [
    ['too short', (() => { const f = tmpFile('short'); fs.writeFileSync(f, Buffer.from([1, 2, 3])); return f; })(), /3 bytes, too short/],
    ['header past end', rawFile(ok, 8, { lengthOverride: 5000n }), /header length 5000 runs past the end of the file/],
    ['absurd header', rawFile(ok, 8, { lengthOverride: 1n << 50n }), /header length \d+ is absurd/],
    ['not JSON', rawFile(null, 8, { rawHeader: '{"a": {"dtype": "F32",' }), /header is not valid JSON/],
    ['not an object', rawFile(null, 0, { rawHeader: '[1, 2]' }), /header is not a JSON object/],
    ['offsets past end', rawFile({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8), /tensor 'a': data_offsets \[0, 16\] run past the end of the file/],
    ['overlap', rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12), /tensor 'b': data_offsets \[4, 12\] overlap those of 'a'/],
    ['size mismatch', rawFile({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8), /tensor 'a': data_offsets \[0, 8\] span 8 bytes but F32 \[3\] needs 12/],
    ['unknown dtype', rawFile({ a: { dtype: 'Q4_K', shape: [2], data_offsets: [0, 8] } }, 8), /tensor 'a': unknown dtype "Q4_K"/],
    ['bad shape', rawFile({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 8] } }, 8), /tensor 'a': shape \[-1\] is not a list of non-negative integers/],
    ['reversed offsets', rawFile({ a: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, 8), /tensor 'a': data_offsets \[8, 0\] end before they begin/],
  ];
  for (const [what, f, re] of cases) {
    assert.throws(() => openSafetensors(f), (e: Error) => {
      assert.ok(e.message.includes(f), `${what}: message does not name the file: ${e.message}`);
      assert.match(e.message, re, what);
      return true;
    }, what);
  }
  assert.throws(() => openSafetensors(path.join(tmp, 'does-not-exist.safetensors')), /does-not-exist.safetensors: cannot open/);
});

test('missing tensor lists near names; wrong expected shape is an error', () => {
  const f = tmpFile();
  const z = (n: number): { dtype: 'F32'; shape: number[]; data: Float32Array } => ({ dtype: 'F32', shape: [n], data: new Float32Array(n) });
  writeSafetensors(f, {
    'model.layers.0.self_attn.q_proj.weight': z(4),
    'model.layers.0.self_attn.k_proj.weight': z(4),
    'model.layers.1.self_attn.q_proj.weight': z(4),
    'model.norm.weight': z(2),
  });
  const r = openSafetensors(f);
  assert.throws(() => r.readF32('model.layers.0.self_attn.q_prj.weight'), (e: Error) =>
    e.message.includes(f) && /'model.layers.0.self_attn.q_prj.weight': not found/.test(e.message) && /nearest names: model.layers.0.self_attn.q_proj.weight/.test(e.message));
  assert.throws(() => r.readF32('model.norm.weight', [3]), (e: Error) =>
    e.message.includes(f) && /'model.norm.weight': shape \[2\] \(F32\) but the caller expects \[3\]/.test(e.message));
  assert.ok(r.has('model.norm.weight'));
  assert.ok(!r.has('model.norm.bias'));
});

test('golden checkpoints: headers, parameter tensors, int64 ids', () => {
  const golden = path.join(sharedDir(), 'golden');
  const models = fs.readdirSync(golden).filter((d) => fs.existsSync(path.join(golden, d, 'model.safetensors')));
  assert.ok(models.length >= 5, `golden models: ${models.join(', ')}`);
  for (const m of models) {
    const dir = path.join(golden, m);
    const h = readSafetensorsHeader(path.join(dir, 'model.safetensors'));
    assert.equal(h.metadata['format'], 'pt');
    assert.ok(h.tensors.has('model.embed_tokens.weight'), m);
    assert.equal(h.dataStart % 8, 0);
    const r = openSafetensors(dir); // directory → model.safetensors
    assert.equal(path.basename(r.files[0]!), 'model.safetensors');
    const emb = r.info('model.embed_tokens.weight');
    assert.equal(emb.dtype, 'F32');
    const w = r.readF32('model.norm.weight', [emb.shape[1]!]);
    assert.ok(w.every((x) => Number.isFinite(x) && Math.abs(x - 1) < 1), `${m}: norm weights near 1`);
    r.close();
    const g = openSafetensors(path.join(dir, 'golden.safetensors'));
    assert.equal(g.info('input_ids').dtype, 'I64');
    const ids = g.readI32('input_ids', [2, 24]);
    assert.ok(ids.every((x) => x >= 0 && x < emb.shape[0]!), `${m}: ids in vocab`);
    assert.equal(g.readF32('loss', [1]).length, 1);
    const logits = g.info('logits');
    assert.deepEqual(logits.shape, [2, 24, emb.shape[0]!]);
    assert.ok(g.keys().some((k) => k.startsWith('grad.')));
    g.close();
  }
});

test('DTYPE_BYTES covers the safetensors dtypes', () => {
  const want: Dtype[] = ['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL', 'F8_E4M3'];
  for (const d of want) assert.ok(DTYPE_BYTES[d] > 0, d);
});

function mulberry(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
