// The tensor library: one import for models and trainers.
export * from './tensor.js';
export { backward } from './autograd.js';
export * from './random.js';
export * from './ops/elementwise.js';
export * from './ops/shape.js';
export * from './ops/reduce.js';
export * from './ops/matmul.js';
export * from './ops/softmax.js';
export * from './ops/norm.js';
export * from './ops/activation.js';
export * from './ops/rope.js';
export * from './ops/indexing.js';
export * from './ops/attention.js';
export * from './ops/loss.js';
