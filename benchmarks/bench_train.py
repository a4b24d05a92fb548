"""Training-step throughput and memory: samples/s, peak RSS, GFLOP/s against this machine's matmul peak.

The release's row for comparison (2 cores, 24 GB, torch 2.13 CPU, random batch, train mode,
cross_clip 4, 8 blocks, LAB off, 10 crops): 512/320 → 33.2 samples/s, 9.11 GB; 2048/32 → 12.0
samples/s, 3.16 GB; 2048/320 does not fit in 24 GB.

    python -m benchmarks.bench_train                       # 512/320, 2048/320 (checkpointed), 2048/32
    python -m benchmarks.bench_train --configs 512x320 --steps 5
    python -m benchmarks.bench_train --configs 512x320 2048x32 --amp off bf16   # fp32 and bfloat16 autocast
Each configuration runs in its own process, so each peak RSS is its own. ``--amp bf16`` runs the forward
pass under bfloat16 autocast as training's ``--amp bf16`` does; its GFLOP/s are against the bf16 matmul peak.
"""
import argparse
import json
import statistics
import time

import torch

from benchmarks.common import matmul_peak_gflops, measure_in_process, peak_rss_gb
from model.frd import FRDUVAD, ModelConfig
from utils.device import autocast

CROPS, CROSS_CLIP, BLOCKS, TOKENS = 10, 4, 8, 16


def forward_macs(feature_size: int) -> dict[str, float]:
    """Multiply-accumulates of one sample's forward pass, per part (LayerNorms and softmax left out)."""
    d, t, per_sample = feature_size // TOKENS, TOKENS, CROPS * CROSS_CLIP
    block = 12 * t * d * d + 2 * t * t * d  # qkv 3, proj 1, MLP 8 (×T·d²); scores and weighted sum
    return {"reconstructor": per_sample * (t * d * d + BLOCKS * block),
            "scorer": per_sample * (feature_size * 1024 + 1024 * 128 + 128),
            "auxiliary": per_sample * (feature_size * 512 + 512 * 32 + 32)}


def flops_per_sample(feature_size: int) -> float:
    """Forward of everything, backward (≈ 2× forward) of the trained parts, 2 FLOP per MAC."""
    macs = forward_macs(feature_size)
    return 2 * (sum(macs.values()) + 2 * (macs["reconstructor"] + macs["scorer"]))


def measure(feature_size: int, batch: int, steps: int, checkpoint_blocks: bool, amp: str) -> dict:
    torch.manual_seed(0)
    model = FRDUVAD(ModelConfig(feature_size, CROSS_CLIP, BLOCKS, aux="c2fpl",
                                checkpoint_blocks=checkpoint_blocks)).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3, betas=(0.9, 0.95))
    x = torch.rand(batch, CROPS, CROSS_CLIP, feature_size)
    times = []
    for step in range(steps + 1):
        start = time.perf_counter()
        with autocast(x.device, amp):  # as the trainer: forward under autocast, backward outside
            out = model.training_step(x)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        if step:  # the first step warms up
            times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return {"feature_size": feature_size, "batch": batch, "checkpoint_blocks": checkpoint_blocks, "amp": amp,
            "s_per_step": seconds, "samples_per_s": batch / seconds,
            "gflops": batch / seconds * flops_per_sample(feature_size) / 1e9,
            "peak_rss_gb": peak_rss_gb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["512x320", "2048x320c", "2048x32"],
                        help="FEATURExBATCH, a trailing c for activation checkpointing")
    parser.add_argument("--steps", type=int, default=5, help="timed steps after one warm-up step")
    parser.add_argument("--amp", nargs="+", choices=["off", "bf16"], default=["off"],
                        help="a row per configuration for each: fp32, or bfloat16 autocast")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        size, batch = args.one.rstrip("c").split("x")
        print(json.dumps(measure(int(size), int(batch), args.steps, args.one.endswith("c"), args.amp[0])))
        return
    peaks = {amp: matmul_peak_gflops(torch.bfloat16 if amp == "bf16" else torch.float32) for amp in args.amp}
    print(f"matmul peak (4096², {torch.get_num_threads()} threads): "
          + ", ".join(f"{'bf16' if amp == 'bf16' else 'fp32'} {peak:.0f}" for amp, peak in peaks.items())
          + f" GFLOP/s; model FLOPs per sample: 512 → {flops_per_sample(512) / 1e9:.2f} G, "
          f"2048 → {flops_per_sample(2048) / 1e9:.2f} G")
    print("| feature size | batch | checkpointing | precision | s/step | samples/s | peak RSS (GB) | GFLOP/s "
          "| of matmul peak |")
    print("|---|---|---|---|---|---|---|---|---|")
    for config in args.configs:
        for amp in args.amp:
            try:
                r = measure_in_process("benchmarks.bench_train", ["--one", config, "--steps", str(args.steps),
                                                                  "--amp", amp])
            except RuntimeError as e:
                print(f"| {config} | {amp} | failed: {e} |")
                continue
            print(f"| {r['feature_size']} | {r['batch']} | {'yes' if r['checkpoint_blocks'] else 'no'} | "
                  f"{'bf16 autocast' if amp == 'bf16' else 'fp32'} | {r['s_per_step']:.2f} | "
                  f"{r['samples_per_s']:.1f} | {r['peak_rss_gb']:.2f} | {r['gflops']:.0f} | "
                  f"{r['gflops'] / peaks[amp]:.0%} |")


if __name__ == "__main__":
    main()
