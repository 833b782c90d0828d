// Evaluation: answer extraction and equivalence, pass@k / cons@k and the other metrics,
// evaluating a model on verifiable problems, and the `r1ts eval` command.
export * from './answer.js';
export * from './metrics.js';
export * from './evaluate.js';
export * from './command.js';
