#!/usr/bin/python3
"""Time greedy decoding with a KV cache in plain PyTorch (float32, CPU): the peer of bench/generate.ts.

  /usr/bin/python3 bench/torch/decode.py --model DIR --prompts prompts.json --new 128 --threads 2 --runs 3

DIR is a Hugging Face checkpoint folder (config.json + model.safetensors) as r1ts writes it;
prompts.json is a list of B equal-length lists of token ids (the batch). Each run: prefill the
prompts in one forward pass, then decode one token per row per step, greedy (argmax), with a
KV cache of the keys and values (Llama/Qwen2: per KV head; DeepSeek-V3 MLA: the decompressed
per-head keys and values, as transformers caches them). The MTP module is not used.

Decode throughput = B * (new - 1) / (time from the first generated token to the last): the
prefill and the first token are excluded, as in bench/generate.ts. Prints one JSON line.
"""
import argparse
import os
import sys

from runtime import prepare_runtime


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompts", required=True)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs of 8 tokens first")
    return ap.parse_args()


args = parse_args()
prepare_runtime(args.threads)  # before torch is imported (see runtime.py)

import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import MLAttention, ModelConfig, apply_rope, build_model, causal_attention, deinterleave, load_state, repeat_kv  # noqa: E402
from safetensors_io import load_file  # noqa: E402


class Cache:
    """Preallocated per-layer key/value buffers [B, heads, T_max, D] and the filled length."""

    def __init__(self):
        self.k, self.v, self.length = {}, {}, 0

    def append(self, layer, k, v, t_max):
        if layer not in self.k:
            B, H, _, Dk = k.shape
            self.k[layer] = torch.empty(B, H, t_max, Dk, dtype=k.dtype)
            self.v[layer] = torch.empty(B, H, t_max, v.shape[-1], dtype=v.dtype)
        T = k.shape[2]
        self.k[layer][:, :, self.length:self.length + T] = k
        self.v[layer][:, :, self.length:self.length + T] = v
        end = self.length + T
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]


def llama_attention(attn, x, cos, sin, cache, layer, t_max):
    B, T, _ = x.shape
    q = attn.q_proj(x).view(B, T, attn.nh, attn.hd).transpose(1, 2)
    k = attn.k_proj(x).view(B, T, attn.nkv, attn.hd).transpose(1, 2)
    v = attn.v_proj(x).view(B, T, attn.nkv, attn.hd).transpose(1, 2)
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    k, v = cache.append(layer, k, v, t_max)
    rep = attn.nh // attn.nkv
    o = causal_attention(q, repeat_kv(k, rep), repeat_kv(v, rep), attn.scale)
    return attn.o_proj(o.transpose(1, 2).reshape(B, T, attn.nh * attn.hd))


def mla_attention(attn, x, cos, sin, cache, layer, t_max):
    B, T, _ = x.shape
    if hasattr(attn, "q_proj"):
        q = attn.q_proj(x)
    else:
        q = attn.q_b_proj(attn.q_a_layernorm(attn.q_a_proj(x)))
    q = q.view(B, T, attn.nh, attn.nope + attn.rope_d).transpose(1, 2)
    q_nope, q_pe = q.split([attn.nope, attn.rope_d], dim=-1)
    c_kv, k_pe = attn.kv_a_proj_with_mqa(x).split([attn.kv_lora_rank, attn.rope_d], dim=-1)
    kv = attn.kv_b_proj(attn.kv_a_layernorm(c_kv)).view(B, T, attn.nh, attn.nope + attn.vd).transpose(1, 2)
    k_nope, v = kv.split([attn.nope, attn.vd], dim=-1)
    k_pe = k_pe.view(B, 1, T, attn.rope_d)
    if attn.interleave:
        q_pe, k_pe = deinterleave(q_pe), deinterleave(k_pe)
    q_pe, k_pe = apply_rope(q_pe, cos, sin), apply_rope(k_pe, cos, sin)
    q = torch.cat((q_nope, q_pe), dim=-1)
    k = torch.cat((k_nope, k_pe.expand(B, attn.nh, T, attn.rope_d)), dim=-1)
    k, v = cache.append(layer, k, v, t_max)
    o = causal_attention(q, k, v, attn.scale)
    return attn.o_proj(o.transpose(1, 2).reshape(B, T, attn.nh * attn.vd))


def step(model, ids, cache, cos_all, sin_all, t_max):
    """Logits of the last position for ids [B, T] appended at cache.length."""
    m, cfg = model.model, model.cfg
    T = ids.shape[1]
    cos, sin = cos_all[cache.length:cache.length + T], sin_all[cache.length:cache.length + T]
    h = m.embed_tokens(ids)
    for i, layer in enumerate(m.layers[: cfg.num_hidden_layers]):
        x = layer.input_layernorm(h)
        if isinstance(layer.self_attn, MLAttention):
            h = h + mla_attention(layer.self_attn, x, cos, sin, cache, i, t_max)
        else:
            h = h + llama_attention(layer.self_attn, x, cos, sin, cache, i, t_max)
        h = h + layer.mlp(layer.post_attention_layernorm(h))
    cache.length += T
    return model.lm_head(m.norm(h[:, -1]))


def decode(model, prompts, new):
    """(generated ids [B, new], seconds from the first generated token to the last)."""
    B, P = prompts.shape
    t_max = P + new
    cos_all, sin_all = model.model.rotary(t_max)
    cache = Cache()
    out = torch.empty(B, new, dtype=torch.long)
    with torch.no_grad():
        logits = step(model, prompts, cache, cos_all, sin_all, t_max)
        out[:, 0] = logits.argmax(-1)
        t0 = time.perf_counter()
        for i in range(1, new):
            logits = step(model, out[:, i - 1:i], cache, cos_all, sin_all, t_max)
            out[:, i] = logits.argmax(-1)
        dt = time.perf_counter() - t0
    return out, dt


def main():
    torch.set_num_threads(args.threads)
    cfg = ModelConfig.from_json(os.path.join(args.model, "config.json"))
    model = build_model(cfg, mtp=False)
    load_state(model, load_file(os.path.join(args.model, "model.safetensors")), strict=True)
    model.eval()
    with open(args.prompts) as f:
        prompts = torch.tensor(json.load(f), dtype=torch.long)
    B = prompts.shape[0]
    for _ in range(args.warmup):
        decode(model, prompts, min(8, args.new))
    times, tokens = [], None
    for _ in range(args.runs):
        tokens, dt = decode(model, prompts, args.new)
        times.append(dt)
    med = statistics.median(times)
    print(json.dumps({
        "batch": B,
        "prompt": prompts.shape[1],
        "new": args.new,
        "threads": args.threads,
        "decode_s_median": round(med, 4),
        "decode_tokens_per_s": round(B * (args.new - 1) / med, 1),
        "tokens_row0": tokens[0].tolist(),
        "torch_version": torch.__version__,
    }))


if __name__ == "__main__":
    main()
