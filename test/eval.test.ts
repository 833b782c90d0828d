// Evaluation: answer extraction, the equivalence rules, pass@k against brute force, cons@k
// voting, reflection and length statistics, grading fixed completions, and evaluateModel /
// evalCommand end to end on a tiny random DeepSeek-V3 with a tiny trained BPE.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { extractAnswer, isEquivalent, parseAnswer } from '../src/eval/answer.js';
import {
  answerStyle, consAtK, countReflections, hasReflection, lengthStats, passAt1, passAtK, reflectionStats,
} from '../src/eval/metrics.js';
import {
  evaluateModel, formatEvalTable, formatStyles, gradeCompletions, writeEvalJson, type EvalRecord, type EvalReport,
} from '../src/eval/evaluate.js';
import { evalCommand } from '../src/eval/command.js';
import { arithmeticTask, countdownTask, linearTask, formatPrompt, formatResponse } from '../src/data/index.js';
import { parseConfig } from '../src/models/config.js';
import { createModel, saveModel } from '../src/models/load.js';
import { trainBpe, saveBpeTokenizer, Tokenizer } from '../src/tokenizer/index.js';

// ---------------------------------------------------------------------------------------
// Extraction

test('extractAnswer: last <answer>, else last complete \\boxed / \\fbox, else null', () => {
  assert.equal(extractAnswer(' <think> 2+2 </think> <answer> 4 </answer>'), '4');
  assert.equal(extractAnswer('<answer>3</answer> wait <answer> 5 </answer>'), '5');
  assert.equal(extractAnswer('<answer>7</answer> and \\boxed{9}'), '7', 'tags win over \\boxed');
  assert.equal(extractAnswer('<answer></answer>'), '');
  assert.equal(extractAnswer('so \\boxed{\\frac{1}{2}} then \\boxed{3}'), '3');
  assert.equal(extractAnswer('\\boxed{\\frac{1}{2}}'), '\\frac{1}{2}', 'balanced braces');
  assert.equal(extractAnswer('\\boxed{3} and a cut-off \\boxed{\\frac{1}{'), '3', 'an unclosed \\boxed is skipped');
  assert.equal(extractAnswer('\\fbox{\\{1, 2\\}}'), '\\{1, 2\\}', 'escaped braces do not count');
  assert.equal(extractAnswer('<answer> 5 (no closing tag'), null);
  assert.equal(extractAnswer('no answer here'), null);
  assert.equal(extractAnswer(''), null);
});

// ---------------------------------------------------------------------------------------
// Equivalence

const EQUIVALENCE: [unknown, unknown, boolean][] = [
  // numbers
  ['0.5', '1/2', true], ['1/2', '2/4', true], ['12', '12.0', true], ['12', '21', false], ['12', '+12', true],
  ['-5', '−5', true], ['.5', '0.5', true], ['1e3', '1000', true], ['1.5e-3', '3/2000', true], ['007', '7', true],
  ['1,000', '1000', true], ['1,234,567.5', '1234567.5', true], ['1\\,000', '1000', true], ['1{,}000', '1000', true],
  // fractions and LaTeX
  ['\\frac{3}{4}', '3/4', true], ['\\dfrac{3}{4}', '0.75', true], ['\\tfrac34', '0.75', true], ['-\\frac{1}{2}', '-0.5', true],
  ['\\frac{-1}{2}', '-1/2', true], ['\\frac{\\frac{1}{2}}{2}', '1/4', true], ['3\\frac{1}{2}', '7/2', true], ['-3\\frac12', '-3.5', true], ['x = 3\\frac{1}{2}', '3.5', true], ['1 + 2\\frac{1}{2}', '2', true],
  ['\\frac{1}{3}', '0.333', false], ['\\frac{1}{3}', '0.333333', true], ['2/3', '0.6666666', true], ['1/3', '0.33', false],
  ['0.333', '0.3333', false],
  ['$5$', '5', true], ['\\(5\\)', '5', true], ['\\boxed{5}', '5', true], ['5.', '5', true], ['\\$5', '5', true],
  ['\\left( 1, 2 \\right)', '(1,2)', true], ['90^\\circ', '90', true], ['90^{\\circ}', '90°', true],
  ['5 \\text{ cm}', '5', true], ['5\\text{ cm}^2', '5', true], ['\\text{5}', '5', true], ['12 apples', '12', true],
  ['\\sqrt{4}', '2', true], ['\\sqrt{\\frac{9}{4}}', '1.5', true], ['\\sqrt{2}', '\\sqrt 2', true], ['2\\sqrt{2}', '\\sqrt{8}', false],
  // expressions, exactly
  ['2*3', '6', true], ['2 \\times 3', '6', true], ['2 \\cdot 3', '6', true], ['6 \\div 4', '1.5', true], ['2×3', '6', true],
  ['2^10', '1024', true], ['2^{10}', '1024', true], ['2^-1', '0.5', true], ['-2^2', '-4', true], ['(1+2)*3', '9', true],
  ['2(3+1)', '8', true], ['0.1+0.2', '0.3', true], ['1/3*3', '1', true], ['1/0', '5', false], ['2^1000000', '5', false],
  // variables
  ['x=5', '5', true], ['x = 5', '5', true], ['x_1 = 5', '5', true], ['x = 5', 'y = 5', true], ['5x', '5', false], ['x = 6', '5', false],
  // percentages
  ['50\\%', '0.5', true], ['50%', '50', true], ['50%', '50\\%', true], ['50', '0.5', false], ['50%', '5', false],
  // tuples, intervals, sets, lists
  ['(1,2)', '(2,1)', false], ['(1, 2)', '(1,2)', true], ['(1,2]', '(1,2)', false], ['[0, 1)', '[0,1)', true],
  ['\\{1,2\\}', '\\{2,1\\}', true], ['\\{1,2\\}', '(1,2)', false], ['1, 2', '2, 1', true], ['1, 2', '(1, 2)', true],
  ['x = 1, y = 2', '(1, 2)', true], ['(1, 2, 3)', '(1, 2)', false], ['(\\frac{1}{2}, 3)', '(0.5, 3)', true],
  // text and garbage
  ['yes', 'Yes', true], ['\\pi', '\\pi', true], ['\\pi', '3.14159', false],
  ['garbage', '5', false], ['', '', false], ['', '5', false], ['}{', '5', false], ['((((', '5', false], ['\\frac{1}{', '0.5', false],
  [null, '5', false], ['5', undefined, false], [5, '5', false], ['5'.repeat(5000), '5'.repeat(5000), false],
];

test('isEquivalent: the table of cases, in both orders', () => {
  for (const [a, b, want] of EQUIVALENCE) {
    assert.equal(isEquivalent(a as string, b as string), want, `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    assert.equal(isEquivalent(b as string, a as string), want, `${JSON.stringify(b)} vs ${JSON.stringify(a)}`);
  }
});

test('isEquivalent never throws on garbage', () => {
  const pieces = ['\\frac', '{', '}', '(', ')', '[', ']', '\\{', '\\}', '1', '0', '-', '/', '^', ',', '.', '%', 'x', '=', '\\sqrt', '\\text{', '$', ' ', '\\left', 'e', '9'];
  let seed = 12345;
  const rand = (n: number) => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed % n; };
  for (let i = 0; i < 800; i++) {
    const s = Array.from({ length: 1 + rand(12) }, () => pieces[rand(pieces.length)]).join('');
    assert.equal(typeof isEquivalent(s, '1'), 'boolean');
    parseAnswer(s);
  }
});

// ---------------------------------------------------------------------------------------
// Metrics

function binom(n: number, k: number): bigint {
  if (k < 0 || k > n) return 0n;
  let r = 1n;
  for (let i = 0; i < k; i++) r = (r * BigInt(n - i)) / BigInt(i + 1);
  return r;
}

test('passAtK equals 1 - C(n-c,k)/C(n,k) computed exactly', () => {
  for (let n = 1; n <= 20; n++) {
    for (let c = 0; c <= n; c++) {
      for (let k = 1; k <= n; k++) {
        const exact = 1 - Number(binom(n - c, k)) / Number(binom(n, k));
        assert.ok(Math.abs(passAtK(n, c, k) - exact) < 1e-12, `n=${n} c=${c} k=${k}`);
      }
    }
  }
  // Also by brute force over every k-subset of a small sample set.
  const n = 6, c = 2;
  let hit = 0, total = 0;
  for (let mask = 0; mask < 1 << n; mask++) {
    if (popcount(mask) !== 3) continue;
    total++;
    if (mask & 0b11) hit++; // samples 0 and 1 are the correct ones
  }
  assert.ok(Math.abs(passAtK(n, c, 3) - hit / total) < 1e-12);
  assert.equal(passAtK(10, 0, 5), 0);
  assert.equal(passAtK(10, 10, 1), 1);
  assert.equal(passAtK(4, 1, 1), 0.25);
  assert.ok(Math.abs(passAtK(200, 37, 100) - 1) < 1e-9 && passAtK(200, 37, 100) <= 1);
  assert.throws(() => passAtK(3, 4, 1), RangeError);
  assert.throws(() => passAtK(3, 1, 4), RangeError);
  assert.throws(() => passAtK(3, 1, 0), RangeError);
  assert.equal(passAt1([true, false, false, true]), 0.5);
  assert.equal(passAt1([]), 0);
});

function popcount(x: number): number { let c = 0; while (x) { c += x & 1; x >>>= 1; } return c; }

test('consAtK: majority by equivalence, ties to the first, nulls never win', () => {
  const ref = (a: string) => isEquivalent(a, '1/2');
  let r = consAtK(['3', '0.5', '1/2', '3', '2/4'], ref);
  assert.deepEqual([r.answer, r.votes, r.correct, r.groups, r.index], ['0.5', 3, true, 2, 1]);
  r = consAtK(['3', '0.5', '1/2', '3'], ref); // 2 - 2 tie: '3' came first
  assert.deepEqual([r.answer, r.votes, r.correct], ['3', 2, false]);
  r = consAtK([null, null, null, '0.5'], ref);
  assert.deepEqual([r.answer, r.votes, r.correct], ['0.5', 1, true]);
  r = consAtK([null, null], ref);
  assert.deepEqual([r.answer, r.votes, r.correct, r.index], [null, 0, false, -1]);
  r = consAtK([], ref);
  assert.equal(r.answer, null);
  // isCorrect receives the index of the winning group's first sample.
  const verdicts = [false, true, true];
  r = consAtK(['7', '8', '8'], (_a, i) => verdicts[i]);
  assert.deepEqual([r.answer, r.index, r.correct], ['8', 1, true]);
  // A custom notion of "same answer".
  r = consAtK(['1+2', '3', '2+1'], () => true, (a, b) => a === b);
  assert.deepEqual([r.answer, r.votes], ['1+2', 1]);
});

test('reflection words and length statistics', () => {
  assert.ok(hasReflection('Wait, that is wrong.'));
  assert.ok(hasReflection('Let me double check: 3 + 4 = 7'));
  assert.ok(hasReflection('let me re-check'));
  assert.ok(!hasReflection('I am waiting for the answer.'), 'whole words only');
  assert.equal(countReflections('Wait, let me check: 2 + 2 = 4. Hmm, verify: yes.'), 4);
  assert.equal(countReflections('something odd', ['odd']), 1);
  const s = reflectionStats(['wait wait', 'plain', 'let me verify'], [10, 5, 5]);
  assert.equal(s.rate, 2 / 3);
  assert.equal(s.count, 3);
  assert.equal(s.per1kTokens, 150);
  assert.equal(answerStyle(' <think> 7 + 5 = 12. 12 - 3 = 9. </think> <answer> 9 = 9 </answer>'), 'worked');
  assert.equal(answerStyle(' <think> 7 + 5 - 3 = 9. </think> <answer> x = 9 </answer>'), 'direct', "the answer's '=' does not count");
  assert.equal(answerStyle('7 + 5 = 12, 12 - 3 = 9'), 'worked', 'no tags: the whole text');
  assert.equal(answerStyle(' <think> 9. Let me check: 7 + 5 = 12. </think>'), 'checked');
  assert.deepEqual(lengthStats([]), { mean: 0, median: 0, min: 0, max: 0, std: 0, p90: 0 });
  const l = lengthStats([4, 1, 3, 2]);
  assert.deepEqual([l.mean, l.median, l.min, l.max], [2.5, 2.5, 1, 4]);
  assert.ok(Math.abs(l.std - Math.sqrt(1.25)) < 1e-12);
});

// ---------------------------------------------------------------------------------------
// Grading fixed completions

test('gradeCompletions: fixed completions give the expected report', () => {
  const data: EvalRecord[] = [
    { id: 'cd', task: countdownTask([3, 4, 1], 13, '3*4+1'), question: 'Make 13 from 3, 4, 1' },
    { id: 'ar', task: arithmeticTask(47, '+', 38) },
    { id: 'free', question: 'What is half of one', answer: 'The answer is \\boxed{\\frac{1}{2}}' },
  ];
  const r = (think: string, answer: string) => formatResponse(think, answer);
  const completions = [
    // Countdown: two different valid expressions, a bare value (not valid) and garbage.
    [r('3*4 = 12, +1 = 13', '3*4+1'), r('Wait, let me check: 1+3*4 = 13', '1 + 3*4'), r('13', '13'), 'no tags at all'],
    // Arithmetic: 85 three times in different forms, one wrong.
    [r('47+38', '85'), r('hmm', '84'), ' <answer> 85.0 </answer>', 'so \\boxed{170/2}'],
    // Free-form: graded by equivalence with the reference (reduced from its \boxed).
    [r('', '0.5'), r('', '2/4'), r('', '1/3'), r('', '1/3')],
  ];
  const report = gradeCompletions(data, completions, { config: { data: 'fixed' } });
  const [cd, ar, free] = report.problems;
  assert.deepEqual(cd.samples.map((s) => s.correct), [true, true, false, false]);
  assert.deepEqual(cd.samples.map((s) => s.extracted), ['3*4+1', '1 + 3*4', '13', null]);
  // "13" equals the expressions in value but fails the verifier, so it is a different answer;
  // the valid expressions are one group of 2 and win.
  assert.deepEqual(cd.cons, { answer: '3*4+1', votes: 2, correct: true });
  assert.deepEqual(ar.samples.map((s) => s.correct), [true, false, true, true]);
  assert.deepEqual(ar.cons, { answer: '85', votes: 3, correct: true });
  assert.equal(free.reference, '\\frac{1}{2}');
  assert.deepEqual(free.samples.map((s) => s.correct), [true, true, false, false]);
  assert.deepEqual(free.cons, { answer: '0.5', votes: 2, correct: true }, '2-2 tie goes to the first answer');

  const m = report;
  assert.equal(m.numProblems, 3);
  assert.equal(m.samples, 4);
  assert.equal(m.pass1, (2 / 4 + 3 / 4 + 2 / 4) / 3);
  assert.equal(m.consK, 1);
  assert.deepEqual(Object.keys(m.passAtK), ['1', '4']);
  assert.ok(Math.abs(m.passAtK['1'] - m.pass1) < 1e-12);
  assert.equal(m.passAtK['4'], 1);
  assert.equal(m.answerRate, 11 / 12);
  assert.equal(m.formatRate, 9 / 12, 'the tagless, the bare <answer> and the \\boxed samples are malformed');
  assert.equal(m.reflectionRate, 2 / 12);
  // One worked answer (right), two checked ("Wait", "hmm"; one right), nine direct (five right).
  assert.deepEqual(m.byStyle, {
    direct: { share: 9 / 12, accuracy: 5 / 9 }, worked: { share: 1 / 12, accuracy: 1 }, checked: { share: 2 / 12, accuracy: 0.5 },
  });
  assert.equal(formatStyles(m), 'direct 75% (56% right), worked 8% (100% right), checked 17% (50% right)');
  assert.deepEqual(m.bySuite, {
    countdown: { problems: 1, pass1: 0.5, consK: 1 },
    arithmetic: { problems: 1, pass1: 0.75, consK: 1 },
  });
  assert.equal(cd.passAtK['4'], 1);
  assert.ok(Math.abs(cd.passAtK['1'] - 0.5) < 1e-12);

  // A custom verifier replaces the default one.
  const strict = gradeCompletions(data, completions, { verify: (_rec, a) => a === '85' });
  assert.deepEqual(strict.problems[1].samples.map((s) => s.correct), [true, false, false, false]);
  assert.equal(strict.problems[0].correct, 0);

  const table = formatEvalTable(report);
  for (const key of ['pass@1', 'cons@4', 'pass@4', 'format', 'reflection', 'response length']) assert.ok(table.includes(key), key);
  assert.throws(() => gradeCompletions(data, completions.slice(0, 2)), /3 records but 2/);
});

// ---------------------------------------------------------------------------------------
// End to end on a tiny random model

const SPECIALS = ['<|bos|>', '<|eos|>', '<|pad|>'];

function tinySetup(): { tokenizer: Tokenizer; bpe: ReturnType<typeof trainBpe>; config: Record<string, unknown> } {
  const tasks = [arithmeticTask(12, '+', 30), arithmeticTask(7, '*', 6), linearTask(2, 1, 9)];
  const corpus = tasks.flatMap((t) => [formatPrompt(t.question, 'compact') + formatResponse(`${t.question} gives ${t.answer}.`, t.answer)]);
  const bpe = trainBpe(corpus.concat(corpus), { vocabSize: 300, specialTokens: SPECIALS });
  const tokenizer = Tokenizer.fromBpe(bpe, { bosToken: SPECIALS[0], eosToken: SPECIALS[1], padToken: SPECIALS[2] });
  const config = {
    architectures: ['DeepseekV3ForCausalLM'], model_type: 'deepseek_v3',
    vocab_size: tokenizer.vocabSize + 4, // a model vocabulary larger than the tokenizer's
    hidden_size: 32, intermediate_size: 64, moe_intermediate_size: 16,
    num_hidden_layers: 2, first_k_dense_replace: 1, num_attention_heads: 2, num_key_value_heads: 2,
    q_lora_rank: 16, kv_lora_rank: 16, qk_nope_head_dim: 8, qk_rope_head_dim: 8, v_head_dim: 8,
    n_routed_experts: 4, n_shared_experts: 1, num_experts_per_tok: 2, n_group: 1, topk_group: 1,
    norm_topk_prob: true, routed_scaling_factor: 2.5, scoring_func: 'sigmoid', topk_method: 'noaux_tc',
    num_nextn_predict_layers: 0, hidden_act: 'silu', max_position_embeddings: 128, rms_norm_eps: 1e-6,
    rope_theta: 10000, rope_scaling: null, rope_interleave: true, attention_bias: false,
    tie_word_embeddings: false, initializer_range: 0.02,
    bos_token_id: 0, eos_token_id: 1, pad_token_id: 2,
  };
  return { tokenizer, bpe, config };
}

const PROBLEMS: EvalRecord[] = [
  { id: 'a', task: arithmeticTask(12, '+', 30) },
  { id: 'b', question: 'Compute 7 * 6', answer: '42' },
  { id: 'c', task: linearTask(2, 1, 9) },
];

function checkReportShape(report: EvalReport, nProblems: number, K: number): void {
  const m = report;
  assert.equal(m.numProblems, nProblems);
  assert.equal(m.samples, K);
  assert.equal(report.problems.length, nProblems);
  for (const p of report.problems) {
    assert.equal(p.samples.length, K);
    assert.equal(p.correct, p.samples.filter((s) => s.correct).length);
    for (const s of p.samples) {
      assert.equal(typeof s.text, 'string');
      assert.ok(s.tokens >= 1);
      assert.ok(['stop_token', 'stop_string', 'length'].includes(s.finishReason!));
      if (s.correct) assert.notEqual(s.extracted, null);
    }
  }
  for (const v of [m.pass1, m.consK, m.formatRate, m.answerRate, m.truncatedRate, m.reflectionRate, ...Object.values(m.passAtK)]) {
    assert.ok(v >= 0 && v <= 1, String(v));
  }
  assert.deepEqual(Object.keys(m.passAtK), K > 1 ? ['1', String(K)] : ['1']);
  assert.ok(Math.abs(m.passAtK['1'] - m.pass1) < 1e-12);
  assert.ok(m.passAtK[String(K)] >= m.pass1 - 1e-12);
  assert.ok(m.consK <= m.passAtK[String(K)] + 1e-12, 'a correct vote needs a correct sample');
  assert.ok(m.length.mean >= 1 && m.length.max <= (report.config['maxNewTokens'] as number));
  assert.ok(m.reflectionPer1kTokens >= 0);
}

test('evaluateModel end to end: tiny random model, 3 problems, K = 2', () => {
  const { tokenizer, config } = tinySetup();
  const model = createModel(parseConfig(config, 'tiny'), { seed: 3 });
  const opts = { model, tokenizer, data: PROBLEMS, samples: 2, maxNewTokens: 12, batchSize: 4, seed: 5, promptStyle: 'compact' as const, quiet: true };
  const report = evaluateModel(opts);
  checkReportShape(report, 3, 2);
  assert.equal(report.config['temperature'], 0.6);
  assert.equal(report.config['topP'], 0.95);
  assert.ok(report.timing!.generatedTokens >= 6);
  // Seeded: the same options give the same completions.
  const again = evaluateModel(opts);
  assert.deepEqual(again.problems.map((p) => p.samples.map((s) => s.text)), report.problems.map((p) => p.samples.map((s) => s.text)));
  // maxNewTokens is lowered to fit the context.
  const long = evaluateModel({ ...opts, data: PROBLEMS.slice(0, 1), samples: 1, maxNewTokens: 10_000, temperature: 0 });
  assert.ok((long.config['maxNewTokens'] as number) < 128);
});

test('evalCommand: checkpoint folder with tokenizer.json, builtin data, JSON report', async () => {
  const { bpe, config } = tinySetup();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'r1ts-eval-'));
  try {
    saveModel(createModel(parseConfig(config, 'tiny'), { seed: 4 }), dir);
    saveBpeTokenizer(bpe, dir, { bosToken: SPECIALS[0], eosToken: SPECIALS[1], padToken: SPECIALS[2] });
    const lines: string[] = [];
    const out = path.join(dir, 'out', 'report.json');
    const report = await evalCommand({
      model: dir, data: 'builtin:arithmetic:test', samples: 2, limit: 2, maxNewTokens: 6, out, seed: 1,
      promptStyle: 'compact', quiet: true, log: (l) => lines.push(l),
    });
    checkReportShape(report, 2, 2);
    const written = JSON.parse(fs.readFileSync(out, 'utf8')) as EvalReport;
    assert.equal(written.pass1, report.pass1);
    assert.equal(written.config['data'], 'builtin:arithmetic:test');
    assert.ok(lines.join('\n').includes('cons@2'));
    // A JSONL file with `question` instead of `prompt`.
    const file = path.join(dir, 'qs.jsonl');
    fs.writeFileSync(file, '{"question": "Compute 2 + 2", "answer": "4"}\n');
    const r2 = await evalCommand({ model: dir, data: file, samples: 1, maxNewTokens: 4, promptStyle: 'compact', quiet: true, log: () => {} });
    assert.equal(r2.problems[0].reference, '4');
    assert.ok(fs.existsSync(path.join(dir, 'eval-qs.json')));
    writeEvalJson(path.join(dir, 'again.json'), r2);
    await assert.rejects(evalCommand({ model: path.join(dir, 'out'), data: file, quiet: true, log: () => {} }), /no tokenizer/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
