"""What several benchmarks share: the matmul peak, peak memory, and one measurement per process."""
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]  # where each measurement's process runs


def matmul_peak_gflops(dtype: torch.dtype, n: int = 4096, repeats: int = 3) -> float:
    """GFLOP/s of the best of ``repeats`` n×n matrix products in ``dtype``."""
    a, b = torch.rand(n, n, dtype=dtype), torch.rand(n, n, dtype=dtype)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n ** 3 / min(times) / 1e9


def peak_rss_gb() -> float:
    """This process's peak resident memory so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def measure_in_process(module: str, argv: list[str]) -> dict:
    """``python -m module *argv`` in a fresh process (so its peak memory is its own); the JSON it prints.
    RuntimeError with the last line of its errors when it fails."""
    done = subprocess.run([sys.executable, "-m", module, *argv], cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}")
    return json.loads(done.stdout)
