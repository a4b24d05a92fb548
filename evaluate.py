"""Scoring a feature set in batches and evaluating it against frame labels (used by training and run_test.py)."""
from typing import Callable

import numpy as np
import torch

from dataset.features import FeatureSource
from dataset.ground_truth import TestSet
from utils.metrics import evaluate

ScoreFn = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def score_snippets(score: ScoreFn, source: FeatureSource, rows: np.ndarray | None = None,
                   batch_size: int = 1024, device: torch.device | str = "cpu") -> np.ndarray:
    """``score``: (n, C, D) → (n,) on ``device``; the rows of ``source`` (default all) → (N,) float32 scores.

    Streams the (memory-mapped) features ``batch_size`` snippets at a time.
    """
    rows = np.arange(source.n_snippets) if rows is None else np.asarray(rows, dtype=np.int64)
    out = torch.empty(len(rows), dtype=torch.float32, device=device)
    pin = torch.device(device).type == "cuda"
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        x = torch.from_numpy(source.gather(chunk))
        x = x.pin_memory().to(device, non_blocking=True) if pin else x.to(device)
        out[start:start + len(chunk)] = score(x)
    return out.cpu().numpy()


def evaluate_test(score: ScoreFn, test: TestSet, batch_size: int = 1024,
                  device: torch.device | str = "cpu") -> tuple[dict, np.ndarray]:
    """Scores of the test snippets ``(n,)`` and every metric of utils.metrics.evaluate on them."""
    scores = score_snippets(score, test.source, test.rows, batch_size, device)
    return evaluate(scores, test.labels, test.ranges), scores
