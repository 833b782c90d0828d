import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countdownTask } from '../src/data/countdown.js';
import { r1ZeroPrompt } from '../src/data/template.js';
import {
  accuracyReward, codeReward, combineRewards, countWords, extractCode, formatReward,
  languageConsistencyReward, makeCodeReward, makeFormatReward, overlongPenalty, thinkSection,
  type RewardFn, type RewardInput,
} from '../src/rl/rewards.js';

const prompt = r1ZeroPrompt('Compute 6 * 7');
const input = (completion: string, extra: Partial<RewardInput> = {}): RewardInput => ({ prompt, completion, ...extra });

test('format: well-formed completions', () => {
  const f = (s: string) => formatReward(input(s));
  assert.equal(f(' <think> 6 * 7 = 42 </think> <answer> 42 </answer>'), 1);
  assert.equal(f('<think>a</think><answer>42</answer>'), 1);
  assert.equal(f(' <think>\nline one\nline two\n</think>\n\n<answer>42</answer>\n'), 1);
});

test('format: missing tags, wrong order, repeats, text outside', () => {
  const f = (s: string) => formatReward(input(s));
  assert.equal(f(' 42'), 0);
  assert.equal(f(' <think> hmm </think>'), 0);                                    // no answer
  assert.equal(f(' <answer> 42 </answer>'), 0);                                  // no think
  assert.equal(f(' <think> hmm <answer> 42 </answer>'), 0);                      // unclosed think
  assert.equal(f(' <answer> 42 </answer> <think> hmm </think>'), 0);             // wrong order
  assert.equal(f(' <think> a </think> <think> b </think> <answer> 42 </answer>'), 0);
  assert.equal(f(' <think> a </think> <answer> 4 </answer> <answer> 42 </answer>'), 0);
  assert.equal(f(' <think> a <answer> 1 </answer> </think> <answer> 42 </answer>'), 0); // nested
  assert.equal(f(' So: <think> a </think> <answer> 42 </answer>'), 0);          // text before
  assert.equal(f(' <think> a </think> so <answer> 42 </answer>'), 0);           // text between
  assert.equal(f(' <think> a </think> <answer> 42 </answer> done.'), 0);        // text after
});

test('format: prefilled <think>', () => {
  const prefilledPrompt = `${prompt} <think>`;
  const auto = (s: string) => formatReward({ prompt: prefilledPrompt, completion: s });
  assert.equal(auto(' 6 * 7 = 42 </think> <answer> 42 </answer>'), 1);
  assert.equal(auto(' <think> again </think> <answer> 42 </answer>'), 0);       // opens it twice
  // forced either way, whatever the prompt says
  const on = makeFormatReward({ prefilledThink: true });
  const off = makeFormatReward({ prefilledThink: false });
  assert.equal(on(input(' reasoning </think> <answer> 42 </answer>')), 1);
  assert.equal(on(input(' <think> r </think> <answer> 42 </answer>')), 0);
  assert.equal(off({ prompt: prefilledPrompt, completion: ' reasoning </think> <answer> 42 </answer>' }), 0);
  assert.equal(off({ prompt: prefilledPrompt, completion: ' <think> r </think> <answer> 42 </answer>' }), 1);
});

test('language consistency: English, Chinese, mixed, empty', () => {
  const en = languageConsistencyReward('en');
  const zh = languageConsistencyReward('zh');
  const english = ' <think> First multiply six by 7, which gives 42. </think> <answer> 42 </answer>';
  assert.equal(en(input(english)), 1);  // numbers and punctuation are not words
  assert.equal(zh(input(english)), 0);
  const chinese = ' <think> 六乘以七等于四十二。 </think> <answer> 42 </answer>';
  assert.equal(zh(input(chinese)), 1);
  assert.equal(en(input(chinese)), 0);
  // 4 English words + 4 CJK characters ("计算乘法")
  const mixed = ' <think> Let me compute 计算乘法 now: 6*7=42 </think> <answer> 42 </answer>';
  assert.deepEqual(countWords(thinkSection(mixed)!), { zh: 4, en: 4, other: 0 });
  assert.equal(en(input(mixed)), 0.5);
  assert.equal(zh(input(mixed)), 0.5);
  // only the chain of thought counts, not the answer
  assert.equal(en(input(' <think> 六七四十二 </think> <answer> forty two </answer>')), 0);
  // empty or missing CoT → 0
  assert.equal(en(input(' <think>  </think> <answer> 42 </answer>')), 0);
  assert.equal(en(input(' <think> 6*7 = 42 </think> <answer> 42 </answer>')), 0);
  assert.equal(en(input(' the answer is 42')), 0);
  // prefilled template: the CoT is what comes before </think>
  assert.equal(en({ prompt: `${prompt} <think>`, completion: ' six times seven </think> <answer> 42 </answer>' }), 1);
  // other scripts count against the target
  assert.equal(en(input(' <think> один two </think> <answer> 2 </answer>')), 0.5);
});

test('accuracy: plain reference answer, equivalence, \\boxed fallback', () => {
  const acc = (completion: string, answer: string) => accuracyReward(input(completion, { answer }));
  assert.equal(acc(' <think> 6*7 </think> <answer> 42 </answer>', '42'), 1);
  assert.equal(acc(' <think> 6*7 </think> <answer> 41 </answer>', '42'), 0);
  assert.equal(acc(' <think> half </think> <answer> 0.5 </answer>', '1/2'), 1);
  assert.equal(acc(' <think> x </think> <answer> x = 42 </answer>', '42'), 1);
  assert.equal(acc(' The answer is \\boxed{42}.', '42'), 1);                 // no <answer>: \boxed
  assert.equal(acc(' <think> \\boxed{42} </think> <answer> 41 </answer>', '42'), 0); // <answer> wins
  assert.equal(acc(' <think> 6*7 </think> 42', '42'), 0);                    // nothing to extract
  assert.equal(acc(' <think> 6*7 </think> <answer></answer>', '42'), 0);
  assert.throws(() => accuracyReward(input(' <answer> 42 </answer>')), /task or a reference answer/);
});

test('accuracy: countdown task accepts any valid expression', () => {
  const task = countdownTask([3, 5, 2], 16, '(3 + 5) * 2');
  const acc = (a: string) => accuracyReward(input(` <think> try </think> <answer> ${a} </answer>`, { task, answer: task.answer }));
  assert.equal(acc('(3 + 5) * 2'), 1);
  assert.equal(acc('2 * (5 + 3)'), 1);       // another valid solution
  assert.equal(acc('(5 + 3) * 2 = 16'), 1);
  assert.equal(acc('16'), 0);                // equivalent as a number, but not a countdown solution
  assert.equal(acc('3 + 5 * 2'), 0);         // = 13
  assert.equal(acc('(3 + 5) * 2 * 1'), 0);   // 1 is not given
  assert.equal(acc('garbage )('), 0);        // the verifier's error is a 0, not a throw
  assert.equal(accuracyReward(input(' \\boxed{2 * (3 + 5)}', { task })), 1);
});

test('overlong penalty (DAPO)', () => {
  const r = overlongPenalty(100, 20);
  const at = (n: number) => r(input(' x', { meta: { completionTokens: n } }));
  assert.equal(at(10), 0);
  assert.equal(at(80), 0);
  assert.equal(at(90), -0.5);
  assert.equal(at(100), -1);
  assert.equal(at(101), -1);
  assert.throws(() => r(input(' x')), /completionTokens/);
  assert.throws(() => overlongPenalty(10, 20), /cacheLen/);
});

test('combineRewards: weights, parts, async rewards run concurrently', async () => {
  let inFlight = 0, maxInFlight = 0;
  const slow = (v: number): RewardFn => async () => {
    inFlight++; maxInFlight = Math.max(maxInFlight, inFlight);
    await new Promise((r) => setTimeout(r, 30));
    inFlight--;
    return v;
  };
  const score = combineRewards([
    { name: 'accuracy', fn: accuracyReward, weight: 1 },
    { name: 'format', fn: formatReward, weight: 0.5 },
    { name: 'a', fn: slow(0.25), weight: 2 },
    { name: 'b', fn: slow(-1), weight: 0.1 },
  ]);
  const res = await score(input(' <think> 6*7 </think> <answer> 42 </answer>', { answer: '42' }));
  assert.deepEqual(res.parts, { accuracy: 1, format: 1, a: 0.25, b: -1 });
  assert.ok(Math.abs(res.total - (1 + 0.5 + 0.5 - 0.1)) < 1e-12);
  assert.equal(maxInFlight, 2);
  const bad = await score(input(' 41', { answer: '42' }));
  assert.equal(bad.parts.format, 0);
  assert.throws(() => combineRewards([{ name: 'x', fn: formatReward, weight: 1 }, { name: 'x', fn: formatReward, weight: 1 }]), /twice/);
  await assert.rejects(combineRewards([{ name: 'nan', fn: () => NaN, weight: 1 }])(input('')), /returned NaN/);
});

test('extractCode: last python/js block, <answer> first', () => {
  const text = [
    ' <think> draft:', '```python', 'print(1)', '```', 'better:', '```js', 'console.log(2)', '```', '</think>',
    '<answer>', '```python', 'print(3)', '```', '</answer>', 'PS', '```python', 'print(4)', '```',
  ].join('\n');
  assert.deepEqual(extractCode(text), { language: 'python', code: 'print(3)\n' });
  const noAnswer = text.replace(/<\/?answer>/g, '');
  assert.deepEqual(extractCode(noAnswer), { language: 'python', code: 'print(4)\n' });
  assert.deepEqual(extractCode(noAnswer, 'javascript'), { language: 'javascript', code: 'console.log(2)\n' });
  assert.equal(extractCode('```\nprint(1)\n```'), null);  // untagged, language unknown
  assert.deepEqual(extractCode('```\nprint(1)\n```', 'python'), { language: 'python', code: 'print(1)\n' });
  assert.equal(extractCode('```rust\nfn main(){}\n```'), null);
});

test('codeReward: fraction of tests passed, binary mode, no code', async () => {
  const completion = (code: string) => ` <think> reverse it </think> <answer>\n\`\`\`python\n${code}\n\`\`\`\n</answer>`;
  const tests = [
    { stdin: 'abc\n', expectedStdout: 'cba\n' },
    { stdin: 'hello\n', expectedStdout: 'olleh' },
    { stdin: 'xy\n', expectedStdout: 'xy\n' },  // deliberately wrong expectation
  ];
  const good = input(completion('print(input()[::-1])'), { meta: { tests } });
  assert.ok(Math.abs((await codeReward(good)) - 2 / 3) < 1e-12);
  assert.equal(await makeCodeReward({ mode: 'binary' })(good), 0);
  assert.equal(await makeCodeReward({ mode: 'binary' })(input(completion('print(input()[::-1])'), { meta: { tests: tests.slice(0, 2) } })), 1);
  assert.equal(await codeReward(input(' <think> no code </think> <answer> 42 </answer>', { meta: { tests } })), 0);
  // assertion-style tests, JavaScript
  const js = ' <answer>\n```js\nfunction add(a, b) { return a + b; }\n```\n</answer>';
  const asserts = [
    { assert: "require('node:assert').strictEqual(add(2, 3), 5);" },
    { assert: "require('node:assert').strictEqual(add(-1, 1), 0);" },
  ];
  assert.equal(await codeReward(input(js, { meta: { tests: asserts } })), 1);
  await assert.rejects(Promise.resolve(codeReward(input(js))), /meta.tests/);
});
