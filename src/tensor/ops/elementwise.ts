// Elementwise ops with broadcasting, and their gradients.
import type { BinaryOp, CompareOp, UnaryOp } from '../../backend/backend.js';
import { assertSameBackend, makeResult, numel, sameShape, Tensor, tensor } from '../tensor.js';
import { broadcastShapes, broadcastStrides, sumToShape } from './broadcast.js';

function binaryRaw(op: BinaryOp, a: Tensor, b: Tensor): { out: Tensor; shape: number[] } {
  const backend = assertSameBackend(op, a, b);
  const shape = broadcastShapes(a.shape, b.shape, op);
  const storage = backend.empty(a.dtype, numel(shape));
  backend.binary(op, a.storage, broadcastStrides(a.shape, shape), b.storage, broadcastStrides(b.shape, shape), storage, shape);
  return { out: new Tensor(storage, shape, backend), shape };
}

function binary(op: BinaryOp, a: Tensor, b: Tensor, grads: (g: Tensor, out: Tensor) => [Tensor | null, Tensor | null]): Tensor {
  const { out, shape } = binaryRaw(op, a, b);
  return makeResult(out.storage, shape, out.backend, op, [a, b], (g) => {
    const [ga, gb] = grads(g, out);
    return [
      ga && a.requiresGrad ? sumToShape(ga, a.shape) : null,
      gb && b.requiresGrad ? sumToShape(gb, b.shape) : null,
    ];
  });
}

/** A scalar or tensor operand: numbers become 0-d tensors on a's backend. */
type Operand = Tensor | number;
function lift(x: Operand, like: Tensor): Tensor {
  return typeof x === 'number' ? tensor([x], [], { backend: like.backend, dtype: like.dtype }) : x;
}

export function add(a: Tensor, b: Operand): Tensor {
  if (typeof b === 'number') return affine(a, 1, b);
  return binary('add', a, b, (g) => [g, g]);
}
export function sub(a: Tensor, b: Operand): Tensor {
  if (typeof b === 'number') return affine(a, 1, -b);
  return binary('sub', a, b, (g) => [g, neg(g)]);
}
export function mul(a: Tensor, b: Operand): Tensor {
  if (typeof b === 'number') return affine(a, b, 0);
  return binary('mul', a, b, (g) => [
    a.requiresGrad ? mul(g, b) : null,
    b.requiresGrad ? mul(g, a) : null,
  ]);
}
export function div(a: Tensor, b: Operand): Tensor {
  if (typeof b === 'number') return affine(a, 1 / b, 0);
  return binary('div', a, b, (g, out) => [
    div(g, b),
    b.requiresGrad ? neg(div(mul(g, out), b)) : null,
  ]);
}
/** Elementwise maximum; the gradient goes to a where a >= b, else to b. */
export function maximum(a: Tensor, b: Operand): Tensor {
  const bt = lift(b, a);
  return binary('max', a, bt, (g) => {
    const aWins = compare('ge', a, bt);
    return [mul(g, aWins), mul(g, rsub(aWins, 1))];
  });
}
export function minimum(a: Tensor, b: Operand): Tensor {
  const bt = lift(b, a);
  return binary('min', a, bt, (g) => {
    const aWins = compare('le', a, bt);
    return [mul(g, aWins), mul(g, rsub(aWins, 1))];
  });
}
/** a ** p for a constant exponent p. */
export function pow(a: Tensor, p: number): Tensor {
  const pt = lift(p, a);
  return binary('pow', a, pt, (g) => [mul(g, mul(pow(a, p - 1), p)), null]);
}

/** out = alpha * x + beta. */
export function affine(x: Tensor, alpha: number, beta: number): Tensor {
  const storage = x.backend.empty(x.dtype, x.size);
  x.backend.affine(x.storage, alpha, beta, storage);
  return makeResult(storage, x.shape, x.backend, 'affine', [x], (g) => [alpha === 1 ? g : affine(g, alpha, 0)]);
}
/** c - x. */
export function rsub(x: Tensor, c: number): Tensor { return affine(x, -1, c); }

function unary(op: UnaryOp, x: Tensor): Tensor {
  const storage = x.backend.empty(x.dtype, x.size);
  x.backend.unary(op, x.storage, storage);
  return makeResult(storage, x.shape, x.backend, op, [x], (g) => {
    const dx = x.backend.empty(x.dtype, x.size);
    x.backend.unaryGrad(op, x.storage, g.storage, dx);
    return [new Tensor(dx, x.shape, x.backend)];
  });
}
export const neg = (x: Tensor): Tensor => unary('neg', x);
export const exp = (x: Tensor): Tensor => unary('exp', x);
export const log = (x: Tensor): Tensor => unary('log', x);
export const sqrt = (x: Tensor): Tensor => unary('sqrt', x);
export const rsqrt = (x: Tensor): Tensor => unary('rsqrt', x);
export const square = (x: Tensor): Tensor => unary('square', x);
export const abs = (x: Tensor): Tensor => unary('abs', x);
export const sigmoid = (x: Tensor): Tensor => unary('sigmoid', x);
export const silu = (x: Tensor): Tensor => unary('silu', x);
export const tanh = (x: Tensor): Tensor => unary('tanh', x);
export const relu = (x: Tensor): Tensor => unary('relu', x);
export const reciprocal = (x: Tensor): Tensor => unary('recip', x);

/** 1.0 where the comparison holds, else 0.0 (not differentiable). */
export function compare(op: CompareOp, a: Tensor, b: Operand): Tensor {
  const bt = lift(b, a);
  const backend = assertSameBackend(op, a, bt);
  const shape = broadcastShapes(a.shape, bt.shape, op);
  const storage = backend.empty(a.dtype === 'i32' ? 'f32' : a.dtype, numel(shape));
  backend.compare(op, a.storage, broadcastStrides(a.shape, shape), bt.storage, broadcastStrides(bt.shape, shape), storage, shape);
  return new Tensor(storage, shape, backend);
}

/** cond ? a : b elementwise (same shapes); the gradient follows the chosen branch. */
export function where(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  const backend = assertSameBackend('where', cond, a, b);
  if (!sameShape(cond.shape, a.shape) || !sameShape(a.shape, b.shape)) {
    throw new Error(`where: shapes must match, got [${cond.shape}], [${a.shape}], [${b.shape}]`);
  }
  const storage = backend.empty(a.dtype, a.size);
  backend.where(cond.storage, a.storage, b.storage, storage);
  return makeResult(storage, a.shape, backend, 'where', [a, b], (g) => {
    const zero = new Tensor(backend.alloc(g.dtype, g.size), g.shape, backend);
    const ga = backend.empty(g.dtype, g.size);
    const gb = backend.empty(g.dtype, g.size);
    backend.where(cond.storage, g.storage, zero.storage, ga);
    backend.where(cond.storage, zero.storage, g.storage, gb);
    return [new Tensor(ga, a.shape, backend), new Tensor(gb, b.shape, backend)];
  });
}

/** a + b without recording (gradient accumulation); shapes must match. */
export function accumulate(a: Tensor, b: Tensor): Tensor {
  if (!sameShape(a.shape, b.shape)) throw new Error(`gradient shape mismatch: [${a.shape}] vs [${b.shape}]`);
  return binaryRaw('add', a, b).out;
}
