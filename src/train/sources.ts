// Batch sources for the trainer: packed pretraining windows and padded SFT examples.
// Each epoch visits the examples in an order shuffled from (seed, epoch), so the stream is a
// pure function of its cursor, which is all a checkpoint needs to store.
import type { Backend } from '../backend/backend.js';
import { Rng, tensor } from '../tensor/index.js';
import { padBatch, SftTokens } from '../data/packing.js';
import type { BatchSource } from './trainer.js';

interface Cursor { epoch: number; index: number }

abstract class ShuffledSource<T> implements BatchSource {
  private cursor: Cursor = { epoch: 0, index: 0 };
  private order: number[];

  constructor(protected readonly items: readonly T[], protected readonly batchSize: number,
    private readonly seed: number, protected readonly backend?: Backend) {
    if (items.length === 0) throw new Error('training data is empty');
    if (batchSize < 1) throw new Error(`batch size must be ≥ 1, got ${batchSize}`);
    this.order = this.epochOrder(0);
  }

  private epochOrder(epoch: number): number[] {
    return new Rng(this.seed * 1_000_003 + epoch).shuffle(Array.from(this.items.keys()));
  }

  /** The next batchSize items, wrapping into a new (reshuffled) epoch as needed. */
  protected take(): T[] {
    const out: T[] = [];
    while (out.length < this.batchSize) {
      if (this.cursor.index >= this.items.length) {
        this.cursor = { epoch: this.cursor.epoch + 1, index: 0 };
        this.order = this.epochOrder(this.cursor.epoch);
      }
      out.push(this.items[this.order[this.cursor.index++]]);
    }
    return out;
  }

  abstract next(): ReturnType<BatchSource['next']>;

  getState(): Cursor { return { ...this.cursor }; }
  setState(state: unknown): void {
    const s = state as Cursor;
    if (!s || !Number.isInteger(s.epoch) || !Number.isInteger(s.index)) throw new Error(`data cursor must be {epoch, index}, got ${JSON.stringify(state)}`);
    this.cursor = { ...s };
    this.order = this.epochOrder(s.epoch);
  }
  get epoch(): number { return this.cursor.epoch + this.cursor.index / this.items.length; }
}

/** Fixed-length windows of packed documents; labels are the inputs (the loss shifts). */
export class PackedSource extends ShuffledSource<Int32Array> {
  next(): ReturnType<BatchSource['next']> {
    const rows = this.take();
    const T = rows[0].length;
    const ids = new Int32Array(rows.length * T);
    rows.forEach((r, i) => ids.set(r, i * T));
    const t = tensor(ids, [rows.length, T], { backend: this.backend, dtype: 'i32' });
    return { ids: t, labels: t };
  }
}

/** Prompt/response pairs, right-padded per batch; loss on response tokens (and EOS) only. */
export class SftSource extends ShuffledSource<SftTokens> {
  constructor(items: readonly SftTokens[], batchSize: number, seed: number,
    private readonly pad: { padId: number; eosId?: number; maxLen?: number }, backend?: Backend) {
    super(items, batchSize, seed, backend);
  }
  next(): ReturnType<BatchSource['next']> {
    const b = padBatch(this.take(), { ...this.pad, truncation: 'left' });
    return {
      ids: tensor(b.inputIds, [b.batchSize, b.seqLen], { backend: this.backend, dtype: 'i32' }),
      labels: tensor(b.labels, [b.batchSize, b.seqLen], { backend: this.backend, dtype: 'i32' }),
    };
  }
}
