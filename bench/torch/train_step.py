#!/usr/bin/python3
"""Time training steps of the PyTorch peer (float32, CPU).

  /usr/bin/python3 bench/torch/train_step.py --config bench/configs/transformer-small.json \
      --batch 8 --seq 256 --threads 2 --steps 5 --warmup 2 [--mode fwd-bwd|train]

--mode train   (default) forward, backward, AdamW step (lr 1e-4; torch defaults betas (0.9, 0.999),
               eps 1e-8, weight_decay 0.01), zero_grad
--mode fwd-bwd forward + backward only (gradients are reset, untimed, between steps)

Model: built from the config JSON with random init (N(0, 0.02) weights, zero biases, RMSNorm weights 1).
DeepSeek-V3 configs with num_nextn_predict_layers = 1 include the MTP module; the loss is then
main CE + 0.3 * MTP CE. Tokens: uniform random ids, labels = input_ids (shifted inside).
Prints one JSON line at the end; tokens_per_s = batch*seq / median step time.
"""
import argparse
import os
import sys

from runtime import prepare_runtime


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--mode", choices=("train", "fwd-bwd"), default="train")
    ap.add_argument("--no-mtp", action="store_true", help="leave out the MTP module of DeepSeek-V3 configs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plain-runtime", action="store_true",
                    help="skip the malloc / OpenMP environment tuning (see runtime.py)")
    ap.add_argument("--verbose", action="store_true", help="print each step's time to stderr")
    return ap.parse_args()


args = parse_args()
prepare_runtime(args.threads, tuned=not args.plain_runtime)  # before torch is imported (see runtime.py)

import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import ModelConfig, build_model, init_weights  # noqa: E402


def main():
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cfg = ModelConfig.from_json(args.config)
    model = init_weights(build_model(cfg, mtp=not args.no_mtp), std=0.02, seed=args.seed)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4) if args.mode == "train" else None

    g = torch.Generator().manual_seed(args.seed + 1)
    ids = torch.randint(0, cfg.vocab_size, (args.batch, args.seq), generator=g)

    times, losses = [], []
    for step in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        out = model(ids, labels=ids)
        out["loss"].backward()
        if opt is not None:
            opt.step()
            opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        if opt is None:
            model.zero_grad(set_to_none=True)  # untimed in fwd-bwd mode
        losses.append(out["loss"].item())
        if step >= args.warmup:
            times.append(dt)
        if args.verbose:
            print(f"step {step} {'warmup' if step < args.warmup else 'timed'} {dt * 1e3:.1f} ms "
                  f"loss {losses[-1]:.4f}", file=sys.stderr)

    med = statistics.median(times)
    name = os.path.splitext(os.path.basename(args.config))[0]
    print(json.dumps({
        "model": name,
        "mode": args.mode,
        "tokens_per_s": round(args.batch * args.seq / med, 1),
        "step_ms_median": round(med * 1e3, 2),
        "step_ms_min": round(min(times) * 1e3, 2),
        "threads": args.threads,
        "batch": args.batch,
        "seq": args.seq,
        "steps": args.steps,
        "warmup": args.warmup,
        "params": n_params,
        "mtp": bool(model.mtp),
        "loss_first": round(losses[0], 4),
        "loss_last": round(losses[-1], 4),
        "runtime_tuned": not args.plain_runtime,
        "torch_version": torch.__version__,
    }))


if __name__ == "__main__":
    main()
