// Memory is owned: 1,000 training steps of a small model must not grow memory or live tensors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { backward, liveTensorCount, randint, Rng, trackLiveTensors } from '../src/tensor/index.js';
import { parseConfig, LlamaConfig } from '../src/models/config.js';
import { DenseForCausalLM } from '../src/models/llama.js';
import { nextTokenLoss } from '../src/models/common.js';
import { AdamW, clipScale } from '../src/train/optim.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

async function settle(): Promise<{ bytes: number; live: number }> {
  for (let i = 0; i < 3; i++) { gc(); await new Promise((r) => setImmediate(r)); }
  const m = process.memoryUsage();
  return { bytes: m.heapUsed + m.arrayBuffers, live: liveTensorCount() };
}

test('1,000 training steps keep memory and live tensors flat', async () => {
  trackLiveTensors();
  const cfg = parseConfig({
    model_type: 'llama', vocab_size: 64, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, rms_norm_eps: 1e-6, rope_theta: 10000,
  }, 'memory-test') as LlamaConfig;
  const model = new DenseForCausalLM(cfg, { seed: 1 });
  const opt = new AdamW(model.namedParameters(), { lr: 1e-3 });
  const rng = new Rng(2);
  let first = 0, last = 0;
  const batches = Array.from({ length: 4 }, () => randint([2, 16], 64, rng));
  let n = 0;
  const step = (): number => {
    const ids = batches[n++ % batches.length];
    opt.zeroGrad();
    const loss = nextTokenLoss(model.forward(ids).logits, ids);
    backward(loss);
    opt.update({ gradScale: clipScale(model.parameters(), 1).scale });
    return loss.item();
  };
  for (let i = 0; i < 100; i++) first = step();
  const early = await settle();
  for (let i = 100; i < 1000; i++) last = step();
  const late = await settle();
  assert.ok(last < first, `loss should fall on four repeated batches (${first} → ${last})`);
  const grewMb = (late.bytes - early.bytes) / 2 ** 20;
  assert.ok(grewMb < 4, `memory grew by ${grewMb.toFixed(1)} MB between step 100 and step 1000`);
  assert.ok(late.live - early.live < 100, `live tensors grew from ${early.live} to ${late.live}`);
});
