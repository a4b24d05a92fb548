"""The C2FPL stage: coarse-to-fine pseudo labels, then the auxiliary classifier trained on them.

Writes into its folder ``c2fpl_pseudo_labels.npy`` (N,), ``c2fpl_video_labels.npy`` (V,), the
classifier ``c2fpl_classifier.pkl`` (the release's C2FPL layout, as the authors' ``UCFfinal.pkl``) with
``c2fpl_classifier.yaml`` (feature size, crops and the features' extraction settings when extract_features.py made
them) and ``c2fpl_summary.json``; a folder whose summary matches the same inputs and settings is reused as it is
(one written before the classifier was renamed, with its ``UCFfinal.pkl``, too). While the stage runs, the labels
are written first and ``c2fpl_partial.pt`` keeps the classifier's training state after every epoch, so that
a run stopped by Ctrl-C is continued by the next one with the same inputs and settings.
"""
import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import sklearn
import torch
import torch.nn.functional as F

from dataset import c2fpl
from dataset.features import FeatureSource
from dataset.ground_truth import TestSet
from dataset.prepare import extraction_settings
from dataset.windows import make_loader
from engine.interrupt import Interrupted, sigint_held
from engine.scoring import score_snippets, test_metrics
from model.frd import init_weights
from model.scorer import C2FPLClassifier
from utils.checkpoint import save_checkpoint
from utils.config import C2FPLRecipe, Config
from utils.errors import InputError
from utils.io import fingerprint, save_json, save_npy
from utils.metrics import precision_recall
from utils.progress import progress_bar

FILES = {"pseudo_labels": "c2fpl_pseudo_labels.npy", "video_labels": "c2fpl_video_labels.npy",
         "classifier": "c2fpl_classifier.pkl", "summary": "c2fpl_summary.json"}
PARTIAL = "c2fpl_partial.pt"  # an unfinished stage's state, gone once it is finished
LEGACY_CLASSIFIER = "UCFfinal.pkl"  # the classifier's name in folders written before c2fpl_classifier.pkl


def train_classifier(source: FeatureSource, labels: np.ndarray, seed: int, recipe: C2FPLRecipe,
                     device: torch.device | str = "cpu", num_workers: int = 0, state: dict | None = None,
                     on_epoch: Callable[[dict], None] | None = None) -> C2FPLClassifier:
    """BCE on per-snippet ``labels (N,)``, shuffled snippets ``(batch_size, C, D)``, trained as ``recipe`` says (the
    defaults are the published recipe: SGD 0.01 Nesterov momentum 0.9, weight decay 5e-4, MultiStepLR [15, 25] × 0.1,
    batch 128, 20 epochs).

    Seeded by ``seed`` on its own: the caller's random state is left as it was, so a run that builds the
    classifier and a run that reuses it train FRD-UVAD identically. ``on_epoch(state)`` gets the training state
    (model, optimiser, scheduler, random state, ``epoch`` done) after every epoch; passed back as ``state`` with
    the same other arguments, training goes on from there to the classifier of an uninterrupted run."""
    device = torch.device(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        return _train_classifier(source, labels, seed, recipe, device, num_workers, state, on_epoch)


def _train_classifier(source: FeatureSource, labels: np.ndarray, seed: int, recipe: C2FPLRecipe, device: torch.device,
                      num_workers: int, state: dict | None,
                      on_epoch: Callable[[dict], None] | None) -> C2FPLClassifier:
    model = C2FPLClassifier(source.feature_size)
    model.apply(init_weights)
    model.to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov,
                                weight_decay=recipe.weight_decay)
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(recipe.milestones), gamma=recipe.gamma)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["scheduler"])
        _set_rng(state["rng"], device)
    targets = torch.from_numpy(labels.astype(np.float32))
    loader = make_loader(source, 1, recipe.batch_size, seed, num_workers=num_workers, pin_memory=device.type == "cuda")
    epochs = recipe.epochs
    first = state["epoch"] if state is not None else 0
    with progress_bar(total=epochs * len(loader), initial=first * len(loader), desc="C2FPL classifier",
                  unit="batch", dynamic_ncols=True) as bar:
        for epoch in range(first, epochs):
            loader.sampler.set_epoch(epoch)
            total = torch.zeros((), device=device)
            for batch in loader:
                x = batch["features"][:, :, 0].to(device, non_blocking=True)  # (B, C, D)
                y = targets[batch["rows"][:, 0]].to(device, non_blocking=True)  # (B,)
                loss = F.binary_cross_entropy(model(x).squeeze(-1), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.detach()
                bar.update(1)
            schedule.step()
            bar.set_postfix(epoch=f"{epoch + 1}/{epochs}", loss=f"{float(total) / len(loader):.4f}")
            if on_epoch is not None:
                on_epoch({"epoch": epoch + 1, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "scheduler": schedule.state_dict(), "rng": _get_rng(device)})
    return model.eval()


def _get_rng(device: torch.device) -> dict[str, torch.Tensor]:
    """The random states the classifier's training draws from (dropout, the loader's seeds)."""
    rng = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    return rng


def _set_rng(rng: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(rng["cpu"])
    if device.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"], device)


def run_stage(cfg: Config, train: FeatureSource, test: TestSet | None, out_dir: str | Path,
              device: torch.device, log: Callable[[str], None] = print) -> dict[str, Path]:
    """Pseudo labels and classifier for ``train`` into ``out_dir``: reused when already made from the same inputs,
    continued when a run with them was interrupted (``Interrupted`` says what was kept). ``log``: where the
    progress lines go."""
    if train.ranges is None:
        raise InputError("--train_ranges", "C2FPL needs the training videos' ranges ([from, to) per video)")
    out_dir = Path(out_dir)
    paths, key = {name: out_dir / file for name, file in FILES.items()}, fingerprint_of(cfg, train)
    reused = finished(paths, key)
    if reused is not None:
        log(f"C2FPL: reusing {out_dir} (same inputs and settings)")
        return reused
    kept = Kept()
    try:
        partial, video_labels, snippet_labels = labels(cfg, train, paths, key, kept, log)
        classifier = classifier_of(cfg, train, snippet_labels, partial, out_dir / PARTIAL, kept, device, log)
        summary = summarise(cfg, test, classifier, video_labels, snippet_labels, partial, device)
        with sigint_held():
            save_checkpoint(paths["classifier"], classifier.cpu().state_dict(), classifier_settings(cfg, train))
            save_json(paths["summary"], summary)
            (out_dir / PARTIAL).unlink()
    except KeyboardInterrupt:
        raise Interrupted(kept.message(out_dir)) from None
    log(f"C2FPL: {summary['anomalous_videos']}/{summary['videos']} videos and {summary['anomalous_snippets']}/"
        f"{summary['snippets']} snippets labelled anomalous -> {out_dir}")
    return paths


def fingerprint_of(cfg: Config, train: FeatureSource) -> str:
    """What a finished (or interrupted) stage must have been made from to be reused: inputs and settings."""
    return fingerprint(features_file=cfg.train_features, list_file=cfg.train_list, ranges_file=cfg.train_ranges,
                       window=cfg.c2fpl_window, nu=cfg.c2fpl_nu, recipe=asdict(cfg.c2fpl_recipe), seed=cfg.seed,
                       sklearn=sklearn.__version__, shape=[train.n_snippets, train.n_crops, train.feature_size])


def finished(paths: dict[str, Path], key: str) -> dict[str, Path] | None:
    """The files of a stage finished with the fingerprint ``key`` (a classifier written under its earlier name,
    ``LEGACY_CLASSIFIER``, included); None when there is none."""
    found = dict(paths)
    legacy = paths["classifier"].parent / LEGACY_CLASSIFIER
    if not paths["classifier"].is_file() and legacy.is_file():
        found["classifier"] = legacy
    if not all(path.is_file() for path in found.values()):
        return None
    return found if json.loads(found["summary"].read_text()).get("fingerprint") == key else None


class Kept:
    """What an interrupted stage leaves behind, for the line ``Interrupted`` says."""

    def __init__(self) -> None:
        self.what: str | None = None

    def message(self, out_dir: Path) -> str:
        if self.what is None:
            return ("C2FPL interrupted before the pseudo labels were written: nothing kept; run the same command "
                    "again to start it over")
        return f"C2FPL interrupted: kept {self.what} in {out_dir}; run the same command again to continue from there"


def labels(cfg: Config, train: FeatureSource, paths: dict[str, Path], key: str, kept: Kept,
           log: Callable[[str], None]) -> tuple[dict, np.ndarray, np.ndarray]:
    """The stage's partial state (``PARTIAL``), ``video_labels (V,)`` and ``snippet_labels (N,)``: made and written,
    or those an interrupted run with the fingerprint ``key`` wrote."""
    out_dir, partial_path = paths["summary"].parent, paths["summary"].parent / PARTIAL
    partial = read_partial(partial_path, key, paths)
    if partial is not None:
        log(f"C2FPL: reusing the pseudo labels in {out_dir} (same inputs and settings)")
        kept.what = "the pseudo labels"
        return partial, np.load(paths["video_labels"]), np.load(paths["pseudo_labels"])
    for stale in (paths["summary"], partial_path):  # the folder stops being a finished (or another) stage
        stale.unlink(missing_ok=True)
    log(f"C2FPL: pseudo labels from {train.n_snippets} training snippets ...")
    started = time.perf_counter()
    video_labels, snippet_labels = c2fpl.pseudo_labels(train, train.ranges, cfg.c2fpl_window, cfg.c2fpl_nu,
                                                       ranges_path=cfg.train_ranges)
    video_labels = video_labels.astype(np.uint8)
    save_npy(paths["pseudo_labels"], snippet_labels)
    save_npy(paths["video_labels"], video_labels)
    partial = {"fingerprint": key, "seconds_labels": round(time.perf_counter() - started, 2),
               "seconds_classifier": 0.0, "classifier": None}
    save_checkpoint(partial_path, partial)
    kept.what = "the pseudo labels"
    return partial, video_labels, snippet_labels


def classifier_of(cfg: Config, train: FeatureSource, snippet_labels: np.ndarray, partial: dict, partial_path: Path,
                  kept: Kept, device: torch.device, log: Callable[[str], None]) -> C2FPLClassifier:
    """The classifier trained on ``snippet_labels (N,)``, continued from ``partial``'s epoch; ``partial`` (with the
    classifier's training state and time) is written to ``partial_path`` after every epoch."""
    done = partial["classifier"]["epoch"] if partial["classifier"] else 0
    log(f"C2FPL: training the classifier ({cfg.c2fpl_epochs} epochs) ..." if not done else
        f"C2FPL: continuing the classifier from epoch {done}/{cfg.c2fpl_epochs} ...")
    started, seconds = time.perf_counter(), partial["seconds_classifier"]

    def keep(training: dict) -> None:
        partial.update(classifier=training, seconds_classifier=round(seconds + time.perf_counter() - started, 2))
        save_checkpoint(partial_path, partial)
        kept.what = f"the pseudo labels and the classifier after epoch {training['epoch']}/{cfg.c2fpl_epochs}"

    return train_classifier(train, snippet_labels, cfg.seed, cfg.c2fpl_recipe, device, cfg.num_workers,
                            partial["classifier"], keep)


def summarise(cfg: Config, test: TestSet | None, classifier: C2FPLClassifier, video_labels: np.ndarray,
              snippet_labels: np.ndarray, partial: dict, device: torch.device) -> dict:
    """``c2fpl_summary.json``: counts, timings and, where there are true labels, the pseudo labels' precision and
    recall (``--train_truth``) and the classifier's test metrics."""
    summary = {"fingerprint": partial["fingerprint"], "videos": len(video_labels),
               "anomalous_videos": int(video_labels.sum()), "snippets": len(snippet_labels),
               "anomalous_snippets": int(snippet_labels.sum()), "seconds_labels": partial["seconds_labels"],
               "seconds_classifier": partial["seconds_classifier"]}
    if cfg.train_truth:
        truth = np.load(cfg.train_truth)[: len(snippet_labels)]
        hits = int(np.sum((snippet_labels == 1) & (truth == 1)))
        summary["pseudo_labels_vs_truth"] = precision_recall(hits, int(snippet_labels.sum()), int(truth.sum()))
    if test is not None:
        scores = score_snippets(lambda x: classifier(x).squeeze(-1), test.source, test.rows, cfg.eval_batch_size,
                                device)
        metrics = test_metrics(scores, test, cfg)
        summary["classifier_test"] = {k: v for k, v in metrics.items() if k != "per_video_auc"}
    return summary


def classifier_settings(cfg: Config, train: FeatureSource) -> dict:
    """The classifier's settings file: feature size, crops and the features' extraction settings when
    extract_features.py made them."""
    extraction = extraction_settings(cfg.train_list or cfg.train_features)
    return {"feature_size": train.feature_size, "crops": train.n_crops,
            **({"extraction": extraction} if extraction else {})}


def read_partial(path: Path, key: str, paths: dict[str, Path]) -> dict | None:
    """The state an interrupted run left in ``path`` (``PARTIAL``), if it was made with the fingerprint ``key``
    and its labels are there; else None."""
    if not (path.is_file() and paths["pseudo_labels"].is_file() and paths["video_labels"].is_file()):
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state if state.get("fingerprint") == key else None
