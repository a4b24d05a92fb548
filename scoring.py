"""Scoring snippets in batches: the one path for training's evaluations, run_test.py, the C2FPL stage and the
baselines (metrics: ``utils.metrics.frame_metrics``)."""
from typing import Callable

import numpy as np
import torch

from dataset.features import FeatureSource
from utils.distributed import gather_rows, is_distributed, own_share

ScoreFn = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def score_snippets(score: ScoreFn, source: FeatureSource, rows: np.ndarray | None = None, batch_size: int = 1024,
                   device: torch.device | str = "cpu", sharded: bool = False) -> np.ndarray:
    """``score``: (n, C, D) → (n,) on ``device``; the rows of ``source`` (default all) → (N,) float32 scores.

    Streams the (memory-mapped) features ``batch_size`` snippets at a time. ``sharded``: every process of a torchrun
    calls this together; each scores its own contiguous part of the rows and every one gets all N scores.
    """
    rows = np.arange(source.n_snippets) if rows is None else np.asarray(rows, dtype=np.int64)
    mine = own_share(rows) if sharded else rows
    out = torch.empty(len(mine), dtype=torch.float32, device=device)
    pin = torch.device(device).type == "cuda"
    for start in range(0, len(mine), batch_size):
        chunk = mine[start:start + batch_size]
        x = torch.from_numpy(source.gather(chunk))
        x = x.pin_memory().to(device, non_blocking=True) if pin else x.to(device)
        out[start:start + len(chunk)] = score(x)
    if sharded and is_distributed():
        out = gather_rows(out)
    return out.cpu().numpy()
