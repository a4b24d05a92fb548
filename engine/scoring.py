"""Scoring snippets in batches and the test metrics of the scores: the one path for training's evaluations,
run_test.py, videos, the C2FPL stage and the baselines."""
from typing import Callable

import numpy as np
import torch

from dataset.features import FeatureSource
from dataset.ground_truth import TestSet
from model.frd import FRDUVAD
from utils.config import Config
from utils.device import autocast
from utils.distributed import gather_rows, is_distributed, own_share
from utils.metrics import frame_metrics

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


def scorer(model: FRDUVAD, device: torch.device, amp: str) -> ScoreFn:
    """``model.score`` under ``--amp``'s autocast: (n, C, D) -> (n,), the function :func:`score_snippets` takes."""
    def score(x: torch.Tensor) -> torch.Tensor:
        with autocast(device, amp):
            return model.score(x)
    return score


def test_metrics(scores: np.ndarray, test: TestSet, cfg: Config) -> dict:
    """``frame_metrics`` of ``(N_test,)`` snippet scores against the test labels, under the run's settings."""
    return frame_metrics(scores, test.labels, test.ranges, cfg.auc_abn_group, threshold=cfg.label_threshold)


def score_test_set(model: FRDUVAD, cfg: Config, test: TestSet, device: torch.device) -> tuple[np.ndarray, dict]:
    """The model's ``(N_test,)`` test scores and their metrics."""
    scores = score_snippets(scorer(model, device, cfg.amp), test.source, test.rows, cfg.eval_batch_size, device)
    return scores, test_metrics(scores, test, cfg)
