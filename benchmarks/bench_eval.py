"""Test-time scoring throughput: snippets/s of the Scorer over a memory-mapped test array, metrics included.

The release's rate for comparison (2 cores, torch 2.13 CPU): 9.5 k snippets/s at 512, 3.4 k at 2048.

    python -m benchmarks.bench_eval                         # 20,000 snippets at 512 and at 2048
    python -m benchmarks.bench_eval --snippets 69355 --sizes 2048    # UCF-Crime's test set size (5.7 GB)
The random test file is written into a temporary folder and deleted afterwards. Frame labels are 16 per
snippet; the metrics include the per-video ones (``--videos`` equal videos, 290 like UCF-Crime's test set).
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dataset.features import ConcatFeatures
from engine.scoring import score_snippets
from model.scorer import Scorer
from utils.metrics import frame_metrics
from utils.snippet import FRAMES_PER_SNIPPET


def write_features(path: Path, n: int, feature_size: int, crops: int = 10, chunk: int = 4096) -> None:
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, crops, feature_size))
    rng = np.random.default_rng(0)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        out[start:stop] = rng.random((stop - start, crops, feature_size), dtype=np.float32)
    out.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 2048])
    parser.add_argument("--snippets", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--videos", type=int, default=290)
    args = parser.parse_args()
    print("| feature size | snippets | file GB | scoring snippets/s (median) | metrics s | end to end s |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "test.npy"
            write_features(path, args.snippets, size)
            source = ConcatFeatures(path)
            scorer = Scorer(size).eval()
            gt = (np.random.default_rng(1).random(FRAMES_PER_SNIPPET * args.snippets) < 0.1).astype(np.float64)
            bounds = np.linspace(0, args.snippets, args.videos + 1).astype(np.int64)
            ranges = np.stack([bounds[:-1], bounds[1:]], axis=1)

            def score(x: torch.Tensor) -> torch.Tensor:
                return scorer(x).squeeze(-1)

            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                scores = score_snippets(score, source, batch_size=args.batch)
                times.append(time.perf_counter() - start)
            start = time.perf_counter()
            frame_metrics(scores, gt, ranges)
            metrics_s = time.perf_counter() - start
            seconds = statistics.median(times)
            print(f"| {size} | {args.snippets} | {path.stat().st_size / 1e9:.2f} | {args.snippets / seconds:,.0f} | "
                  f"{metrics_s:.2f} | {seconds + metrics_s:.1f} |")


if __name__ == "__main__":
    main()
