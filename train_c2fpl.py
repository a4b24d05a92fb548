"""The C2FPL stage: coarse-to-fine pseudo labels, then the auxiliary classifier trained on them.

Writes into its folder ``c2fpl_pseudo_labels.npy`` (N,), ``c2fpl_video_labels.npy`` (V,), the
classifier ``UCFfinal.pkl`` (the release's C2FPL layout) and ``c2fpl_summary.json``; a folder whose
summary matches the same inputs and settings is reused as it is.
"""
import json
import time
from pathlib import Path

import numpy as np
import sklearn
import torch
import torch.nn.functional as F

from dataset import c2fpl
from dataset.features import FeatureSource
from dataset.ground_truth import TestSet
from dataset.windows import make_loader
from evaluate import evaluate_test
from model.frd import init_weights
from model.scorer import C2FPLClassifier
from utils.checkpoint import save_checkpoint
from utils.config import Config
from utils.errors import InputError
from utils.io import fingerprint, save_json, save_npy

FILES = {"pseudo_labels": "c2fpl_pseudo_labels.npy", "video_labels": "c2fpl_video_labels.npy",
         "classifier": "UCFfinal.pkl", "summary": "c2fpl_summary.json"}
BATCH_SIZE = 128


def train_classifier(source: FeatureSource, labels: np.ndarray, seed: int, epochs: int = 20,
                     device: torch.device | str = "cpu", num_workers: int = 0) -> C2FPLClassifier:
    """The published recipe: BCE on per-snippet ``labels (N,)``, SGD 0.01 Nesterov momentum 0.9, weight decay
    5e-4, MultiStepLR [15, 25] × 0.1, batch 128, shuffled snippets ``(128, C, D)``.

    Seeded by ``seed`` on its own: the caller's random state is left as it was, so a run that builds the
    classifier and a run that reuses it train FRD-UVAD identically."""
    with torch.random.fork_rng(devices=[torch.device(device)] if torch.device(device).type == "cuda" else []):
        torch.manual_seed(seed)
        return _train_classifier(source, labels, seed, epochs, device, num_workers)


def _train_classifier(source: FeatureSource, labels: np.ndarray, seed: int, epochs: int,
                      device: torch.device | str, num_workers: int) -> C2FPLClassifier:
    model = C2FPLClassifier(source.feature_size)
    model.apply(init_weights)
    model.to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[15, 25], gamma=0.1)
    targets = torch.from_numpy(labels.astype(np.float32))
    loader = make_loader(source, 1, BATCH_SIZE, seed, num_workers=num_workers,
                         pin_memory=torch.device(device).type == "cuda")
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            x = batch["features"][:, :, 0].to(device, non_blocking=True)  # (B, C, D)
            y = targets[batch["rows"][:, 0]].to(device, non_blocking=True)  # (B,)
            loss = F.binary_cross_entropy(model(x).squeeze(-1), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        schedule.step()
    return model.eval()


def precision_recall(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Of 0/1 ``predicted`` against 0/1 ``truth``, both (N,)."""
    hit = float(np.sum((predicted == 1) & (truth == 1)))
    return {"precision": hit / max(int(predicted.sum()), 1), "recall": hit / max(int(truth.sum()), 1)}


def run_stage(cfg: Config, train: FeatureSource, test: TestSet | None, out_dir: str | Path,
              device: torch.device) -> dict[str, Path]:
    """Pseudo labels and classifier for ``train`` into ``out_dir`` (reused when already made from the same inputs)."""
    if train.ranges is None:
        raise InputError("--train_ranges", "C2FPL needs the training videos' ranges ([from, to) per video)")
    out_dir = Path(out_dir)
    paths = {key: out_dir / name for key, name in FILES.items()}
    key = fingerprint(features_file=cfg.train_features, list_file=cfg.train_list, ranges_file=cfg.train_ranges,
                      window=cfg.c2fpl_window, nu=cfg.c2fpl_nu, epochs=cfg.c2fpl_epochs, seed=cfg.seed,
                      sklearn=sklearn.__version__, shape=[train.n_snippets, train.n_crops, train.feature_size])
    if all(p.is_file() for p in paths.values()):
        if json.loads(paths["summary"].read_text()).get("fingerprint") == key:
            print(f"C2FPL: reusing {out_dir} (same inputs and settings)")
            return paths
    started = time.perf_counter()
    video_labels, snippet_labels = c2fpl.pseudo_labels(train, train.ranges, cfg.c2fpl_window, cfg.c2fpl_nu,
                                                       ranges_path=cfg.train_ranges)
    labelled = time.perf_counter()
    classifier = train_classifier(train, snippet_labels, cfg.seed, cfg.c2fpl_epochs, device, cfg.num_workers)
    summary = {"fingerprint": key, "videos": len(video_labels), "anomalous_videos": int(video_labels.sum()),
               "snippets": len(snippet_labels), "anomalous_snippets": int(snippet_labels.sum()),
               "seconds_labels": round(labelled - started, 2),
               "seconds_classifier": round(time.perf_counter() - labelled, 2)}
    if cfg.train_truth:
        truth = np.load(cfg.train_truth)[: len(snippet_labels)]
        summary["pseudo_labels_vs_truth"] = precision_recall(snippet_labels, truth)
    if test is not None:
        metrics, _ = evaluate_test(lambda x: classifier(x).squeeze(-1), test, cfg.eval_batch_size, device)
        summary["classifier_test"] = {k: v for k, v in metrics.items() if k != "per_video_auc"}
    save_npy(paths["pseudo_labels"], snippet_labels)
    save_npy(paths["video_labels"], video_labels.astype(np.uint8))
    save_checkpoint(paths["classifier"], classifier.cpu().state_dict())
    save_json(paths["summary"], summary)
    print(f"C2FPL: {summary['anomalous_videos']}/{summary['videos']} videos and {summary['anomalous_snippets']}/"
          f"{summary['snippets']} snippets labelled anomalous -> {out_dir}")
    return paths
