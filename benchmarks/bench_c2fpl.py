"""C2FPL pseudo labels at UCF-Crime scale: all 779,951 training snippets, real video lengths.

Features are random (10 crops x --feature_size), written chunk-wise to a memmap in a
temporary folder that is deleted afterwards. Reports the norm pass (GB/s; the file was
just written, so it is read from the page cache), the labeling after the norms, peak
memory, and the direct window loop against the vectorised one on the longest videos.

    python -m benchmarks.bench_c2fpl --feature_size 64
"""
import argparse
import resource
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from dataset.c2fpl import (best_window_start, coarse_video_labels, fine_snippet_labels, normal_density,
                           snippet_norms, video_statistics)
from utils.ranges import ranges_from_lengths

ROOT = Path(__file__).resolve().parents[1]
LENGTHS = ROOT / "dataset" / "ucf_train_lengths.npy"
SHARED_RANGES = ROOT.parent / "shared" / "data" / "ucf_crime_train_ranges.npy"


def ucf_ranges() -> np.ndarray:
    """(1609, 2) [from, to) ranges of the UCF-Crime training videos."""
    lengths = np.load(LENGTHS) if LENGTHS.exists() else np.diff(np.load(SHARED_RANGES), axis=1)[:, 0]
    return ranges_from_lengths(lengths)


def write_features(path: Path, ranges: np.ndarray, n_crops: int, feature_size: int, seed: int,
                   chunk_rows: int = 8192) -> np.ndarray:
    """Per-video energy, plus a louder burst in every other video; returns the memmap."""
    rng = np.random.default_rng(seed)
    lengths = ranges[:, 1] - ranges[:, 0]
    scale = np.repeat(rng.lognormal(0.0, 0.15, size=len(ranges)), lengths).astype(np.float32)
    for v in range(1, len(ranges), 2):
        start = ranges[v, 0] + int(rng.integers(0, lengths[v]))
        scale[start:start + max(1, lengths[v] // 8)] *= 1.6
    shape = (int(ranges[-1, 1]), n_crops, feature_size)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    for start in range(0, len(out), chunk_rows):
        rows = min(chunk_rows, len(out) - start)
        block = rng.standard_normal((rows, n_crops, feature_size), dtype=np.float32)
        block *= scale[start:start + rows, None, None]
        out[start:start + rows] = block
    out.flush()
    return np.load(path, mmap_mode="r")


class AnonPeak:
    """Samples RssAnon (heap, not mapped file pages) from /proc/self/status while active."""

    def __init__(self, period: float = 0.01) -> None:
        self.period, self.peak_kb, self._stop = period, 0, threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("RssAnon:"):
                    self.peak_kb = max(self.peak_kb, int(line.split()[1]))
            self._stop.wait(self.period)

    def __enter__(self) -> "AnonPeak":
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def direct_window_loop(density: np.ndarray, w: int) -> int:
    """The window search as written: one sum per start (numpy inside, Python loop over starts)."""
    steps = np.abs(np.diff(density))
    best, best_start = -1.0, 0
    for s in range(len(density) - w + 1):
        score = steps[s:s + w - 1].sum()
        if score > best:
            best, best_start = score, s
    return best_start


def literal_loop_seconds(density: np.ndarray, w: int, sample: int = 20) -> float:
    """Pure-Python double loop (one addition per term), timed on ``sample`` starts and scaled to all."""
    p = density.tolist()
    t0 = time.perf_counter()
    for s in range(sample):
        score = 0.0
        for t in range(s, s + w - 1):
            score += abs(p[t + 1] - p[t])
    return (time.perf_counter() - t0) * (len(p) - w + 1) / sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feature_size", type=int, default=64)
    parser.add_argument("--n_crops", type=int, default=10)
    parser.add_argument("--window_fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    ranges = ucf_ranges()
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench_c2fpl_") as tmp:
        t0 = time.perf_counter()
        features = write_features(Path(tmp) / "concat.npy", ranges, args.n_crops, args.feature_size, args.seed)
        gb = features.nbytes / 1e9
        rows.append(("features written", f"{features.shape}, {gb:.2f} GB in {time.perf_counter() - t0:.1f} s"))

        with AnonPeak() as anon:
            t0 = time.perf_counter()
            norms = snippet_norms(features)
            t_norms = time.perf_counter() - t0
            t0 = time.perf_counter()
            video_labels = coarse_video_labels(video_statistics(norms, ranges))
            t_coarse = time.perf_counter() - t0
            t0 = time.perf_counter()
            snippet_labels = fine_snippet_labels(norms, ranges, video_labels, args.window_fraction)
            t_fine = time.perf_counter() - t0
        del features

    rows += [
        ("norm pass", f"{t_norms:.2f} s ({gb / t_norms:.2f} GB/s, page cache)"),
        ("coarse video labels (stats + mixtures)", f"{t_coarse:.2f} s"),
        ("fine snippet labels", f"{t_fine:.2f} s"),
        ("labeling after the norms", f"{t_coarse + t_fine:.2f} s (target < 10 s)"),
        ("anomalous videos / labelled snippets", f"{video_labels.sum()} of {len(ranges)} / {snippet_labels.sum()}"),
        ("peak anonymous memory during the stage", f"{anon.peak_kb / 1e6:.2f} GB"),
        ("peak RSS of the process (incl. mapped file pages)",
         f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB"),
    ]

    normal = np.repeat(video_labels == 0, ranges[:, 1] - ranges[:, 0])
    density = normal_density(norms, norms[normal].mean(), norms[normal].std(ddof=1))
    for v in np.argsort(ranges[:, 1] - ranges[:, 0])[-3:][::-1]:
        a, b = ranges[v]
        w = int((b - a) * args.window_fraction)
        t0 = time.perf_counter()
        direct = direct_window_loop(density[a:b], w)
        t_direct = time.perf_counter() - t0
        t0 = time.perf_counter()
        fast = best_window_start(density[a:b], w)
        t_fast = time.perf_counter() - t0
        t_literal = literal_loop_seconds(density[a:b], w)
        rows.append((f"window search, video {v} (T = {b - a}, w = {w})",
                     f"loop over starts {t_direct:.2f} s (pure Python, estimated: {t_literal:.0f} s), "
                     f"vectorised {t_fast * 1e3:.2f} ms, same start: {direct == fast}"))

    print("| stage | result |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
