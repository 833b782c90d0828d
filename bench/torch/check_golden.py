#!/usr/bin/python3
"""Prove the PyTorch peers faithful: compare against the transformers-5 golden outputs.

For every folder under --dir (default /work/shared/golden) holding golden.safetensors:
build the model from config.json (llama, qwen2, deepseek_v3; no MTP, as transformers has none),
load model.safetensors, run input_ids and compare
  logits, token_logprobs, loss           relative error of norms <= 1e-4
  d loss / d parameter, every parameter  relative error of norms <= 1e-3
  greedy decoding (16 new tokens)        identical tokens (recomputed without a KV cache)
Prints a table; exits 1 on any failure.

Usage: /usr/bin/python3 bench/torch/check_golden.py [--dir DIR] [--threads N] [--verbose]

Golden gradient layout for routed experts (transformers 5 keeps them fused):
  grad.model.layers.L.mlp.experts.gate_up_proj  [E, 2*I, H]: rows [0, I) = gate_proj, rows [I, 2I) = up_proj
  grad.model.layers.L.mlp.experts.down_proj     [E, H, I]  = down_proj.weight of each expert
(the gate-then-up order is checked below: the swapped order must fail.)

Semantics this check pins down (each was also broken on purpose and then failed the check, except
where noted); details at the SEMANTICS: comments in models.py:
- Llama/Qwen2 RoPE is half-split: dim i pairs with dim i + d/2 (adjacent-pair rotation fails).
- GQA: kv head j serves query heads j*rep .. j*rep+rep-1 (repeat_interleave, not tile).
- Qwen2: q/k/v have biases, o_proj none; tied lm_head = embed_tokens (its grad is the sum of both uses).
- MLA: q per head is [nope | rope]; kv_a_proj_with_mqa output is [c_KV (kv_lora_rank) | k_pe (rope)];
  kv_b_proj output per head is [k_nope | v]; k_pe is one head shared by all heads; q_a_layernorm and
  kv_a_layernorm use eps 1e-6 (not distinguishable here: rms_norm_eps is 1e-6 too).
- rope_interleave: q_pe/k_pe rotary dims are adjacent pairs (x0,x1),(x2,x3)...: de-interleave then
  half-split rotation (treating them as half-split fails).
- softmax scale = (qk_nope + qk_rope)^-0.5, times yarn_get_mscale(factor, mscale_all_dim)^2 for YaRN
  (0.1*m*ln(factor)+1); dropping it or using the nope dim fails.
- YaRN frequencies as transformers: floor/ceil-truncated correction range (truncate=False fails), linear
  ramp over dim/2, cos/sin times attention_factor = mscale(f, mscale)/mscale(f, mscale_all_dim) = 1.0 here
  (using mscale(f) fails).
- Router: sigmoid; e_score_correction_bias only for the choice (using biased weights, or ignoring the
  bias, fails); group score = sum of top-2 biased scores (max-of-group fails, no group limit fails);
  weights = chosen unbiased scores / (their sum + 1e-20) * routed_scaling_factor (no norm, or no
  scaling, fails). Dropped groups are filled with 0.0 (transformers) vs -inf (official code): the
  golden cannot tell these apart.
- Loss: mean CE over B*(T-1) positions, logits[:, t] vs input_ids[:, t+1].
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import ModelConfig, build_model, load_state  # noqa: E402
from safetensors_io import load_file  # noqa: E402

TOL_OUT = 1e-4
TOL_GRAD = 1e-3


def rel_err(a, b):
    a, b = a.detach().double(), b.detach().double()
    ref = b.norm().item()
    diff = (a - b).norm().item()
    if ref == 0.0:
        return 0.0 if diff == 0.0 else float("inf")
    return diff / ref


def expected_grads(golden, swap_gate_up=False):
    """golden 'grad.*' -> {parameter name: grad}, unfusing routed-expert grads."""
    out = {}
    for key, t in golden.items():
        if not key.startswith("grad."):
            continue
        name = key[len("grad."):]
        if name.endswith("mlp.experts.gate_up_proj"):
            pre = name[: -len("gate_up_proj")]
            I = t.shape[1] // 2
            first, second = ("up_proj", "gate_proj") if swap_gate_up else ("gate_proj", "up_proj")
            for e in range(t.shape[0]):
                out[f"{pre}{e}.{first}.weight"] = t[e, :I]
                out[f"{pre}{e}.{second}.weight"] = t[e, I:]
        elif name.endswith("mlp.experts.down_proj"):
            pre = name[: -len("down_proj")]
            for e in range(t.shape[0]):
                out[f"{pre}{e}.down_proj.weight"] = t[e]
        else:
            out[name] = t
    return out


@torch.no_grad()
def greedy(model, prompt, total_len):
    ids = prompt.clone()
    while ids.shape[1] < total_len:
        nxt = model(ids)["logits"][:, -1].argmax(-1, keepdim=True)
        ids = torch.cat((ids, nxt), dim=1)
    return ids


def check_one(folder, verbose):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = ModelConfig.from_dict(json.load(f))
    model = build_model(cfg, mtp=False)
    load_state(model, load_file(os.path.join(folder, "model.safetensors")))
    gold = load_file(os.path.join(folder, "golden.safetensors"))
    ids = gold["input_ids"]

    model.zero_grad(set_to_none=True)
    out = model(ids, labels=ids)
    out["loss"].backward()
    logits = out["logits"]
    logprobs = F.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)

    res = {
        "logits": rel_err(logits, gold["logits"]),
        "loss": rel_err(out["loss"].reshape(1), gold["loss"].reshape(1)),
        "logprobs": rel_err(logprobs, gold["token_logprobs"]),
    }
    failures = [k for k in ("logits", "loss", "logprobs") if not res[k] <= TOL_OUT]

    params = dict(model.named_parameters())  # tied weights appear once (under model.embed_tokens)
    exp = expected_grads(gold)
    worst, worst_name, n_checked = 0.0, "", 0
    for name, p in params.items():
        if name not in exp:
            failures.append(f"no golden grad for {name}")
            continue
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        e = rel_err(g, exp[name])
        n_checked += 1
        if verbose:
            print(f"    {name:60s} {e:.2e}")
        if not e <= TOL_GRAD:
            failures.append(f"grad {name} {e:.2e}")
        if e > worst:
            worst, worst_name = e, name
    for name in exp:
        if name not in params:
            failures.append(f"golden grad without parameter: {name}")
    res["grad_max"], res["grad_worst"], res["n_params"] = worst, worst_name, n_checked

    # The fused expert layout really is [gate rows; up rows]: the swapped reading must not match.
    if any(k.endswith("experts.gate_up_proj") for k in gold):
        swapped = expected_grads(gold, swap_gate_up=True)
        res["swap_err"] = max(
            rel_err(params[n].grad, swapped[n]) for n in params if n.endswith(("gate_proj.weight", "up_proj.weight"))
            and ".experts." in n and params[n].grad is not None and swapped[n].norm() > 0
        )
        if res["swap_err"] <= TOL_GRAD:
            failures.append("gate/up order ambiguous")

    if "greedy_prompt" in gold:
        got = greedy(model, gold["greedy_prompt"], gold["greedy_output"].shape[1])
        res["greedy"] = bool(torch.equal(got, gold["greedy_output"]))
        if not res["greedy"]:
            failures.append("greedy tokens differ")
    return res, failures


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="/work/shared/golden")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--verbose", action="store_true", help="print every parameter's gradient error")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    folders = sorted(
        os.path.join(args.dir, d) for d in os.listdir(args.dir)
        if os.path.isfile(os.path.join(args.dir, d, "golden.safetensors"))
    )
    if not folders:
        print(f"no golden folders under {args.dir}")
        return 1
    print(f"torch {torch.__version__}; tolerances: outputs {TOL_OUT:g}, grads {TOL_GRAD:g} (relative error of norms)")
    hdr = f"{'model':28s} {'logits':>9s} {'loss':>9s} {'logprobs':>9s} {'grad max':>9s} {'#p':>4s} {'greedy':>6s} {'gu-swap':>8s}  status"
    print(hdr)
    print("-" * len(hdr))
    all_ok = True
    for folder in folders:
        name = os.path.basename(folder)
        try:
            res, failures = check_one(folder, args.verbose)
        except Exception as exc:  # report and carry on with the other models
            print(f"{name:28s} ERROR {type(exc).__name__}: {exc}")
            all_ok = False
            continue
        swap = f"{res['swap_err']:8.1e}" if "swap_err" in res else f"{'-':>8s}"
        greedy_s = {True: "same", False: "DIFF"}.get(res.get("greedy"), "-")
        status = "PASS" if not failures else "FAIL"
        print(
            f"{name:28s} {res['logits']:9.2e} {res['loss']:9.2e} {res['logprobs']:9.2e} "
            f"{res['grad_max']:9.2e} {res['n_params']:4d} {greedy_s:>6s} {swap}  {status}"
        )
        print(f"{'':28s} worst grad: {res['grad_worst']}")
        for f_ in failures[:20]:
            print(f"{'':28s} ! {f_}")
        all_ok = all_ok and not failures
    print("ALL PASS" if all_ok else "FAILURES")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
