"""Time and size of report.html: a UCF-Crime-sized test set (290 videos, 69,634 snippets; one checkpoint, and three
side by side as ``run_test.py --run_dir`` writes them) and a batch of scored videos (1,000 by default, with their
thumbnails), all synthetic.

    python -m benchmarks.bench_report
    python -m benchmarks.bench_report --scored 300 --repeats 3
"""
import argparse
import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from deploy.score import THUMBNAILS, VideoReport
from report import write_evaluation_report, write_videos_report
from report.data import Evaluated
from utils.events import find_events
from utils.metrics import frame_metrics
from utils.snippet import FRAMES_PER_SNIPPET

UCF_TEST_VIDEOS, UCF_TEST_SNIPPETS, UCF_ANOMALOUS = 290, 69_634, 140
LENGTHS = Path(__file__).resolve().parents[1] / "dataset" / "ucf_train_lengths.npy"


def ucf_sized_test_set(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(16 N,)`` frame labels and ``(290, 2)`` ranges: UCF-Crime's real video lengths (training ones, scaled to
    the test set's 69,634 snippets), 140 videos holding one or two anomalous spans."""
    rng = np.random.default_rng(seed)
    lengths = rng.choice(np.load(LENGTHS), UCF_TEST_VIDEOS).astype(np.float64)
    lengths = np.maximum(1, np.floor(lengths * UCF_TEST_SNIPPETS / lengths.sum())).astype(np.int64)
    lengths[np.argmax(lengths)] += UCF_TEST_SNIPPETS - lengths.sum()
    ends = np.cumsum(lengths)
    ranges = np.stack([ends - lengths, ends], 1)
    labels = np.zeros(FRAMES_PER_SNIPPET * UCF_TEST_SNIPPETS)
    for a, b in ranges[rng.choice(UCF_TEST_VIDEOS, UCF_ANOMALOUS, replace=False)]:
        for _ in range(rng.integers(1, 3)):
            start = rng.integers(a, b)
            stop = min(b, start + max(1, int(rng.uniform(0.05, 0.4) * (b - a))))
            labels[FRAMES_PER_SNIPPET * start:FRAMES_PER_SNIPPET * stop] = 1
    return labels, ranges


def checkpoint_scores(labels: np.ndarray, quality: float, seed: int) -> np.ndarray:
    """``(N,)`` scores, smooth in time, higher on anomalous snippets by ``quality``."""
    rng = np.random.default_rng(seed)
    truth = labels.reshape(-1, FRAMES_PER_SNIPPET).max(1)
    noise = np.convolve(rng.normal(0, 0.25, len(truth)), np.ones(8) / 8 ** 0.5, "same")
    return 1 / (1 + np.exp(-(quality * truth - 1.5 + noise)))


def scored_videos(n: int, seed: int = 0) -> list[VideoReport]:
    """``n`` scored videos of 1 to 10 minutes at 25 frames/s, their events found at 0.5, a thumbnail (120 × 160)
    at each of the highest THUMBNAILS peaks, as run_test.py --video keeps them."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:120, :160]
    reports = []
    for i in range(n):
        snippets = int(rng.uniform(60, 600) * 25 / FRAMES_PER_SNIPPET)
        bumps = np.zeros(snippets)
        for _ in range(rng.poisson(1.0)):
            centre, width = rng.integers(snippets), rng.uniform(3, 40)
            bumps += rng.uniform(1, 4) * np.exp(-0.5 * ((np.arange(snippets) - centre) / width) ** 2)
        scores = 1 / (1 + np.exp(-(bumps - 2.5 + rng.normal(0, 0.3, snippets))))
        starts = np.arange(snippets) * FRAMES_PER_SNIPPET / 25
        events = find_events(list(starts), list(starts + FRAMES_PER_SNIPPET / 25), list(scores), 0.5, 1.0)
        peaks = sorted(events, key=lambda e: -e.peak_score)[:THUMBNAILS]
        scene = (np.stack([x * 1.2 + 20 * i % 90, y * 1.5, (x + y) * 0.6], -1) % 256).astype(np.uint8)
        thumbnails = [(e.peak_time, np.clip(scene + rng.integers(0, 30, scene.shape), 0, 255).astype(np.uint8))
                      for e in sorted(peaks, key=lambda e: e.peak_time)]
        reports.append(VideoReport(f"camera_{i % 40:02d}/night_{i:04d}", f"/recordings/night_{i:04d}.mp4", 25.0,
                                   snippets * FRAMES_PER_SNIPPET, list(scores), events, thumbnails=thumbnails))
    return reports


def timed(write, repeats: int) -> tuple[float, int]:
    """The median seconds of ``write() -> path`` and the size of what it wrote."""
    times, path = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # its "report -> PATH" line
            path = write()
        times.append(time.perf_counter() - start)
    return statistics.median(times), path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scored", type=int, default=1000, help="scored videos in the batch (default: 1000)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    labels, ranges = ucf_sized_test_set()
    evaluated = [Evaluated(name, scores, frame_metrics(scores, labels, ranges), label_free) for name, scores, label_free
                 in (("best_ckpt_0.8212.pkl", checkpoint_scores(labels, 3.0, 1), False),
                     ("last.pkl", checkpoint_scores(labels, 2.5, 2), True),
                     ("selected.pkl", checkpoint_scores(labels, 2.7, 3), True))]
    reports = scored_videos(args.scored)
    snippets = sum(len(r.snippet_scores) for r in reports)
    thumbnails = sum(len(r.thumbnails) for r in reports)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for count in (1, 3):
            seconds, size = timed(lambda: write_evaluation_report(
                out / f"eval{count}.html", evaluated[:count], labels, ranges, None, 0.5, "bench", {}), args.repeats)
            rows.append((f"test set, {count} checkpoint{'s' if count > 1 else ''}", UCF_TEST_VIDEOS,
                         UCF_TEST_SNIPPETS * count, 0, seconds, size))
        rules = {"threshold": 0.5, "min_gap": 1.0, "min_length": 0.0}
        seconds, size = timed(lambda: write_videos_report(out / "videos" / "report.html", reports, rules),
                              args.repeats)
        rows.append(("scored videos", len(reports), snippets, thumbnails, seconds, size))
    print("| report | videos | scores | thumbnails | time to write | size | per video |")
    print("|---|---|---|---|---|---|---|")
    for name, videos, scores, thumbs, seconds, size in rows:
        print(f"| {name} | {videos:,} | {scores:,} | {thumbs:,} | {seconds:.2f} s | {size / 2 ** 20:.1f} MiB | "
              f"{size / videos / 1024:.1f} KiB |")


if __name__ == "__main__":
    main()
