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
from model.frd import FRDUVAD, ModelConfig
from scoring import score_snippets
from utils.checkpoint import (detect_kind, infer_config, load_into, load_state_dict_file, model_config, read_settings,
                              settings_path)
from utils.config import SELECT_METRICS, explicit_settings, parse_config
from utils.device import autocast, resolve_device
from utils.errors import InputError
from utils.io import save_json, save_npy
from utils.metrics import FRAMES_PER_SNIPPET, frame_metrics

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
                       help="With --split train: write per-snippet 0/1 labels (score >= --label_threshold) to this "
                            ".npy file, for main.py --aux frd --aux_labels FILE.")
    return parser


def load_model(path: str, device: torch.device) -> FRDUVAD:
    """The model a checkpoint was trained as, rebuilt from its settings (``<name>.yaml`` beside it) and loaded whole
    (only the scorer from a scorer-only file); without settings (the authors' files), a model around the checkpoint's
    scorer, its feature size read off the weights (``infer_config``)."""
    sd = load_state_dict_file(path)
    kind = detect_kind(sd)
    if kind == "c2fpl":
        raise InputError(path, "a C2FPL classifier, not an FRD-UVAD checkpoint (use it as --aux_ckpt)")
    settings, where = read_settings(path), settings_path(path)
    if settings is not None:
        config = model_config(settings, where)
    else:
        feature_size, where = infer_config(sd)["feature_size"], path
        if feature_size is None:
            raise InputError(path, "no scorer weights (scorer.fc1.weight) in this checkpoint")
        config = ModelConfig(feature_size, cross_clip=4, vitblock_num=0, aux="none")
        sd, kind = {k: v for k, v in sd.items() if kind == "scorer" or k.startswith("scorer.")}, "scorer"
    try:
        model = FRDUVAD(config)
    except ValueError as e:
        raise InputError(where, str(e)) from None
    load_into(model, sd, kind, path)
    return model.to(device).eval()


def check_size(model: FRDUVAD, ckpt: str, source) -> None:
    size = model.config.feature_size
    if source.feature_size != size:
        raise InputError(ckpt, f"checkpoint for feature size {size}, but {source.path} has features of size "
                               f"{source.feature_size}")


def print_metrics(metrics: dict, n_snippets: int, ckpt: str, first: str = "auc_all") -> None:
    """Every metric present, the ``first`` one (a METRICS key, the --select_metric one) on top."""
    print(f"checkpoint {ckpt}: {n_snippets} test snippets, {FRAMES_PER_SNIPPET * n_snippets} frames")
    for key, name in sorted(METRICS, key=lambda metric: metric[0] != first):
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
    model = load_model(cfg.ckpt_path, device)
    explicit = explicit_settings(argv, extra=extra_parser())
    size = model.config.feature_size  # the checkpoint decides; a feature size the user gives must agree
    if "feature_size" in explicit and cfg.feature_size != size:
        raise InputError(cfg.ckpt_path, f"checkpoint for feature size {size}, but --feature_size {cfg.feature_size}")
    cfg = prepare(dataclasses.replace(cfg, feature_size=size), {*explicit, "feature_size"})

    if cfg.compile:
        model.scorer.compile()

    def score(x: torch.Tensor) -> torch.Tensor:
        with autocast(device, cfg.amp):
            return model.score(x)

    if extra.split == "train":
        if not (extra.save_pseudo_labels or extra.scores_out):
            raise InputError("--split train", "say where to write: --save_pseudo_labels FILE and/or --scores_out FILE")
        train = open_train(cfg, check_size=False)
        check_size(model, cfg.ckpt_path, train)
        scores = score_snippets(score, train, batch_size=cfg.eval_batch_size, device=device)
        if extra.scores_out:
            save_npy(extra.scores_out, scores)
        if extra.save_pseudo_labels:
            labels = (scores >= cfg.label_threshold).astype(np.uint8)
            save_npy(extra.save_pseudo_labels, labels)
            print(f"{int(labels.sum())}/{len(labels)} training snippets labelled anomalous -> {extra.save_pseudo_labels}")
        return
    test = open_test(cfg, check_size=False)
    check_size(model, cfg.ckpt_path, test.source)
    scores = score_snippets(score, test.source, test.rows, cfg.eval_batch_size, device)
    metrics = frame_metrics(scores, test.labels, test.ranges, cfg.auc_abn_group, threshold=cfg.label_threshold)
    print_metrics(metrics, test.n_snippets, cfg.ckpt_path, SELECT_METRICS[cfg.select_metric][0])
    if extra.metrics_out:
        save_json(extra.metrics_out, {"checkpoint": cfg.ckpt_path, "test_features": test.source.path, **metrics})
    if extra.scores_out:
        save_npy(extra.scores_out, scores)
    if extra.plot:
        from utils.plots import plot_roc, plot_videos
        plot_roc(scores, test.labels, Path(extra.plot) / "roc.png", title=Path(cfg.ckpt_path).name)
        if test.ranges is not None:
            plot_videos(scores, test.labels, test.ranges, Path(extra.plot), getattr(test.source, "video_names", None),
                        cfg.label_threshold)
        print(f"plots -> {extra.plot}")


if __name__ == "__main__":
    try:
        main()
    except InputError as e:
        sys.exit(f"error: {e}")
