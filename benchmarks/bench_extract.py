"""Feature extraction throughput: snippets/s, video seconds per wall second, GFLOP/s against the matmul peak.

    python -m benchmarks.bench_extract                                   # i3d_r50: 10 and 1 crops, fp32 and bf16
    python -m benchmarks.bench_extract --runs i3d_r50:10:off r2plus1d_18:10:off --seconds 8
Each run (BACKBONE:CROPS:AMP) extracts a generated 30 fps 320×240 video in its own process (so each peak RSS
is its own) with stand-in weights (seeded random: speed does not depend on the values). FLOPs are counted
from the convolution and linear layers' shapes (attention products left out). "decode share" is the time
the backbone waited for decoded snippets: decoding that the background thread did not hide; "decode alone"
the time decoding and resizing take by themselves. "bf16 vs fp32": the relative L2 deviation of the bf16
features from fp32 ones on the same snippets.
"""
import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
from torch import nn

from benchmarks.common import matmul_peak_gflops, measure_in_process, peak_rss_gb
from video.backbones import build_backbone
from video.decode import read_frames
from video.extract import Extractor, Progress
from video.presets import SNIPPET, preset_for

FPS, WIDTH, HEIGHT = 30, 320, 240


def write_test_video(path: Path, seconds: float) -> None:
    """A 30 fps 320×240 H.264 video: noise with a moving bright square."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for k in range(int(seconds * FPS)):
            frame = rng.integers(0, 60, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
            x = (4 * k) % (WIDTH - 40)
            frame[100:140, x:x + 40] = (230, 200, 80)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode(None))


def clip_gflops(net: nn.Module, clip: torch.Tensor) -> float:
    """Forward GFLOP of one clip: 2 × the multiply-accumulates of every Conv3d and Linear, from their shapes."""
    macs = []

    def count(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if isinstance(module, nn.Conv3d):
            per_output = module.in_channels // module.groups * int(np.prod(module.kernel_size))
        else:
            per_output = module.in_features
        macs.append(output.numel() * per_output)

    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, (nn.Conv3d, nn.Linear))]
    with torch.inference_mode():
        net(clip)
    for hook in hooks:
        hook.remove()
    return 2 * sum(macs) / 1e9


def measure(video: str, backbone_name: str, crops: int, amp: str, batch_size: int) -> dict:
    torch.manual_seed(0)
    backbone = build_backbone(backbone_name, None, random_ok=True)
    preset = preset_for(backbone_name, backbone.preprocessing)
    extractor = Extractor(backbone, preset, crops, batch_size, torch.device("cpu"), amp)
    clip = torch.zeros(1, 3, SNIPPET, preset.crop_size, preset.crop_size)
    gflop = clip_gflops(backbone.net, clip) * crops
    first = next(extractor.features(video))  # also the warm-up
    deviation = float("nan")
    if amp == "bf16":  # the same batch in fp32: relative L2 deviation of the bf16 features
        exact = next(dataclasses.replace(extractor, amp="off").features(video))
        deviation = float(np.linalg.norm(first - exact) / np.linalg.norm(exact))
    progress = Progress()
    snippets = sum(len(batch) for batch in extractor.features(video, progress))
    start = time.perf_counter()
    for chunk in read_frames(video):  # decoding and resizing alone, as the background thread does them
        preset.resize(chunk)
    decode_alone = time.perf_counter() - start
    rate = snippets / progress.seconds
    return {"backbone": backbone_name, "crops": crops, "amp": amp, "snippets": snippets, "snippets_per_s": rate,
            "video_s_per_s": rate * SNIPPET / FPS, "gflop": gflop, "gflops": rate * gflop,
            "decode_share": progress.wait_seconds / progress.seconds,
            "decode_alone_share": decode_alone / progress.seconds, "bf16_deviation": deviation,
            "peak_rss_gb": peak_rss_gb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=["i3d_r50:10:off", "i3d_r50:10:bf16", "i3d_r50:1:off"],
                        help="BACKBONE:CROPS:AMP")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of the generated video")
    parser.add_argument("--batch_size", type=int, default=4, help="snippets per forward pass")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        backbone, crops, amp = args.one[1].split(":")
        print(json.dumps(measure(args.one[0], backbone, int(crops), amp, args.batch_size)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "bench.mp4"
        write_test_video(video, args.seconds)
        peaks = {"off": matmul_peak_gflops(torch.float32), "bf16": matmul_peak_gflops(torch.bfloat16)}
        print(f"video: {args.seconds:g} s, {FPS} fps, {WIDTH}×{HEIGHT}; matmul peak (4096², "
              f"{torch.get_num_threads()} threads): fp32 {peaks['off']:.0f}, bf16 {peaks['bf16']:.0f} GFLOP/s")
        print("| backbone | crops | precision | snippets/s | video s per s | GFLOP/snippet | GFLOP/s "
              "| of matmul peak | peak RSS (GB) | decode share | decode alone | bf16 vs fp32 |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for run in args.runs:
            try:
                r = measure_in_process("benchmarks.bench_extract", ["--batch_size", str(args.batch_size),
                                                                    "--one", str(video), run])
            except RuntimeError as e:
                print(f"| {run} | failed: {e} |")
                continue
            print(f"| {r['backbone']} | {r['crops']} | {'bf16' if r['amp'] == 'bf16' else 'fp32'} | "
                  f"{r['snippets_per_s']:.2f} | {r['video_s_per_s']:.2f} | {r['gflop']:.1f} | {r['gflops']:.0f} | "
                  f"{r['gflops'] / peaks[r['amp']]:.0%} | {r['peak_rss_gb']:.2f} | {r['decode_share']:.1%} | "
                  f"{r['decode_alone_share']:.1%} | "
                  + (f"{r['bf16_deviation']:.2%} |" if r["amp"] == "bf16" else "|"))


if __name__ == "__main__":
    main()
