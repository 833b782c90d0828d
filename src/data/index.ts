// The data layer: verifiable task suites, the R1-Zero template, the pretraining corpus and SFT
// examples, datasets (JSONL / Parquet / builtin:), sequence packing.
export * from './tasks.js';
export * from './rational.js';
export { arithmeticSuite, arithmeticTask, type ArithmeticOpts, type ArithOp } from './arithmetic.js';
export { countdownSuite, countdownTask, checkCountdown, type CountdownOpts, type CountdownCheck } from './countdown.js';
export { linearSuite, linearTask, type LinearOpts } from './linear.js';
export { chainSuite, chainTask, type ChainOpts, type ChainOp } from './chain.js';
export * from './registry.js';
export * from './template.js';
export * from './corpus.js';
export * from './dataset.js';
export * from './packing.js';
