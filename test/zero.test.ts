// R1-Zero machinery: GRPO raises a reward within seconds, and the recipe runs end to end
// (pretrain → evaluate → GRPO → evaluate → report) in miniature.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseConfig } from '../src/models/config.js';
import { presetConfig } from '../src/models/presets.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { trainBpe } from '../src/tokenizer/bpe-trainer.js';
import { defaultGrpoConfig } from '../src/rl/grpo.js';
import { resumeGrpo, trainGrpo } from '../src/rl/trainer.js';
import { baseModelAdvice, runZero, zeroProblems, ZeroConfigSchema } from '../src/recipes/r1-zero.js';
import { readRollout, replayStep } from '../src/rl/replay.js';
import { createModel, loadModel } from '../src/models/load.js';

test('GRPO raises the reward of a small policy within seconds', async () => {
  const texts = Array.from({ length: 200 }, (_, i) => `User: say something ${i % 10}. Assistant: ok ${i} yes no maybe`);
  const bpe = trainBpe(texts, { vocabSize: 300, specialTokens: ['<|end|>'] });
  const tok = Tokenizer.fromBpe(bpe, { eosToken: '<|end|>' });
  const model = createModel(parseConfig(presetConfig('deepseek-v3-tiny', tok.vocabSize, { eos: tok.eosId ?? undefined }), 'tiny'), { seed: 1 });
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'r1ts-grpo-'));
  // Reward: the share of digits among the completion's non-space characters — dense enough
  // for a random policy to find, so the test measures the optimisation alone.
  const reward = (c: { completion: string }): number => {
    const chars = c.completion.replace(/\s+/g, '');
    return chars.length ? (chars.match(/[0-9]/g)?.length ?? 0) / chars.length : 0;
  };
  const history = await trainGrpo({
    model, tokenizer: tok, prompts: Array.from({ length: 8 }, (_, i) => ({ prompt: `User: say something ${i}. Assistant:` })),
    rewards: [{ name: 'digits', fn: reward, weight: 1 }],
    grpo: { ...defaultGrpoConfig, num_generations: 8, max_completion_length: 12, beta: 0.02, loss_type: 'dapo', epsilon_high: 0.28 },
    steps: 25, promptsPerStep: 4, lr: 3e-3, warmup: 2, clip: 1, weightDecay: 0, seed: 3, biasUpdateSpeed: 0.001,
    runDir, checkpointEvery: 0, samplesPerStep: 2, quiet: true, log: () => {},
  });
  const first = history.slice(0, 5).reduce((s, m) => s + m.reward, 0) / 5;
  const last = history.slice(-5).reduce((s, m) => s + m.reward, 0) / 5;
  assert.ok(last > first + 0.1, `reward should rise: first steps ${first.toFixed(3)}, last steps ${last.toFixed(3)}`);
  for (const key of ['kl', 'clip_fraction', 'entropy', 'logprob_gap', 'completion_length', 'reflection_rate', 'gen_s', 'train_s']) {
    assert.ok(Number.isFinite(history.at(-1)![key]), `metric ${key}`);
  }
  // Sampler and trainer log-probs come from the same kernels.
  assert.ok(history.every((m) => m['logprob_gap'] < 1e-3), 'sampler/trainer log-prob gap');
  const rollouts = fs.readFileSync(path.join(runDir, 'rollouts.jsonl'), 'utf8').trim().split('\n');
  assert.equal(rollouts.length, 25);
  const r0 = JSON.parse(rollouts[0]);
  for (const k of ['prompts', 'completions', 'rewards', 'advantages', 'old_logprobs']) assert.ok(Array.isArray(r0[k]), k);
});

test('a recorded GRPO step replays offline: same log-probs, same loss', async () => {
  const texts = Array.from({ length: 100 }, (_, i) => `User: count ${i % 7}. Assistant: ${i} ${i + 1} ${i + 2}`);
  const tok = Tokenizer.fromBpe(trainBpe(texts, { vocabSize: 300, specialTokens: ['<|end|>'] }), { eosToken: '<|end|>' });
  const model = createModel(parseConfig(presetConfig('deepseek-v3-tiny', tok.vocabSize, { eos: tok.eosId ?? undefined }), 'tiny'), { seed: 2 });
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'r1ts-replay-'));
  const grpo = { ...defaultGrpoConfig, num_generations: 4, max_completion_length: 10, beta: 0 };
  await trainGrpo({
    model, tokenizer: tok, prompts: [{ prompt: 'User: count 3. Assistant:' }, { prompt: 'User: count 5. Assistant:' }],
    rewards: [{ name: 'digits', fn: (c) => (c.completion.match(/[0-9]/g)?.length ?? 0) / Math.max(c.completion.length, 1), weight: 1 }],
    grpo, steps: 2, promptsPerStep: 2, lr: 3e-3, warmup: 1, clip: 1, weightDecay: 0, seed: 5, biasUpdateSpeed: 0,
    runDir, checkpointEvery: 1, samplesPerStep: 0, quiet: true, log: () => {},
  });
  const before = loadModel(path.join(runDir, 'checkpoints', 'step-0000001'));
  const r = replayStep(before, readRollout(runDir, 2), JSON.parse(fs.readFileSync(path.join(runDir, 'grpo.json'), 'utf8')), { padId: tok.padId ?? tok.eosId ?? 0 });
  assert.ok(r.maxLogprobDiff < 1e-4, `log-probs differ by ${r.maxLogprobDiff}`);
  assert.ok(Math.abs(r.loss - r.loggedLoss) < 1e-5, `replayed loss ${r.loss} vs logged ${r.loggedLoss}`);
});

test('the R1-Zero recipe runs end to end in miniature and writes its run folder', async () => {
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'r1ts-zero-'));
  const cfg = ZeroConfigSchema.parse({
    run_dir: runDir, suites: ['arithmetic'],
    pretrain: { steps: 6, n_docs: 300, seq_len: 128, batch_size: 4, vocab_size: 400, model: 'deepseek-v3-tiny' },
    grpo: { steps: 2, prompts_per_step: 2, num_generations: 4, max_completion_length: 24 },
    eval: { problems: 4, samples: 2 },
  });
  const lines: string[] = [];
  const r = await runZero(cfg, { quiet: true, log: (s) => lines.push(s) });
  for (const f of ['config.json', 'eval-before.json', 'eval-after.json', 'report.html', 'reward.png', 'length.png', 'reflection.png', 'styles.png',
    'final/model.safetensors', 'final/config.json', 'final/tokenizer.json', 'grpo/metrics.jsonl', 'pretrain/metrics.jsonl']) {
    assert.ok(fs.existsSync(path.join(runDir, f)), `missing ${f}`);
  }
  assert.match(lines.join('\n'), /pass@1\s+\S+%\s+\S+%/);
  assert.match(lines.join('\n'), /cons@2/);
  assert.match(lines.join('\n'), /base model: pass@1 \S+%; answer styles: direct \d+%/);
  assert.match(lines.join('\n'), /worked answers\s+\S+%\s+\S+%/);
  for (const m of fs.readFileSync(path.join(runDir, 'grpo', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))) {
    assert.ok(Math.abs(m.style_direct + m.style_worked + m.style_checked - 1) < 1e-9, 'answer-style shares sum to 1');
  }
  assert.ok(r.after.pass1 >= 0 && r.after.pass1 <= 1);
  // The model is asked the actual questions, in evaluation and in RL.
  for (const p of r.before.problems) assert.match(p.question, /^Compute \d+ [-+*] \d+$/);
  const sample = JSON.parse(fs.readFileSync(path.join(runDir, 'grpo', 'samples.jsonl'), 'utf8').split('\n')[0]);
  assert.match(sample.prompt, /User: Compute \d+ [-+*] \d+\. Assistant:$/);
});

test('the advice on a base model: RL needs a way of answering that is more often right', () => {
  const styles = (d: [number, number], w: [number, number], c: [number, number]) => ({
    byStyle: { direct: { share: d[0], accuracy: d[1] }, worked: { share: w[0], accuracy: w[1] }, checked: { share: c[0], accuracy: c[1] } },
  });
  assert.equal(baseModelAdvice(styles([0.5, 0.36], [0.4, 0.72], [0.1, 0.92])), null, 'steps learned: RL can move toward them');
  assert.match(baseModelAdvice(styles([0.6, 0.35], [0.35, 0.32], [0.05, 0.4]))!, /right 33% of the time, its direct ones 35%/);
  assert.match(baseModelAdvice(styles([0.98, 0.4], [0.01, 1], [0.01, 1]))!, /almost never works in steps/);
  assert.equal(baseModelAdvice(styles([0, 0], [0.7, 0.6], [0.3, 0.5])), null, 'no direct answers to compare with');
});

test('zero problems: R1-Zero prompts of the suites\' questions, suites interleaved', async () => {
  const ps = await zeroProblems(['arithmetic', 'linear'], 'test', 0, 6);
  assert.equal(ps.length, 6);
  ps.forEach((p, i) => {
    assert.equal(p.task?.suite, i % 2 === 0 ? 'arithmetic' : 'linear');
    assert.ok(p.prompt.startsWith('A conversation between User and Assistant.'));
    assert.ok(p.prompt.endsWith(`User: ${p.task!.question}. Assistant:`), p.prompt.slice(-60));
    assert.equal(p.answer, p.task!.answer);
  });
});

test('an interrupted GRPO run resumes from its checkpoint and continues exactly', async () => {
  const texts = Array.from({ length: 100 }, (_, i) => `User: count ${i % 7}. Assistant: ${i} ${i + 1} ${i + 2}`);
  const tok = Tokenizer.fromBpe(trainBpe(texts, { vocabSize: 300, specialTokens: ['<|end|>'] }), { eosToken: '<|end|>' });
  const fresh = () => createModel(parseConfig(presetConfig('deepseek-v3-tiny', tok.vocabSize, { eos: tok.eosId ?? undefined }), 'tiny'), { seed: 4 });
  const base = {
    tokenizer: tok, prompts: Array.from({ length: 5 }, (_, i) => ({ prompt: `User: count ${i}. Assistant:` })),
    rewards: [{ name: 'digits', fn: (c: { completion: string }) => (c.completion.match(/[0-9]/g)?.length ?? 0) / Math.max(c.completion.length, 1), weight: 1 }],
    // β > 0 so that the reference policy has to be restored too.
    grpo: { ...defaultGrpoConfig, num_generations: 4, max_completion_length: 8, beta: 0.05, ref_model_sync_steps: 3 },
    steps: 5, promptsPerStep: 2, lr: 3e-3, warmup: 1, clip: 1, weightDecay: 0, seed: 7, biasUpdateSpeed: 0.001,
    checkpointEvery: 2, samplesPerStep: 1, quiet: true, log: () => {},
  };
  const whole = fs.mkdtempSync(path.join(os.tmpdir(), 'r1ts-grpo-whole-'));
  const a = await trainGrpo({ ...base, model: fresh(), runDir: whole });

  const broken = fs.mkdtempSync(path.join(os.tmpdir(), 'r1ts-grpo-cut-'));
  fs.mkdirSync(path.join(broken, 'tokenizer'));
  // Dies during step 3, after logging it: the logs run past the checkpoint of step 2.
  await assert.rejects(trainGrpo({ ...base, model: fresh(), runDir: broken, onStep: (m) => { if (m.step === 3) throw new Error('killed'); } }), /killed/);
  const { model, resumeFrom } = resumeGrpo(path.join(broken, 'checkpoints', 'step-0000002'));
  const b = await trainGrpo({ ...base, model, runDir: broken, resumeFrom });
  assert.deepEqual(b.map((m) => m.step), [3, 4, 5]);

  const logged = (dir: string) => fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const pick = (m: Record<string, number>) => [m.step, m.reward, m.loss, m.kl, m.clip_fraction, m.grad_norm];
  assert.deepEqual(logged(broken).map(pick), logged(whole).map(pick));
  assert.deepEqual(a.slice(2).map(pick), b.map(pick));
  const rollouts = (dir: string) => fs.readFileSync(path.join(dir, 'rollouts.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).completions);
  assert.deepEqual(rollouts(broken), rollouts(whole));
});
