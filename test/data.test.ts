// The data layer: task suites and verifiers, splits, the corpus and SFT data, datasets
// (JSONL / Parquet / builtin:), packing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../src/tensor/random.js';
import {
  BUILTIN_SUITES, CORRECT_KINDS, DEFAULT_MIX, DOC_KINDS, IGNORE_INDEX, R1_ZERO_TEMPLATE,
  arithmeticSuite, arithmeticTask, chainSuite, chainTask, checkCountdown, countdownSuite, countdownTask, evaluateExpression,
  extractAnswer, generateCorpus, generateCorpusDocs, generateSftExamples, getSuite, isHeldOutKey,
  isWellFormatted, linearSuite, linearTask, loadDataset, loadDatasetSync, makeSplits, packSequences,
  padBatch, parseNumber, r1ZeroPrompt, readParquet, summarizeCorpus, verifyTask, writeJsonl, writeParquet,
  type DocKind, type Task,
} from '../src/data/index.js';

const suites = BUILTIN_SUITES.map((n) => getSuite(n));

function tmp(): { dir: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'r1ts-data-'));
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

// ---------------------------------------------------------------------------------------
// Suites

test('generation is deterministic from the seed', () => {
  for (const s of suites) {
    const a = s.generate(new Rng(7), 50), b = s.generate(new Rng(7), 50), c = s.generate(new Rng(8), 50);
    assert.deepEqual(a, b, s.name);
    assert.notDeepEqual(a, c, s.name);
    assert.deepEqual(makeSplits(s, 3, { train: 40, heldOut: 10 }), makeSplits(s, 3, { train: 40, heldOut: 10 }));
  }
  assert.deepEqual(generateCorpus(11, { nDocs: 60 }), generateCorpus(11, { nDocs: 60 }));
  assert.notDeepEqual(generateCorpus(11, { nDocs: 60 }), generateCorpus(12, { nDocs: 60 }));
  assert.deepEqual(generateSftExamples(5, { n: 30 }), generateSftExamples(5, { n: 30 }));
});

test('every generated task verifies its reference answer and rejects a slip', () => {
  const rng = new Rng(1);
  for (const s of suites) {
    for (const t of s.generate(new Rng(2), 300)) {
      assert.ok(s.verify(t, t.answer), `${t.id}: reference ${t.answer}`);
      assert.ok(s.verify(t, ` ${t.answer} `), `${t.id}: spaces`);
      const bad = s.worked!.wrongAnswer(t, rng);
      assert.ok(!s.verify(t, bad), `${t.id}: slip ${bad} accepted`);
      const st = s.worked!.steps(t, rng, true);
      assert.ok(!s.verify(t, st.answer), `${t.id}: stepwise slip ${st.answer} accepted`);
      assert.ok(s.verify(t, s.worked!.steps(t, rng, false).answer), `${t.id}: clean steps`);
      assert.ok(s.worked!.check(t, t.answer).ok && !s.worked!.check(t, bad).ok, `${t.id}: check`);
      assert.equal(s.key(t), s.key(JSON.parse(JSON.stringify(t)) as Task)); // survives JSON
      assert.doesNotMatch(t.question, /[.?]$/);
    }
  }
});

test('difficulty knobs are honoured', () => {
  for (const t of arithmeticSuite.generate(new Rng(3), 200, { ops: ['+'], digits: 3 })) {
    const { a, b, op } = t.meta as { a: number; b: number; op: string };
    assert.equal(op, '+');
    assert.ok(a >= 100 && a <= 999 && b >= 100 && b <= 999);
  }
  for (const t of arithmeticSuite.generate(new Rng(3), 200, { ops: ['-'] })) {
    assert.ok(Number(t.answer) >= 0, 'no negative differences by default');
  }
  for (const t of arithmeticSuite.generate(new Rng(3), 100, { ops: ['*'], mulDigits: [2, 1] })) {
    assert.ok(arithmeticSuite.verify(t, String((t.meta.a as number) * (t.meta.b as number))));
  }
  for (const t of countdownSuite.generate(new Rng(3), 200, { count: 4, maxNumber: 6, maxTarget: 30 })) {
    const { numbers, target } = t.meta as { numbers: number[]; target: number };
    assert.equal(numbers.length, 4);
    assert.ok(numbers.every((n) => n >= 1 && n <= 6) && target >= 1 && target <= 30 && !numbers.includes(target));
    // the reference solution uses every number by default
    assert.deepEqual([...evaluateExpression(t.answer).literals].sort(), [...numbers].sort());
  }
  for (const t of linearSuite.generate(new Rng(3), 200, { maxCoef: 3, negativeCoef: true, maxX: 4 })) {
    assert.ok(Math.abs(t.meta.a as number) <= 3 && Math.abs(Number(t.answer)) <= 4);
  }
});

test('chain: running totals stay non-negative, reorderings are one problem, steps and checks are right', () => {
  for (const t of chainSuite.generate(new Rng(5), 300, { terms: 5, maxOperand: 6 })) {
    const { first, steps } = t.meta as { first: number; steps: { op: string; x: number }[] };
    assert.equal(steps.length, 4);
    let acc = first;
    for (const s of steps) {
      assert.ok(s.x >= 1 && s.x <= 6);
      acc += s.op === '+' ? s.x : -s.x;
      assert.ok(acc >= 0, t.question);
    }
    assert.equal(t.answer, String(acc));
  }
  const a = chainTask(7, [{ op: '+', x: 5 }, { op: '-', x: 3 }]);
  const b = chainTask(5, [{ op: '-', x: 3 }, { op: '+', x: 7 }]);
  assert.equal(a.question, 'Compute 7 + 5 - 3');
  assert.equal(chainSuite.key(a), chainSuite.key(b));
  assert.notEqual(chainSuite.key(a), chainSuite.key(chainTask(7, [{ op: '-', x: 5 }, { op: '+', x: 3 }])));
  const w = chainSuite.worked!;
  assert.deepEqual(w.steps(a, new Rng(1), false), { text: '7 + 5 = 12. 12 - 3 = 9. So 7 + 5 - 3 = 9.', answer: '9' });
  assert.deepEqual(w.check(a, '9'), { text: '7 + 5 = 12, 12 - 3 = 9. Correct.', ok: true });
  assert.deepEqual(w.check(a, '10'), { text: '7 + 5 = 12, 12 - 3 = 9, not 10.', ok: false });
  for (let seed = 0; seed < 20; seed++) assert.notEqual(w.steps(a, new Rng(seed), true).answer, '9');
  assert.ok(chainSuite.verify(a, 'x = 9') === false && chainSuite.verify(a, '9.0') && chainSuite.verify(a, '18/2'));
});

test('chain: minTerms mixes chain lengths; bad lengths are named', () => {
  const counts = new Map<number, number>();
  for (const t of chainSuite.generate(new Rng(6), 600, { minTerms: 2, terms: 5 })) {
    const n = (t.meta as { steps: unknown[] }).steps.length + 1;
    counts.set(n, (counts.get(n) ?? 0) + 1);
  }
  assert.deepEqual([...counts.keys()].sort(), [2, 3, 4, 5]);
  for (const c of counts.values()) assert.ok(c > 100, `uneven lengths: ${[...counts]}`);
  assert.throws(() => chainSuite.generate(new Rng(1), 1, { minTerms: 5, terms: 4 }), /minTerms must be an integer in 2\.\.terms \(4\), got 5/);
  assert.throws(() => chainSuite.generate(new Rng(1), 1, { minTerms: 1 }), /minTerms/);
});

test('arithmetic verifier: exact numerals only', () => {
  const t = arithmeticTask(47, '+', 38);
  assert.equal(t.answer, '85');
  assert.equal(t.question, 'Compute 47 + 38');
  for (const ok of ['85', ' 85 ', '+85', '85.0', '170/2', '\\boxed{85}', '85.']) assert.ok(arithmeticSuite.verify(t, ok), ok);
  for (const bad of ['84', '', '85a', 'eighty-five', '8 5', '85.1', '47 + 38', 'x']) assert.ok(!arithmeticSuite.verify(t, bad), bad);
  const m = arithmeticTask(23, '*', 45);
  assert.ok(arithmeticSuite.verify(m, '1035') && arithmeticSuite.verify(m, '1,035') && !arithmeticSuite.verify(m, '1,35'));
  assert.equal(arithmeticSuite.key(arithmeticTask(3, '+', 5)), arithmeticSuite.key(arithmeticTask(5, '+', 3)));
  assert.notEqual(arithmeticSuite.key(arithmeticTask(8, '-', 5)), arithmeticSuite.key(arithmeticTask(5, '-', 8)));
  assert.ok(arithmeticSuite.verify(arithmeticTask(5, '-', 8), '-3'));
});

test('linear verifier', () => {
  const t = linearTask(3, 4, 19);
  assert.equal(t.question, 'Solve 3x + 4 = 19 for x');
  assert.equal(t.answer, '5');
  for (const ok of ['5', 'x = 5', 'x=5', '5.0', '10/2', 'X = 5']) assert.ok(linearSuite.verify(t, ok), ok);
  for (const bad of ['6', '-5', '5/2', 'x', '', 'y = 5 + 1']) assert.ok(!linearSuite.verify(t, bad), bad);
  assert.equal(linearTask(-1, -2, 5).question, 'Solve -x - 2 = 5 for x');
  assert.ok(linearSuite.verify(linearTask(-1, -2, 5), '-7'));
  assert.throws(() => linearTask(2, 0, 3), /no integer solution/);
});

test('countdown verifier: usage, exact rationals, edge cases', () => {
  const t = countdownTask([3, 5, 2], 16, '(3 + 5) * 2');
  const v = (s: string): boolean => countdownSuite.verify(t, s);
  assert.ok(v('(3 + 5) * 2'));
  assert.ok(v('2*(5+3)'));
  assert.ok(v('(3+5)×2'), 'unicode times');
  assert.ok(v('(3 + 5) * 2 = 16'), 'trailing = target');
  assert.ok(!v('(3 + 5) * 2 = 15'), 'trailing = wrong number');
  assert.ok(!v('3 * 5 + 2'), 'wrong value (17)');
  assert.ok(!v('(3 + 5) * 2 * 1'), 'a number that is not given');
  assert.ok(!v('(5 + 5 + 3 + 3) '), 'reusing numbers');
  assert.ok(!v('8 * 2'), '8 is not given');
  assert.ok(!v('16'), '16 is not given');
  assert.ok(!v(''), 'empty');
  assert.ok(!v('(3 + 5 * 2'), 'unbalanced');
  assert.ok(!v('-3 + 5 * 2 + 3'), 'no unary minus');
  assert.ok(!v('35 - 2'), 'no concatenation');
  assert.ok(!v('3 + 5 + 2 ^ 2'), 'no powers');
  // not every number has to be used
  const u = countdownTask([4, 6, 9], 10, '4 + 6');
  assert.ok(countdownSuite.verify(u, '6 + 4'));
  // a number given twice may be used twice, not three times
  const d = countdownTask([5, 5, 1], 24, '5 * 5 - 1');
  assert.ok(countdownSuite.verify(d, '5 * 5 - 1'));
  assert.ok(!countdownSuite.verify(countdownTask([5, 1, 2], 24, '5 * 5 - 1'), '5 * 5 - 1'));
  // division by zero fails; a non-integer intermediate is fine when the result is exact
  assert.equal(checkCountdown([3, 3, 4], 4, '4 / (3 - 3)').reason, 'division by zero');
  assert.ok(checkCountdown([7, 2, 4], 14, '7 / 2 * 4').ok, 'exact rational intermediate');
  assert.ok(checkCountdown([1, 3, 3], 1, '1 / 3 * 3').ok);
  assert.ok(!checkCountdown([2, 3, 7], 2, '7 / 3').ok);
  assert.match(checkCountdown([3, 5, 2], 16, '(3 + 5) * 3').reason, /more often than given/);
  assert.match(checkCountdown([3, 5, 2], 16, '7 + 9').reason, /not given/);
  // key ignores the order of the numbers
  assert.equal(countdownSuite.key(t), countdownSuite.key(countdownTask([2, 3, 5], 16, '2 * (3 + 5)')));
});

test('rationals and numerals', () => {
  assert.equal(evaluateExpression('(7 / 2) * 4').value.toString(), '14');
  assert.equal(evaluateExpression('1 - 2 - 3').value.toString(), '-4', 'left associative');
  assert.equal(evaluateExpression('8 / 4 / 2').value.toString(), '1');
  assert.equal(evaluateExpression('2 + 3 * 4').value.toString(), '14');
  assert.throws(() => evaluateExpression('1 / 0'), RangeError);
  assert.throws(() => evaluateExpression('1 +'), /end of expression/);
  assert.equal(parseNumber('-3/6')!.toString(), '-1/2');
  assert.equal(parseNumber('2.50')!.toString(), '5/2');
  assert.equal(parseNumber('1/0'), null);
  assert.equal(parseNumber('1e3'), null);
});

// ---------------------------------------------------------------------------------------
// Splits

test('held-out split shares no problem with training', () => {
  for (const s of suites) {
    const { train, heldOut } = makeSplits(s, 1, { train: 3000, heldOut: 200 });
    assert.equal(train.length, 3000);
    assert.equal(heldOut.length, 200);
    const held = new Set(heldOut.map((t) => s.key(t)));
    assert.equal(held.size, 200, `${s.name}: held-out problems are distinct`);
    for (const t of train) assert.ok(!held.has(s.key(t)), `${s.name}: ${t.id} in both`);
    // whatever the seeds: the held-out partition is fixed by the problem key
    const other = makeSplits(s, 99, { train: 3000, heldOut: 200 });
    for (const t of other.train) assert.ok(!held.has(s.key(t)), `${s.name}: ${t.id} leaks across seeds`);
    for (const t of heldOut) assert.ok(isHeldOutKey(s.name, s.key(t)));
    // the corpus and the SFT data come from the train partition too
    for (const d of generateCorpusDocs(4, { nDocs: 600, suites: [s.name] })) assert.ok(!held.has(s.key(d.task)));
    for (const e of generateSftExamples(4, { n: 300, suites: [s.name] })) assert.ok(!held.has(s.key(e.task)));
  }
  // commuted variants count as the same problem
  const { train, heldOut } = makeSplits(arithmeticSuite, 2, { train: 2000, heldOut: 5, opts: { ops: ['+'], digits: 1 } });
  const held = new Set(heldOut.map((t) => `${Math.min(t.meta.a as number, t.meta.b as number)}+${Math.max(t.meta.a as number, t.meta.b as number)}`));
  for (const t of train) assert.ok(!held.has(`${Math.min(t.meta.a as number, t.meta.b as number)}+${Math.max(t.meta.a as number, t.meta.b as number)}`));
  assert.equal(heldOut.length, 5);
  let trainPairs = 0;
  for (let a = 1; a <= 9; a++) for (let b = 1; b <= 9; b++) if (!isHeldOutKey('arithmetic', `${Math.min(a, b)}+${Math.max(a, b)}`)) trainPairs++;
  assert.ok(trainPairs < 81);
  assert.equal(new Set(train.map((t) => t.question)).size, trainPairs, 'every ordered pair of the train partition appears');
});

test('makeSplits fails clearly when the held-out space is too small', () => {
  assert.throws(() => makeSplits(arithmeticSuite, 1, { train: 10, heldOut: 500, opts: { ops: ['*'] } }), /distinct heldout problems/);
});

// ---------------------------------------------------------------------------------------
// Corpus

test('corpus mix proportions, correctness and format', () => {
  const n = 3000;
  const docs = generateCorpusDocs(21, { nDocs: n });
  assert.equal(docs.length, n);
  const sum = summarizeCorpus(docs);
  for (const k of DOC_KINDS) assert.ok(Math.abs(sum.kinds[k] - DEFAULT_MIX[k]) <= 1 / n + 1e-9, `${k}: ${sum.kinds[k]}`);
  // suites balanced
  for (const s of BUILTIN_SUITES) assert.ok(Math.abs(docs.filter((d) => d.task.suite === s).length - n / BUILTIN_SUITES.length) <= 1);
  // base-model-like pass rate is modest; long self-checking answers are right more often
  assert.ok(sum.correct >= 0.3 && sum.correct <= 0.55, `correct ${sum.correct}`);
  assert.ok(sum.correctByLengthTercile[0] < sum.correctByLengthTercile[1] && sum.correctByLengthTercile[1] < sum.correctByLengthTercile[2], `${sum.correctByLengthTercile}`);
  assert.ok(sum.meanLengthCorrect > sum.meanLengthOther);
  assert.ok(Math.abs(sum.malformed - DEFAULT_MIX.broken) <= 1 / n + 1e-9);
  for (const d of docs) {
    assert.equal(d.text, d.prompt + d.response);
    assert.equal(d.prompt, r1ZeroPrompt(d.task.question));
    assert.equal(isWellFormatted(d.response), d.kind !== 'broken', `${d.kind}: ${d.response}`);
    assert.equal(d.correct, (CORRECT_KINDS as readonly DocKind[]).includes(d.kind), `${d.kind}: ${d.response}`);
    if (d.kind === 'wrong' || d.kind === 'wrongStepwise') assert.ok(!verifyTask(d.task, d.finalAnswer!), d.response);
  }
  // a custom mix: kinds left out get none
  const only = summarizeCorpus(generateCorpusDocs(3, { nDocs: 100, mix: { direct: 1, wrong: 3 } }));
  assert.equal(only.kinds.direct, 0.25);
  assert.equal(only.kinds.wrong, 0.75);
  assert.throws(() => generateCorpus(1, { nDocs: 10, mix: { bogus: 1 } as never }), /unknown document kind 'bogus'/);
  // compact prompts
  const c = generateCorpusDocs(3, { nDocs: 5, promptStyle: 'compact' });
  for (const d of c) assert.match(d.prompt, /^User: .*\. Assistant:$/);
});

test('reflection documents expose the slip and end in the correct answer', () => {
  const docs = generateCorpusDocs(8, { nDocs: 300, mix: { reflect: 1 } });
  assert.equal(docs.length, 300);
  for (const d of docs) {
    assert.ok(d.correct, d.response);
    assert.ok(verifyTask(d.task, extractAnswer(d.response)!));
    assert.match(d.response, /(Let me check|Let me verify|Wait, let me check|Let me double-check): .*, not /);
    assert.match(d.response, /Wait, |does not match/);
    assert.match(d.response, /<\/answer>$/);
  }
  // verify documents confirm a correct answer
  for (const d of generateCorpusDocs(9, { nDocs: 150, mix: { verify: 1 } })) {
    assert.ok(d.correct);
    assert.match(d.response, /Correct\. <\/think>/);
  }
});

test('SFT examples are correct and well formatted', () => {
  const ex = generateSftExamples(2, { n: 400 });
  assert.equal(ex.length, 400);
  const styles = new Set(ex.map((e) => e.style));
  for (const s of ['direct', 'stepwise', 'reflect', 'verify']) assert.ok(styles.has(s as never));
  for (const e of ex) {
    assert.ok(e.prompt.endsWith('Assistant:') && e.response.startsWith(' <think> '));
    assert.ok(isWellFormatted(e.response), e.response);
    assert.ok(verifyTask(e.task, extractAnswer(e.response)!), e.response);
  }
  assert.ok(generateSftExamples(2, { n: 50, styles: { stepwise: 1 } }).every((e) => e.style === 'stepwise'));
});

test('template text and format helpers', () => {
  assert.equal(r1ZeroPrompt('Compute 2 + 2'),
    'A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The assistant first thinks about the reasoning process in the mind and then provides the user with the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>. User: Compute 2 + 2. Assistant:');
  assert.ok(R1_ZERO_TEMPLATE.includes('{question}'));
  assert.ok(isWellFormatted(' <think> a </think> <answer> 4 </answer>'));
  assert.ok(isWellFormatted('<think>a</think>\n<answer>4</answer>\n'));
  for (const bad of ['<think> a <answer> 4 </answer>', 'a </think> <answer> 4 </answer>', '<think> a </think> 4',
    '<think> a </think> <answer> 4', '4', '<think> a </think> <answer> 4 </answer> more', '<think> <think> </think> <answer> 4 </answer>']) {
    assert.ok(!isWellFormatted(bad), bad);
  }
  assert.equal(extractAnswer('<answer> 1 </answer> x <answer> 2 </answer>'), '2');
  assert.equal(extractAnswer('no tags'), null);
});

// ---------------------------------------------------------------------------------------
// Datasets

test('JSONL: field mapping, round trip of verifiable tasks, errors', async () => {
  const { dir, done } = tmp();
  try {
    const p = join(dir, 'data.jsonl');
    writeFileSync(p, [
      JSON.stringify({ question: 'What is 2+2', solution: 4, extra: { note: 'n' } }),
      '',
      JSON.stringify({ question: 'What is 3+3', solution: '6', id: 'q2', extra: { note: 'm' } }),
    ].join('\n') + '\n');
    const recs = await loadDataset(p, { fields: { prompt: 'question', answer: 'solution', note: 'extra.note' } });
    assert.deepEqual(recs, [
      { prompt: 'What is 2+2', answer: '4', note: 'n', id: `${p}#0` },
      { prompt: 'What is 3+3', answer: '6', note: 'm', id: 'q2' },
    ]);
    assert.deepEqual(loadDatasetSync(p, { fields: { prompt: 'question' }, limit: 1 }).map((r) => r.prompt), ['What is 2+2']);

    // tasks written as JSONL come back verifiable
    const tasks = countdownSuite.generate(new Rng(1), 5);
    const tp = join(dir, 'sub', 'tasks.jsonl');
    writeJsonl(tp, tasks);
    const back = await loadDataset(tp, { fields: { prompt: 'question', answer: 'answer' } });
    assert.equal(back.length, 5);
    back.forEach((r, i) => {
      assert.equal(r.id, tasks[i].id);
      assert.equal(r.suite, 'countdown');
      assert.ok(r.task && verifyTask(r.task, tasks[i].answer) && !verifyTask(r.task, '1 + 1'));
    });

    // errors name the file, the line / record and the field
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, '{"prompt": "a"}\n\n{"prompt": "b",}\n');
    await assert.rejects(loadDataset(bad), (e: Error) => e.message.includes(bad) && /bad JSON on line 3/.test(e.message));
    const missing = join(dir, 'missing.jsonl');
    writeFileSync(missing, '{"question": "a", "solution": "1"}\n{"question": "b"}\n');
    await assert.rejects(loadDataset(missing, { fields: { prompt: 'question', answer: 'solution' } }),
      (e: Error) => e.message.includes(missing) && /record 2 \(line 2\): missing field 'solution' \(mapped to 'answer'\); fields present: question/.test(e.message));
    const notObj = join(dir, 'arr.jsonl');
    writeFileSync(notObj, '{"prompt": "a"}\n[1, 2]\n');
    await assert.rejects(loadDataset(notObj), /arr\.jsonl record 2 \(line 2\): expected an object, got an array/);
    const objField = join(dir, 'obj.jsonl');
    writeFileSync(objField, '{"prompt": {"x": 1}}\n');
    await assert.rejects(loadDataset(objField), /field 'prompt' \(for 'prompt'\) is object, expected a string or a number/);
    await assert.rejects(loadDataset(join(dir, 'nope.jsonl')), /nope\.jsonl: no such file/);
    await assert.rejects(loadDataset(join(dir, 'data.csv')), /unknown dataset format '\.csv'/);
    const arr = join(dir, 'data.json');
    writeFileSync(arr, JSON.stringify([{ prompt: 'p', answer: 1 }]));
    assert.deepEqual(await loadDataset(arr), [{ prompt: 'p', answer: '1', id: `${arr}#0` }]);
  } finally { done(); }
});

test('Parquet: write, read with field mapping, errors', async () => {
  const { dir, done } = tmp();
  try {
    const p = join(dir, 'data.parquet');
    const rows = [
      { problem: 'Compute 2 + 3', solution: '5', level: 1, big: 2 ** 40, meta: { a: 1 } },
      { problem: 'Compute 4 * 4', solution: '16', level: 2, big: 7, meta: null },
      { problem: 'Compute 9 - 1', solution: '8', level: 3, big: -3, meta: { a: 3 } },
    ];
    writeParquet(p, rows);
    const raw = await readParquet(p);
    assert.equal(raw.length, 3);
    assert.equal(raw[0].big, 2 ** 40, 'INT64 comes back as a number');
    const recs = await loadDataset(p, { fields: { prompt: 'problem', answer: 'solution', level: 'level' } });
    assert.deepEqual(recs.map((r) => [r.prompt, r.answer, r.level]), [['Compute 2 + 3', '5', 1], ['Compute 4 * 4', '16', 2], ['Compute 9 - 1', '8', 3]]);
    await assert.rejects(loadDataset(p, { fields: { prompt: 'problem', answer: 'answer' } }),
      (e: Error) => e.message.includes(p) && /record 1 \(row 0\): missing field 'answer'/.test(e.message) && /problem, solution/.test(e.message));
    // tasks through Parquet stay verifiable (meta as a JSON column)
    const tasks = linearSuite.generate(new Rng(4), 4);
    const tp = join(dir, 'tasks.parquet');
    writeParquet(tp, tasks as unknown as Record<string, unknown>[]);
    const back = await loadDataset(tp, { fields: { prompt: 'question', answer: 'answer' } });
    back.forEach((r, i) => assert.ok(r.task && verifyTask(r.task, tasks[i].answer)));
    // a GZIP-compressed file (the codecs come from hyparquet-compressors)
    const gz = join(dir, 'gz.parquet');
    writeFileSync(gz, new Uint8Array(parquetWriteBuffer({
      codec: 'GZIP', compressors: { GZIP: (b: Uint8Array) => new Uint8Array(gzipSync(b)) },
      columnData: [{ name: 'prompt', data: ['a', 'b'], type: 'STRING' }, { name: 'answer', data: [1, 2], type: 'INT32' }],
    })));
    assert.deepEqual((await loadDataset(gz)).map((r) => [r.prompt, r.answer]), [['a', '1'], ['b', '2']]);
    const junk = join(dir, 'junk.parquet');
    writeFileSync(junk, 'not a parquet file at all');
    await assert.rejects(loadDataset(junk), /junk\.parquet: cannot read as Parquet/);
    assert.throws(() => loadDatasetSync(p), /needs the async loadDataset/);
  } finally { done(); }
});

test('builtin datasets resolve to generated splits', async () => {
  const train = await loadDataset('builtin:arithmetic');
  const test2 = await loadDataset('builtin:arithmetic:test');
  assert.equal(train.length, 2000);
  assert.equal(test2.length, 200);
  assert.deepEqual(await loadDataset('builtin:arithmetic:train', { limit: 5 }), train.slice(0, 5));
  const keys = new Set(test2.map((r) => arithmeticSuite.key(r.task!)));
  for (const r of train) assert.ok(!keys.has(arithmeticSuite.key(r.task!)));
  for (const r of test2) {
    assert.equal(r.prompt, r.task!.question);
    assert.ok(verifyTask(r.task!, r.answer!));
  }
  const all = await loadDataset('builtin:all:test', { test: 30 * BUILTIN_SUITES.length });
  assert.equal(all.length, 30 * BUILTIN_SUITES.length);
  for (const s of BUILTIN_SUITES) assert.equal(all.filter((r) => r.suite === s).length, 30);
  const cd = await loadDataset('builtin:countdown:test', { test: 20, suiteOpts: { countdown: { count: 4 } } });
  assert.ok(cd.every((r) => (r.task!.meta.numbers as number[]).length === 4));
  assert.deepEqual(await loadDataset('builtin:linear:test', { seed: 5, test: 10 }), await loadDataset('builtin:linear:test', { seed: 5, test: 10 }));
  await assert.rejects(loadDataset('builtin:nosuch'), /unknown builtin dataset 'builtin:nosuch' \(known: builtin:arithmetic/);
  await assert.rejects(loadDataset('builtin:linear:dev'), /unknown split 'dev'/);
});

// ---------------------------------------------------------------------------------------
// Packing

test('packSequences concatenates with EOS and cuts fixed windows', () => {
  const docs = [[1, 2, 3], [4, 5], [6, 7, 8, 9]];
  const w = packSequences(docs, 4, { eosId: 0 });
  assert.deepEqual(w.map((x) => [...x]), [[1, 2, 3, 0], [4, 5, 0, 6], [7, 8, 9, 0]]);
  const tail = packSequences(docs, 5, { eosId: 0, padId: 99 });
  assert.deepEqual(tail.map((x) => [...x]), [[1, 2, 3, 0, 4], [5, 0, 6, 7, 8], [9, 0, 99, 99, 99]]);
  assert.deepEqual(packSequences(docs, 5, { eosId: 0 }).length, 2, 'the tail is dropped by default');
  assert.deepEqual([...packSequences([[1], [2]], 2, { eosId: 0, bosId: 9 })[0]], [9, 1]);
  const a = packSequences(docs, 3, { eosId: 0, seed: 4 }), b = packSequences(docs, 3, { eosId: 0, seed: 4 });
  assert.deepEqual(a, b);
  assert.ok(w.every((x) => x instanceof Int32Array));
  assert.throws(() => packSequences(docs, 1, { eosId: 0 }), /seqLen/);
});

test('padBatch masks prompt and padding', () => {
  const b = padBatch([{ prompt: [5, 6], response: [7] }, { prompt: [1], response: [2, 3, 4] }], { padId: 0, eosId: 9 });
  assert.equal(b.batchSize, 2);
  assert.equal(b.seqLen, 5);
  assert.deepEqual([...b.inputIds], [5, 6, 7, 9, 0, 1, 2, 3, 4, 9]);
  assert.deepEqual([...b.labels], [IGNORE_INDEX, IGNORE_INDEX, 7, 9, IGNORE_INDEX, IGNORE_INDEX, 2, 3, 4, 9]);
  assert.deepEqual([...b.attentionMask], [1, 1, 1, 1, 0, 1, 1, 1, 1, 1]);
  assert.deepEqual(b.lengths, [4, 5]);
  const t = padBatch([{ prompt: [1, 2, 3], response: [4, 5] }], { padId: 0, maxLen: 4, padToMultipleOf: 8 });
  assert.equal(t.seqLen, 8);
  assert.equal(t.truncated, 1);
  assert.deepEqual([...t.labels].slice(0, 4), [IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, 4]);
  const l = padBatch([{ prompt: [1, 2, 3], response: [4, 5] }], { padId: 0, maxLen: 3, truncation: 'left' });
  assert.deepEqual([...l.inputIds], [3, 4, 5]);
  assert.deepEqual([...l.labels], [IGNORE_INDEX, 4, 5]);
});
