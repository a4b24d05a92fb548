"""Evaluate an FRD-UVAD checkpoint: score the test set, report the release's metrics, optional plots.

    python run_test.py                                       # the shipped checkpoint on the synthetic test set
    python run_test.py --ckpt_path best_ckpt/....pkl --dataset_name ucfcrime
    python run_test.py --split train --save_pseudo_labels labels.npy   # labels for --aux frd
    python run_test.py --run_dir ckpt/synthetic/RUN     # a run's best_ckpt, last and selected checkpoints side by side
    python run_test.py --video DIR_OR_FILE --ckpt_path OUT/last.pkl --output_dir results   # anomaly times of videos
    python run_test.py --video rtsp://camera/stream --ckpt_path OUT/last.pkl --output_dir live   # a live source
"""
import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

from dataset.prepare import REAL_FILES_HINT, open_test, open_train, prepare
from deploy.score import (EventRules, clock, live_name, print_report, resolve_extraction, score_video, speed_line,
                          write_summaries)
from engine.scoring import score_snippets, score_test_set, scorer
from model.checkpoint import CheckpointError, detect_kind, infer_config, load_into, model_config
from model.frd import FRDUVAD, ModelConfig
from report import write_test_report, write_videos_report
from report.data import Evaluated
from utils.checkpoint import load_state_dict_file, read_settings, settings_path
from utils.config import SELECT_METRICS, Config, parse_config
from utils.device import resolve_device
from utils.errors import InputError
from utils.io import save_json, save_npy
from utils.outputs import check_outputs
from utils.snippet import FRAMES_PER_SNIPPET
from video.annotate import MUXERS
from video.backbones import BACKBONES, build_backbone
from video.decode import VideoError
from video.demo import with_files
from video.extract import Extractor, TooShort
from video.files import find_videos
from video.presets import PRESETS, preset_for

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
    group.add_argument("--run_dir", metavar="DIR",
                       help="A training output folder: its best_ckpt_*.pkl (chosen with the test labels), last.pkl "
                            "and selected.pkl (when present) scored on the test set of its config.yaml (unless "
                            "--config is given), one table.")
    group.add_argument("--metrics_out", metavar="FILE", help="Write every metric to this JSON file.")
    group.add_argument("--scores_out", metavar="FILE", help="Write one float32 score per snippet to this .npy file.")
    group.add_argument("--plot", metavar="DIR",
                       help="Write the ROC curve and per-video score curves (PNG) into this folder.")
    group.add_argument("--save_pseudo_labels", metavar="FILE",
                       help="With --split train: write per-snippet 0/1 labels (score >= --label_threshold) to this "
                            ".npy file, for main.py --aux frd --aux_labels FILE.")
    video = parser.add_argument_group(
        "videos", "Anomaly times of video files or a live source: features extracted as the checkpoint's training "
                  "features were (its settings file records how), scored snippet by snippet.")
    video.add_argument("--video", metavar="PATH", help="A video file, a folder of videos, a list file of video paths, "
                                                       "or a live source PyAV opens (rtsp://…, http://…).")
    video.add_argument("--stream", metavar="FILE", help="A video file watched as if live: read at its own frame "
                                                        "rate, scored as frames arrive.")
    video.add_argument("--backbone", choices=sorted(BACKBONES),
                       help="The feature backbone (default: the checkpoint's record; needed for the authors' files).")
    video.add_argument("--weights", metavar="FILE", help="The backbone's weights file (i3d_r50 needs one).")
    video.add_argument("--preset", choices=sorted(PRESETS), help="i3d_r50's preprocessing (default: the record's).")
    video.add_argument("--crops", type=int, choices=[10, 5, 1], help="Crops per snippet (default: the record's; 1 "
                                                                     "is ten times faster, for CPUs and live use).")
    video.add_argument("--fps", type=float, metavar="R", help="Resample to R frames/s first (default: the record's).")
    video.add_argument("--threshold", type=float, default=0.5, help="Score at or above which a snippet is "
                                                                    "anomalous. (default: 0.5)")
    video.add_argument("--min_gap", type=float, default=1.0, metavar="SECONDS",
                       help="Merge events separated by less than this. (default: 1.0)")
    video.add_argument("--min_length", type=float, default=0.0, metavar="SECONDS",
                       help="Drop events shorter than this. (default: 0)")
    video.add_argument("--annotate", metavar="NAME", help="Also write each video re-encoded with its scores drawn on "
                                                          "it, as DIR/<video name>/NAME (.mp4, .mkv, .mov, .avi).")
    video.add_argument("--video_batch_size", type=int, metavar="N", help="Snippets per forward pass of the "
                                                                         "backbone (default: 4; 1 when live).")
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
        if config.score_fusion and kind != "full":
            raise InputError(where, "score_fusion needs the C2FPL classifier's weights: a full checkpoint, not a "
                                    f"{kind}-only one")
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


def run_checkpoints(run_dir: Path) -> list[tuple[Path, bool]]:
    """A training output folder's checkpoints, each with whether it was chosen without test labels."""
    best = sorted(run_dir.glob("best_ckpt_*.pkl"))
    found = [(path, False) for path in best] + [(run_dir / name, True) for name in ("last.pkl", "selected.pkl")]
    return [(path, label_free) for path, label_free in found if path.is_file()]


def compare_run(argv: list[str], flags: argparse.ArgumentParser, run_dir: Path, metrics_out: str | None) -> None:
    """``--run_dir``: the run's checkpoints scored on its test set, one table (and ``metrics_out``: a JSON file).
    ``flags``: run_test.py's own (``extra_parser``)."""
    found = run_checkpoints(run_dir)
    if not found:
        raise InputError(run_dir, "no best_ckpt_*.pkl, last.pkl or selected.pkl: not a training output folder")
    cfg = parse_config(argv, description=__doc__.splitlines()[0], extra=flags)
    saved = run_dir / "config.yaml"
    if "config" not in cfg.given and saved.is_file():
        cfg = parse_config([*argv, "--config", str(saved)], description=__doc__.splitlines()[0], extra=flags)
    device = resolve_device(cfg.device)
    models = {path: load_model(str(path), device) for path, _ in found}
    size = next(iter(models.values())).config.feature_size
    cfg = prepare(with_files(dataclasses.replace(cfg, feature_size=size)), {*cfg.given, "feature_size"})
    test = open_test(cfg, check_size=False)
    results, scored = {}, []
    for path, label_free in found:
        check_size(models[path], str(path), test.source)
        scores, metrics = score_test_set(models[path], cfg, test, device)
        results[path.name] = {"label_free": label_free, **{k: v for k, v in metrics.items() if k != "per_video_auc"}}
        scored.append(Evaluated(path.name, scores, metrics, label_free))
    print(f"run {run_dir}: {test.n_snippets} test snippets, {FRAMES_PER_SNIPPET * test.n_snippets} frames")
    width = max(len(name) for name in results)
    print(f"{'checkpoint':<{width}}  AUC     AUC_abn AP      label-free")
    for name, m in results.items():
        how = "yes" if m["label_free"] else "no (best on test: selected with test labels)"
        print(f"{name:<{width}}  {m['auc_all']:.4f}  {m['auc_abn']:.4f}  {m['ap']:.4f}  {how}")
    if metrics_out:
        save_json(metrics_out, {"run_dir": str(run_dir), "test_features": test.source.path, "checkpoints": results})
    if cfg.report:
        write_test_report(report_folder(metrics_out, None, cfg.output_dir) or run_dir, scored, test,
                          cfg.label_threshold, f"run {run_dir}")


def report_folder(metrics_out: str | None, plot: str | None, output_dir: str | None) -> Path | None:
    """Where a test-set evaluation's report goes: beside --metrics_out, else into --plot, else --output_dir."""
    return Path(metrics_out).parent if metrics_out else Path(plot or output_dir) if plot or output_dir else None


def score_videos(cfg: Config, extra: argparse.Namespace, model: FRDUVAD, device: torch.device) -> None:
    """``--video`` / ``--stream``: each video extracted, scored and reported into ``--output_dir/<name>/``."""
    if not cfg.output_dir:
        raise InputError("--output_dir", "say where the results go: each video's in OUTPUT_DIR/<video name>/")
    check_outputs({"--output_dir": cfg.output_dir})
    if extra.annotate and Path(extra.annotate).suffix.lower() not in MUXERS:
        raise InputError("--annotate", f"a file name ending in {', '.join(MUXERS)}, got {extra.annotate!r}")
    live = bool(extra.stream) or "://" in (extra.video or "")
    how = resolve_extraction(read_settings(cfg.ckpt_path), extra.backbone, extra.preset, extra.crops, extra.fps,
                             cfg.ckpt_path)
    backbone = build_backbone(how["backbone"], extra.weights)
    size = model.config.feature_size
    if backbone.feature_size != size:
        raise InputError(cfg.ckpt_path, f"checkpoint for feature size {size}, but {backbone.name} gives "
                                        f"{backbone.feature_size}-d features")
    if how["recorded_backbone"] not in (None, backbone.name):
        print(f"note: the checkpoint was trained on {how['recorded_backbone']} features, not {backbone.name}")
    if how["weights"] and how["weights"] != backbone.weights_id:
        print(f"note: these {backbone.name} weights ({backbone.weights_id}) are not the ones its training features "
              f"were made with ({how['weights']})")
    for note in how["notes"]:
        print(note)
    preset = preset_for(backbone.name, backbone.preprocessing, how["preset"])
    extractor = Extractor(backbone, preset, how["crops"], extra.video_batch_size or (1 if live else 4), device,
                          cfg.amp, how["fps"], chunk=4 if live else 32)
    backbone.net.to(device)
    rules = EventRules(extra.threshold, extra.min_gap, extra.min_length)

    score = scorer(model, device, cfg.amp)
    out = Path(cfg.output_dir)
    sources = [(extra.stream or extra.video, live_name(extra.stream or extra.video))] if live \
        else find_videos(extra.video)
    reports, problems = [], []
    for i, (video, name) in enumerate(sources, 1):
        if not live:
            print(f"video {i}/{len(sources)}: {video}", flush=True)
        try:
            report = score_video(extractor, score, video, name, out / name, rules, device, live=live,
                                 paced=bool(extra.stream), annotate=extra.annotate,
                                 on_event=(lambda e: print(f"event {clock(e.start)} – {clock(e.end)}, peak "
                                                           f"{e.peak_score:.3f}", flush=True)) if live else None)
        except TooShort as e:
            problems.append(f"  skipped: {video}: {e}")
            continue
        except VideoError as e:
            problems.append(f"  failed: {video}: {e}")
            continue
        reports.append(report)
        print_report(report)
        if live:
            print(speed_line(report, extractor))
        if report.stopped == "interrupted":
            break
    if reports:
        write_summaries(out, reports)
        if cfg.report:
            write_videos_report(out / "report.html", reports, dataclasses.asdict(rules), extra.annotate)
    print(f"{len(reports)} scored, {len(problems)} not" + (f" → {out}" if reports else ""))
    for line in problems:
        print(line)
    if not reports:
        raise InputError(extra.stream or extra.video, "no video scored (the reasons are listed above)")


def checkpoint_model(cfg: Config) -> tuple[FRDUVAD, torch.device]:
    """``--ckpt_path``'s model, on ``--device``."""
    if not cfg.ckpt_path:
        raise InputError("--ckpt_path", "no checkpoint given")
    if cfg.dataset_name != "synthetic" and not Path(cfg.ckpt_path).is_file():
        raise InputError(cfg.ckpt_path, f"checkpoint file not found ({REAL_FILES_HINT})")
    device = resolve_device(cfg.device)
    return load_model(cfg.ckpt_path, device), device


def with_data(cfg: Config, model: FRDUVAD) -> Config:
    """``cfg`` with its data settled (``dataset.prepare``) at the checkpoint's feature size: the checkpoint decides;
    a feature size the user gives must agree."""
    size = model.config.feature_size
    if "feature_size" in cfg.given and cfg.feature_size != size:
        raise InputError(cfg.ckpt_path, f"checkpoint for feature size {size}, but --feature_size {cfg.feature_size}")
    return prepare(with_files(dataclasses.replace(cfg, feature_size=size)), {*cfg.given, "feature_size"})


def score_train(cfg: Config, extra: argparse.Namespace, model: FRDUVAD, device: torch.device) -> None:
    """``--split train``: scores and/or 0/1 pseudo labels (score >= --label_threshold) of the training snippets."""
    if not (extra.save_pseudo_labels or extra.scores_out):
        raise InputError("--split train", "say where to write: --save_pseudo_labels FILE and/or --scores_out FILE")
    train = open_train(cfg, check_size=False)
    check_size(model, cfg.ckpt_path, train)
    scores = score_snippets(scorer(model, device, cfg.amp), train, batch_size=cfg.eval_batch_size, device=device)
    if extra.scores_out:
        save_npy(extra.scores_out, scores)
    if extra.save_pseudo_labels:
        labels = (scores >= cfg.label_threshold).astype(np.uint8)
        save_npy(extra.save_pseudo_labels, labels)
        print(f"{int(labels.sum())}/{len(labels)} training snippets labelled anomalous -> {extra.save_pseudo_labels}")


def score_test(cfg: Config, extra: argparse.Namespace, model: FRDUVAD, device: torch.device) -> None:
    """The test set: every metric printed, and the metrics, scores and plots written where asked."""
    test = open_test(cfg, check_size=False)
    check_size(model, cfg.ckpt_path, test.source)
    scores, metrics = score_test_set(model, cfg, test, device)
    print_metrics(metrics, test.n_snippets, cfg.ckpt_path, SELECT_METRICS[cfg.select_metric][0])
    if extra.metrics_out:
        save_json(extra.metrics_out, {"checkpoint": cfg.ckpt_path, "test_features": test.source.path, **metrics})
    if cfg.report and (folder := report_folder(extra.metrics_out, extra.plot, cfg.output_dir)):
        write_test_report(folder, [Evaluated(Path(cfg.ckpt_path).name, scores, metrics)], test, cfg.label_threshold,
                          cfg.ckpt_path)
    if extra.scores_out:
        save_npy(extra.scores_out, scores)
    if extra.plot:
        from utils.plots import plot_roc, plot_videos
        plot_roc(scores, test.labels, Path(extra.plot) / "roc.png", title=Path(cfg.ckpt_path).name)
        if test.ranges is not None:
            plot_videos(scores, test.labels, test.ranges, Path(extra.plot), getattr(test.source, "video_names", None),
                        cfg.label_threshold)
        print(f"plots -> {extra.plot}")


def main(argv: list[str] | None = None) -> None:
    """One mode per call: ``--run_dir``, ``--video``/``--stream``, ``--split train``, or the test set."""
    argv = sys.argv[1:] if argv is None else argv
    flags = extra_parser()
    extra, _ = flags.parse_known_args(argv)
    check_outputs({"--plot": extra.plot}, {"--metrics_out": extra.metrics_out, "--scores_out": extra.scores_out,
                                           "--save_pseudo_labels": extra.save_pseudo_labels})
    if extra.run_dir:
        return compare_run(argv, flags, Path(extra.run_dir), extra.metrics_out)
    cfg = parse_config(argv, description=__doc__.splitlines()[0], extra=flags)
    model, device = checkpoint_model(cfg)
    if extra.video or extra.stream:
        return score_videos(cfg, extra, model, device)
    cfg = with_data(cfg, model)
    if cfg.compile:
        model.scorer.compile()
    if extra.split == "train":
        return score_train(cfg, extra, model, device)
    score_test(cfg, extra, model, device)


if __name__ == "__main__":
    try:
        main()
    except (InputError, CheckpointError) as e:
        sys.exit(f"error: {e}")
