"""Evaluate an FRD-UVAD checkpoint: score the test set, report the release's metrics, optional plots.

    python run_test.py                                       # the shipped checkpoint on the synthetic test set
    python run_test.py --ckpt_path best_ckpt/....pkl --dataset_name ucfcrime
    python run_test.py --split train --save_pseudo_labels labels.npy   # labels for --aux frd
"""
import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

from dataset.prepare import REAL_FILES_HINT, open_test, open_train, prepare
from evaluate import evaluate_test, score_snippets
from model.frd import FRDUVAD
from model.scorer import Scorer
from utils.checkpoint import detect_kind, infer_config, load_into, load_state_dict_file
from utils.config import explicit_settings, parse_config
from utils.device import autocast, resolve_device
from utils.errors import InputError
from utils.io import save_json, save_npy

METRICS = (("auc_all", "AUC"), ("auc_abn", "AUC_abn (release groups of 128)"), ("auc_abn_video", "AUC_abn per video"),
           ("far_all", "FAR"), ("far_abn", "FAR_abn"), ("eer", "EER"), ("ap", "AP"), ("pr_auc", "PR AUC (trapezoid)"))


def extra_parser() -> argparse.ArgumentParser:
    """The flags only run_test.py has (the shared configuration's flags come on top); ``command="test"``
    makes --help list only the shared flags that evaluation uses."""
    from utils.config import CliParser

    parser = CliParser(add_help=False, command="test")
    group = parser.add_argument_group("evaluation")
    group.add_argument("--split", choices=("test", "train"), default="test",
                       help="Which split to score: test, the labelled test set, with metrics; train, the training "
                            "features, for --save_pseudo_labels and --scores_out. (default: test)")
    group.add_argument("--metrics_out", metavar="FILE", help="Write every metric to this JSON file.")
    group.add_argument("--scores_out", metavar="FILE", help="Write one float32 score per snippet to this .npy file.")
    group.add_argument("--plot", metavar="DIR",
                       help="Write the ROC curve and per-video score curves (PNG) into this folder.")
    group.add_argument("--save_pseudo_labels", metavar="FILE",
                       help="With --split train: write per-snippet 0/1 labels (score >= 0.5) to this .npy file, "
                            "for main.py --aux frd --aux_labels FILE.")
    return parser


def load_scorer(path: str, device: torch.device) -> Scorer:
    """The Scorer of a full FRD-UVAD checkpoint or of a scorer-only one; feature size read off the weights."""
    sd = load_state_dict_file(path)
    kind = detect_kind(sd)
    if kind == "c2fpl":
        raise InputError(path, "a C2FPL classifier, not an FRD-UVAD checkpoint (use it as --aux_ckpt)")
    feature_size = infer_config(sd)["feature_size"]
    if feature_size is None:
        raise InputError(path, "no scorer weights (scorer.fc1.weight) in this checkpoint")
    model = FRDUVAD(feature_size, cross_clip=4, vitblock_num=0, aux="none")
    load_into(model, {k: v for k, v in sd.items() if kind == "scorer" or k.startswith("scorer.")}, "scorer", path)
    return model.scorer.to(device).eval()


def check_size(scorer: Scorer, ckpt: str, source) -> None:
    if source.feature_size != scorer.fc1.in_features:
        raise InputError(ckpt, f"checkpoint for feature size {scorer.fc1.in_features}, but {source.path} has "
                               f"features of size {source.feature_size}")


def print_metrics(metrics: dict, n_snippets: int, ckpt: str) -> None:
    print(f"checkpoint {ckpt}: {n_snippets} test snippets, {16 * n_snippets} frames")
    for key, name in METRICS:
        if key in metrics:
            print(f"  {name:<32} {metrics[key]:.4f}")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    extra, _ = extra_parser().parse_known_args(argv)
    cfg = parse_config(argv, description=__doc__.splitlines()[0], extra=extra_parser())
    if not cfg.ckpt_path:
        raise InputError("--ckpt_path", "no checkpoint given")
    if cfg.dataset_name != "synthetic" and not Path(cfg.ckpt_path).is_file():
        raise InputError(cfg.ckpt_path, f"checkpoint file not found ({REAL_FILES_HINT})")
    device = resolve_device(cfg.device)
    scorer = load_scorer(cfg.ckpt_path, device)
    explicit = explicit_settings(argv, extra=extra_parser())
    size = scorer.fc1.in_features  # the checkpoint decides; a feature size the user gives must agree
    if "feature_size" in explicit and cfg.feature_size != size:
        raise InputError(cfg.ckpt_path, f"checkpoint for feature size {size}, but --feature_size {cfg.feature_size}")
    cfg = prepare(dataclasses.replace(cfg, feature_size=size), {*explicit, "feature_size"})

    if cfg.compile:
        scorer.compile()

    def score(x: torch.Tensor) -> torch.Tensor:
        with autocast(device, cfg.amp):
            return scorer(x).squeeze(-1)

    if extra.split == "train":
        if not (extra.save_pseudo_labels or extra.scores_out):
            raise InputError("--split train", "say where to write: --save_pseudo_labels FILE and/or --scores_out FILE")
        train = open_train(cfg, check_size=False)
        check_size(scorer, cfg.ckpt_path, train)
        scores = score_snippets(score, train, batch_size=cfg.eval_batch_size, device=device)
        if extra.scores_out:
            save_npy(extra.scores_out, scores)
        if extra.save_pseudo_labels:
            labels = (scores >= 0.5).astype(np.uint8)
            save_npy(extra.save_pseudo_labels, labels)
            print(f"{int(labels.sum())}/{len(labels)} training snippets labelled anomalous -> {extra.save_pseudo_labels}")
        return
    test = open_test(cfg, check_size=False)
    check_size(scorer, cfg.ckpt_path, test.source)
    metrics, scores = evaluate_test(score, test, cfg.eval_batch_size, device)
    print_metrics(metrics, test.n_snippets, cfg.ckpt_path)
    if extra.metrics_out:
        save_json(extra.metrics_out, {"checkpoint": cfg.ckpt_path, "test_features": test.source.path, **metrics})
    if extra.scores_out:
        save_npy(extra.scores_out, scores)
    if extra.plot:
        from utils.plots import plot_roc, plot_videos
        plot_roc(scores, test.labels, Path(extra.plot) / "roc.png", title=Path(cfg.ckpt_path).name)
        if test.ranges is not None:
            plot_videos(scores, test.labels, test.ranges, Path(extra.plot), getattr(test.source, "video_names", None))
        print(f"plots -> {extra.plot}")


if __name__ == "__main__":
    try:
        main()
    except InputError as e:
        sys.exit(f"error: {e}")
