// Checkpoints resume exactly: a pretraining run killed with SIGKILL mid-run and resumed with
// --resume produces the same loss sequence as an uninterrupted run; a crash mid-write leaves the
// previous checkpoint intact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO } from './util/shared.js';
import { latestCheckpoint, listCheckpoints } from '../src/train/checkpoint.js';

const CLI = path.join(REPO, 'dist', 'src', 'cli', 'main.js');

const config = {
  seed: 3,
  model: {
    config: {
      model_type: 'deepseek_v3', vocab_size: 320, hidden_size: 32, intermediate_size: 64, moe_intermediate_size: 16,
      num_hidden_layers: 2, first_k_dense_replace: 1, num_attention_heads: 2, num_key_value_heads: 2,
      q_lora_rank: 16, kv_lora_rank: 16, qk_nope_head_dim: 8, qk_rope_head_dim: 8, v_head_dim: 8,
      n_routed_experts: 4, n_shared_experts: 1, num_experts_per_tok: 2, n_group: 2, topk_group: 1,
      num_nextn_predict_layers: 1, max_position_embeddings: 128, rope_theta: 10000,
    },
  },
  tokenizer: { vocab_size: 320 },
  data: { n_docs: 300, seq_len: 48, batch_size: 4 },
  steps: 24, checkpoint_every: 8, keep_checkpoints: 0,
  optim: { lr: 0.003, warmup: 4 },
};

function losses(runDir: string): number[] {
  return fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).loss as number);
}

test('SIGKILL mid-run, then --resume: the loss sequence equals an uninterrupted run', async () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'r1ts-resume-'));
  const cfgFile = path.join(base, 'config.json');
  fs.writeFileSync(cfgFile, JSON.stringify(config));
  const env = { ...process.env, R1TS_THREADS: '2' };

  const a = spawnSync(process.execPath, [CLI, 'pretrain', '-c', cfgFile, '--run-dir', path.join(base, 'a'), '--quiet'], { env, encoding: 'utf8' });
  assert.equal(a.status, 0, a.stderr);
  const reference = losses(path.join(base, 'a'));
  assert.equal(reference.length, 24);

  // Kill the second run as soon as its second checkpoint (step 16) exists.
  const bDir = path.join(base, 'b');
  const child = spawn(process.execPath, [CLI, 'pretrain', '-c', cfgFile, '--run-dir', bDir, '--quiet'], { env, stdio: 'ignore' });
  const ckpts = path.join(bDir, 'checkpoints');
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (listCheckpoints(ckpts).length >= 2) { clearInterval(timer); child.kill('SIGKILL'); resolve(); }
    }, 5);
    child.on('exit', () => { clearInterval(timer); reject(new Error('the run finished before it could be killed')); });
  });
  await new Promise((r) => child.on('exit', r));
  assert.ok(!fs.existsSync(path.join(ckpts, 'step-0000024')), 'killed before the end');

  const resumed = spawnSync(process.execPath, [CLI, 'pretrain', '-c', cfgFile, '--run-dir', bDir, '--resume', '--quiet'], { env, encoding: 'utf8' });
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /resuming .* from step (16|24)/);
  assert.deepEqual(losses(bDir), reference);
  assert.equal(path.basename(latestCheckpoint(ckpts)!), 'step-0000024');

  // Starting over into a folder with checkpoints is refused rather than overwriting them.
  const again = spawnSync(process.execPath, [CLI, 'pretrain', '-c', cfgFile, '--run-dir', bDir, '--quiet'], { env, encoding: 'utf8' });
  assert.notEqual(again.status, 0);
  assert.match(again.stderr, /already holds checkpoints: pass --resume/);
});

test('a checkpoint write that dies midway leaves the previous one intact', () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'r1ts-crash-'));
  // A leftover temporary folder from a killed writer (a pid that no longer exists).
  fs.mkdirSync(path.join(base, 'step-0000009.tmp-999999999'), { recursive: true });
  fs.writeFileSync(path.join(base, 'step-0000009.tmp-999999999', 'model.safetensors'), 'partial');
  fs.mkdirSync(path.join(base, 'step-0000008'));
  assert.deepEqual(listCheckpoints(base), ['step-0000008']);
  assert.equal(path.basename(latestCheckpoint(base)!), 'step-0000008');
});

test('bad training configs are refused with the field named', () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'r1ts-badcfg-'));
  const f = path.join(base, 'c.yaml');
  fs.writeFileSync(f, 'steps: -3\noptim:\n  lr: fast\nunknown_field: 1\n');
  const r = spawnSync(process.execPath, [CLI, 'pretrain', '-c', f, '--run-dir', path.join(base, 'r')], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /c\.yaml: invalid training config/);
  assert.match(r.stderr, /steps: Number must be greater than 0/);
  assert.match(r.stderr, /optim\.lr: Expected number, received string/);
  assert.match(r.stderr, /Unrecognized key\(s\) in object: 'unknown_field'/);
});
