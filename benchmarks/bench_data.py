"""Batch assembly throughput and memory on a concatenated feature file of several GB.

Writes a float32 ``(N, C, D)`` array chunk by chunk (default 50,000 × 10 × 2048 = 4.1 GB)
into a temporary folder, then times the paper batch (320 samples × cross_clip 4) with
``gather_windows`` and ``make_loader`` (0 and 2 workers), cold (file pages dropped from
the page cache with ``posix_fadvise(DONTNEED)`` before every pass) and warm (file read
once beforehand, repeated passes). Prints a Markdown table; deletes the file at the end.

    python -m benchmarks.bench_data [--dir /big/tmp] [--snippets 50000]
"""
import argparse
import gc
import itertools
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap

from dataset.features import ConcatFeatures
from dataset.windows import ShuffledBatchSampler, gather_windows, make_loader

MB = 2**20


def memory_mb(pid: int | str = "self") -> dict[str, float]:
    """VmRSS, RssAnon, RssFile and RssShmem of a process in MiB (empty when it is gone)."""
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                    fields[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return fields


def child_pids() -> list[int]:
    try:
        with open(f"/proc/{os.getpid()}/task/{os.getpid()}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


class MemorySampler(threading.Thread):
    """Peaks of this process's and its children's (loader workers') memory, sampled every few ms."""

    def __init__(self, interval: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.main = {"VmRSS": 0.0, "RssAnon": 0.0, "RssFile": 0.0, "RssShmem": 0.0}
        self.worker = {"VmRSS": 0.0, "RssAnon": 0.0, "RssFile": 0.0, "RssShmem": 0.0}
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            for peaks, pids in ((self.main, ["self"]), (self.worker, child_pids())):
                for pid in pids:
                    for key, value in memory_mb(pid).items():
                        peaks[key] = max(peaks[key], value)

    def stop(self) -> None:
        self.stopped.set()
        self.join()


def write_features(path: Path, n: int, c: int, d: int, chunk_rows: int, seed: int) -> float:
    """Write ``(n, c, d)`` float32 in chunks, each through a fresh map (keeps RSS small); seconds taken."""
    start = time.perf_counter()
    open_memmap(path, mode="w+", dtype=np.float32, shape=(n, c, d)).flush()
    rng = np.random.default_rng(seed)
    for a in range(0, n, chunk_rows):
        b = min(a + chunk_rows, n)
        out = open_memmap(path, mode="r+")
        out[a:b] = rng.random((b - a, c, d), dtype=np.float32)
        out.flush()
        del out
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    return time.perf_counter() - start


def drop_from_page_cache(path: Path) -> None:
    """Ask the kernel to evict the file's (clean, unmapped) pages: the next read comes from disk."""
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)


def read_whole_file(path: Path) -> float:
    """Sequential read of the whole file (fills the page cache); seconds taken."""
    start = time.perf_counter()
    buffer = bytearray(64 * MB)
    with open(path, "rb", buffering=0) as f:
        while f.readinto(buffer):
            pass
    return time.perf_counter() - start


def cached_fraction(path: Path) -> float | None:
    """Fraction of the file in the page cache (util-linux ``fincore``), None when unavailable."""
    if shutil.which("fincore") is None:
        return None
    result = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
                            capture_output=True, text=True)
    if result.returncode != 0 or not result.stdout.strip():
        return None
    return int(result.stdout.split()[0]) / path.stat().st_size


def timed_pass(batches, n_batches: int) -> float:
    """Seconds for ``n_batches`` batches after one untimed batch (worker start-up excluded)."""
    next(batches)
    start = time.perf_counter()
    for _ in itertools.islice(batches, n_batches):
        pass
    return time.perf_counter() - start


def gather_batches(source, args, epoch: int):
    sampler = ShuffledBatchSampler(source.n_snippets, args.batch_size, seed=args.seed)
    sampler.set_epoch(epoch)
    for starts in sampler:
        yield gather_windows(source, starts, args.cross_clip)


def run(path: Path, args) -> list[dict]:
    methods = [("gather_windows", None), ("make_loader, 0 workers", 0), ("make_loader, 2 workers", 2)]
    rows = []
    for name, workers in methods:
        for cache in ("cold", "warm"):
            n_batches = args.cold_batches if cache == "cold" else args.batches
            times, cached = [], []
            source = loader = None
            if cache == "warm":
                read_whole_file(path)
            for epoch in range(args.repeats + (cache == "warm")):
                if cache == "cold" or source is None:
                    source = loader = None
                    gc.collect()
                    if cache == "cold":
                        drop_from_page_cache(path)
                    source = ConcatFeatures(path)
                    if workers is not None:
                        loader = make_loader(source, args.cross_clip, args.batch_size, args.seed,
                                             num_workers=workers)
                cached.append(cached_fraction(path))
                if loader is None:
                    batches = gather_batches(source, args, epoch)
                else:
                    loader.sampler.set_epoch(epoch)
                    batches = iter(loader)
                seconds = timed_pass(batches, n_batches)
                del batches
                if cache == "cold" or epoch > 0:        # the warm section's first pass is a warm-up
                    times.append(seconds)
            source = loader = None
            gc.collect()
            rates = [n_batches * args.batch_size / t for t in times]
            known = [c for c in cached if c is not None]
            rows.append({"method": name, "cache": cache, "rates": rates, "batches": n_batches,
                         "cached": statistics.median(known) if known else None})
    return rows


def table(rows: list[dict], args, c: int, d: int) -> str:
    sample_mb = c * args.cross_clip * d * 4 / MB
    lines = ["| method | page cache | cached before pass | samples/s (median) | min – max | ms / batch "
             "| batch MB/s |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        median = statistics.median(r["rates"])
        cached = "n/a" if r["cached"] is None else f"{100 * r['cached']:.0f} %"
        lines.append(f"| {r['method']} | {r['cache']} | {cached} | {median:,.0f} | "
                     f"{min(r['rates']):,.0f} – {max(r['rates']):,.0f} | "
                     f"{1000 * args.batch_size / median:.0f} | {median * sample_mb:,.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default=None, help="folder for the temporary feature file (default: system temp)")
    parser.add_argument("--snippets", type=int, default=50_000)
    parser.add_argument("--crops", type=int, default=10)
    parser.add_argument("--feature-size", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=320)
    parser.add_argument("--cross-clip", type=int, default=4)
    parser.add_argument("--batches", type=int, default=16, help="timed batches per warm pass")
    parser.add_argument("--cold-batches", type=int, default=8, help="timed batches per cold pass")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per method and cache state")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    baseline = memory_mb()
    folder = Path(tempfile.mkdtemp(prefix="bench_data_", dir=args.dir))
    try:
        path = folder / "concat.npy"
        shape = (args.snippets, args.crops, args.feature_size)
        write_seconds = write_features(path, *shape, chunk_rows=1024, seed=args.seed)
        size = path.stat().st_size
        memory = MemorySampler()
        memory.start()
        rows = run(path, args)
        memory.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"Feature file {shape} float32, {size / 1e9:.2f} GB, written in {write_seconds:.1f} s "
          f"({size / MB / write_seconds:,.0f} MiB/s). Batch {args.batch_size} × cross_clip {args.cross_clip}; "
          f"median of {args.repeats} passes of {args.cold_batches} (cold) / {args.batches} (warm) batches.\n")
    print(table(rows, args, args.crops, args.feature_size))
    batch_mb = args.batch_size * args.crops * args.cross_clip * args.feature_size * 4 / MB
    print(f"\nOne batch is {batch_mb:,.0f} MiB.\n\n"
          f"| memory (MiB) | main process | loader worker |\n|---|---|---|\n"
          f"| baseline RSS (after imports): total / anonymous | {baseline['VmRSS']:,.0f} / "
          f"{baseline['RssAnon']:,.0f} | |\n"
          f"| peak RSS (ru_maxrss) | {peak_self:,.0f} | |\n"
          f"| RSS increase over baseline (ru_maxrss) | {peak_self - baseline['VmRSS']:,.0f} | |\n"
          f"| peak RSS, sampled | {memory.main['VmRSS']:,.0f} | {memory.worker['VmRSS']:,.0f} |\n"
          f"| peak anonymous RSS (private memory), sampled | {memory.main['RssAnon']:,.0f} | "
          f"{memory.worker['RssAnon']:,.0f} |\n"
          f"| peak file-backed RSS (mapped feature pages), sampled | {memory.main['RssFile']:,.0f} | "
          f"{memory.worker['RssFile']:,.0f} |\n"
          f"| peak shared-memory RSS (batches passed by workers), sampled | {memory.main['RssShmem']:,.0f} | "
          f"{memory.worker['RssShmem']:,.0f} |")


if __name__ == "__main__":
    main()
