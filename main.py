"""FRD-UVAD from the command line: configuration → data → model (+ auxiliary) → training.

    python main.py                                  # the synthetic default, end to end
    python main.py --dataset_name ucfcrime ...      # the paper's command (docs/training.md)
    python main.py --dataset_name custom --train_list OUT/features.list   # your own features, no test set
    python main.py --stage data --output_dir DIR    # write the synthetic dataset into DIR
    python main.py --stage c2fpl                    # C2FPL pseudo labels and classifier only
"""
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from dataset import synthetic
from dataset.c2fpl import snippet_norms
from dataset.features import FeatureSource, read_npy
from dataset.ground_truth import TestSet
from dataset.prepare import (check_train_given, extraction_settings, has_test_set, open_test, open_train, prepare,
                             synthetic_spec)
from engine import c2fpl_stage
from engine.interrupt import Interrupted
from engine.scoring import score_snippets, score_test_set, test_metrics
from engine.trainer import (RESUME_FILE, SELECTED_FILE, Callback, Trainer, TrainingError, check_output_dir,
                            default_output_dir, seed_everything)
from model.checkpoint import CheckpointError, load_into
from model.frd import FRDUVAD, ModelConfig
from report import write_training_report
from utils.checkpoint import load_state_dict_file, read_settings
from utils.config import SELECT_METRICS, Config, parse_config
from utils.distributed import (Distributed, broadcast_object, launched_by_torchrun, main_process_first,
                               reseed_for_rank, setup, teardown)
from utils.errors import InputError
from utils.io import fingerprint, save_text
from utils.outputs import check_outputs

AUX_MODEL = {"c2fpl": "c2fpl", "frd": "labels", "none": "none"}


def write_synthetic(cfg: Config) -> None:
    """``--stage data``: the synthetic dataset into ``--output_dir`` under the UCF-Crime file names."""
    if not cfg.output_dir:
        raise InputError("--output_dir", "--stage data needs a folder to write into")
    files = synthetic.ensure(cfg.output_dir, synthetic_spec(cfg))
    save_text(Path(cfg.output_dir) / "config.yaml", cfg.to_yaml())
    for key, path in files.items():
        print(f"  {key:<15} {path}")
    print(f"crop-averaged squared-L2-norm baseline, test frame AUC: {synthetic.norm_score_auc(cfg.output_dir):.4f}")


def with_demo_files(cfg: Config) -> Config:
    """``--dataset_name video_demo``: the demo's generated files filled in (``video.demo.with_files``); PyAV and
    torchvision load only then."""
    if cfg.dataset_name != "video_demo":
        return cfg
    from video import demo
    return demo.with_files(cfg)


def c2fpl_dir(cfg: Config) -> str:
    """Where the C2FPL stage's files live (and are reused from) when no folder is given: one folder per
    training file, ``ckpt/<dataset>/c2fpl/<file name>-<hash of its path>``, so other data never replaces them."""
    if cfg.c2fpl_dir:
        return cfg.c2fpl_dir
    train = Path(cfg.train_features or cfg.train_list).resolve()
    return str(Path("ckpt") / cfg.dataset_name / "c2fpl" / f"{train.stem}-{fingerprint(path=str(train))[:8]}")


def check_output_folders(cfg: Config) -> None:
    """Every folder the command writes into is a folder (or can be made one), checked before any work: the run's
    (``ckpt/<dataset>/`` when none is given), the C2FPL stage's and the synthetic dataset's."""
    run = cfg.output_dir or (None if cfg.resume else str(Path("ckpt") / cfg.dataset_name))
    check_outputs({"--output_dir": run, "--c2fpl_dir": cfg.c2fpl_dir, "--synthetic_dir": cfg.synthetic_dir})


def load_aux_labels(path: str, n_snippets: int) -> np.ndarray:
    """``--aux_labels``: (N,) per-snippet 0/1 labels of the training set."""
    if not Path(path).is_file():
        raise InputError(path, "auxiliary labels file not found")
    labels = read_npy(path, mmap_mode=None)
    if labels.shape != (n_snippets,):
        raise InputError(path, f"expected one label per training snippet, shape ({n_snippets},), got {labels.shape}")
    if not np.isin(labels, (0, 1)).all():
        raise InputError(path, "auxiliary labels must be 0 or 1")
    return labels


def model_config(cfg: Config) -> ModelConfig:
    """The model of the configuration; the bank holds ``int(max_seqlen * beta)`` samples of the training batch."""
    return ModelConfig(feature_size=cfg.feature_size, cross_clip=cfg.cross_clip, vitblock_num=cfg.Vitblock_num,
                       lab=cfg.lab, lab_type=cfg.lab_type, delta=cfg.delta, lambdas=cfg.lambdas,
                       aux=AUX_MODEL[cfg.aux], checkpoint_blocks=cfg.checkpoint_blocks,
                       bank_capacity=int(cfg.max_seqlen * cfg.beta))


def build_model(cfg: Config, train: FeatureSource, test: TestSet | None, device: torch.device) -> FRDUVAD:
    """FRDUVAD of the configuration, with its auxiliary C2FPL classifier loaded when ``--aux c2fpl``."""
    try:
        model = FRDUVAD(model_config(cfg))
    except ValueError as e:
        raise InputError("--Vitblock_num", str(e)) from None
    if cfg.aux == "c2fpl":
        ckpt = cfg.aux_ckpt or c2fpl_stage.run_stage(cfg, train, test, c2fpl_dir(cfg), device)["classifier"]
        load_into(model, load_state_dict_file(ckpt), kind="c2fpl", source=ckpt)
    if cfg.compile:  # in place: state_dict keys stay those of the release
        for part in (model.decoder, model.AE, model.scorer, model.scorer_c2fpl):
            part.compile()
    return model.to(device)


def baselines(model: FRDUVAD, cfg: Config, test: TestSet, device: torch.device) -> dict[str, float]:
    """The --select_metric test metric (AUC by default) of the crop-averaged squared-L2 norm and, with a C2FPL
    auxiliary, of that classifier alone."""
    key = SELECT_METRICS[cfg.select_metric][0]
    norms = snippet_norms(test.source)[test.rows]
    result = {"feature norm": test_metrics(norms, test, cfg)[key]}
    if cfg.aux == "c2fpl":
        scores = score_snippets(lambda x: model.scorer_c2fpl(x).squeeze(-1), test.source, test.rows,
                                cfg.eval_batch_size, device)
        result["C2FPL classifier alone"] = test_metrics(scores, test, cfg)[key]
    return result


def selected_metrics(cfg: Config, test: TestSet, device: torch.device, out_dir: Path) -> dict:
    """The test metrics of the improved recipe's ``selected.pkl``, scored as run_test.py scores it (with the fusion
    weight its settings file records)."""
    path = out_dir / SELECTED_FILE
    fusion = float(read_settings(path).get("score_fusion", 0.0))
    model = FRDUVAD(dataclasses.replace(model_config(cfg), score_fusion=fusion))
    load_into(model, load_state_dict_file(path), kind="full", source=path)
    return score_test_set(model.to(device).eval(), cfg, test, device)[1]


def print_summary(progress, base: dict[str, float], cfg: Config, out_dir: Path, selected: dict | None = None) -> None:
    """The --select_metric metric of the baselines and of the best, last and (``selected``: its metrics) selected
    checkpoints, then the last one's other metrics."""
    key, metric = SELECT_METRICS[cfg.select_metric]
    last = progress.history[-1]
    rows = list(base.items())
    rows += [(f"FRD-UVAD, aux {cfg.aux}, best (iteration {progress.best_iteration})", progress.best_value),
             (f"FRD-UVAD, aux {cfg.aux}, last (iteration {last['iteration']})", last[key])]
    if selected is not None:
        rows.append((f"FRD-UVAD, aux {cfg.aux}, selected with no test label", selected[key]))
    width = max(len(name) for name, _ in rows)
    print(f"\n{'test frame ' + metric:<{width}}  value")
    for name, value in rows:
        print(f"{name:<{width}}  {value:.4f}")
    others = [(k, name) for k, name in (("auc_all", "AUC"), ("auc_abn", "AUC_abn"), ("far_all", "FAR"),
                                        ("eer", "EER"), ("ap", "AP")) if k != key]
    label = "last: " + " / ".join(name for _, name in others)
    print(f"{label:<{width}}  " + " / ".join(f"{last[k]:.4f}" for k, _ in others))
    chosen = f"; chosen with no test label: {SELECTED_FILE}" if selected is not None else ""
    print(f"outputs: {out_dir}  (best checkpoint {progress.best_file}{chosen})")


def print_learning_warning(record: dict) -> None:
    """The warning of a run that learned nothing (``record``: its last metrics.jsonl record), if it did not."""
    problems = record.get("learned_nothing")
    if problems:
        print(f"\nwarning: training learned nothing: {'; '.join(problems['findings'])}\n"
              f"likely cause: {problems['likely_cause']} (metrics.jsonl, \"learned_nothing\")")


def checkpoint_to_use(cfg: Config) -> str:
    """The file name of a run's label-free checkpoint: selected.pkl under the improved recipe, else last.pkl."""
    return SELECTED_FILE if cfg.recipe == "improved" else "last.pkl"


def print_summary_without_test(progress, cfg: Config, out_dir: Path) -> None:
    """Why no metric is reported, the last snapshot's losses and pseudo-label counts, and the checkpoint to use."""
    last = progress.history[-1]
    print("\nno test set given: nothing was evaluated, so no AUC is reported and no best checkpoint is kept")
    print("baselines (feature norm, C2FPL classifier alone) skipped: they need a test set")
    print(f"last snapshot, iteration {last['iteration']} (epoch {last['epoch']}): loss {last['loss']:.4f} "
          f"(Lre {last['Lre']:.4f}, Ldi {last['Ldi']:.4f}, Ls {last['Ls']:.4f}); anomalous pseudo labels "
          f"{last['pseudo_labels']} of {last['labels_total']} (reconstruction {last['recon_labels']}, aux "
          f"{cfg.aux} {last['aux_labels']}) since the snapshot before")
    print(f"the checkpoint to use: {out_dir / checkpoint_to_use(cfg)}  (outputs: {out_dir})")


def run_training(cfg: Config, train: FeatureSource, test: TestSet | None, device: torch.device,
                 info: Distributed = Distributed(), extraction: dict | None = None,
                 callbacks: Sequence[Callback] = ()) -> None:
    """FRD-UVAD training into its output folder, the C2FPL stage first when it needs one; ``test`` None: no
    evaluation. ``extraction``: the features' extraction settings, recorded beside every checkpoint; ``callbacks``:
    the trainer's."""
    resume = Path(cfg.resume) if cfg.resume else None
    if resume is not None and resume.is_dir():
        resume = resume / "resume.pt"
    out_dir = resume.parent if resume else Path(cfg.output_dir) if cfg.output_dir else default_output_dir(cfg)
    out_dir = Path(broadcast_object(str(out_dir)))  # one folder for the whole run under torchrun
    if resume is None and info.is_main:
        check_output_dir(out_dir)
    aux_labels = load_aux_labels(cfg.aux_labels, train.n_snippets) if cfg.aux == "frd" else None
    truth = read_npy(cfg.train_truth, mmap_mode=None)[: train.n_snippets] if cfg.train_truth else None
    seed_everything(cfg.seed)
    with main_process_first():
        model = build_model(cfg, train, test, device)
    reseed_for_rank(cfg.seed, info.rank)
    if info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        save_text(out_dir / "config.yaml", dataclasses.replace(cfg, output_dir=str(out_dir)).to_yaml())
    trainer = Trainer(cfg, model.train(), train, test, device, out_dir, aux_labels, truth, info, extraction,
                      callbacks)
    if resume is not None:
        trainer.load_resume(resume)
    progress = trainer.run()
    if info.is_main and test is None:
        print_summary_without_test(progress, cfg, out_dir)
    elif info.is_main:
        selected = selected_metrics(cfg, test, device, out_dir) if cfg.recipe == "improved" else None
        print_summary(progress, baselines(model, cfg, test, device), cfg, out_dir, selected)
    if info.is_main:
        print_learning_warning(progress.history[-1])
    if info.is_main and cfg.report:
        write_training_report(out_dir / "report.html", progress.history, cfg.to_dict(),
                              SELECT_METRICS[cfg.select_metric][0])
    if info.is_main and cfg.dataset_name == "video_demo":
        from video import demo as video_demo  # PyAV and torchvision load only for the video demo
        ckpt = out_dir / checkpoint_to_use(cfg)
        print(f"score any video with it: python run_test.py --video VIDEO.mp4 --ckpt_path {ckpt} "
              f"--weights {video_demo.demo_dir(cfg) / video_demo.STANDIN_WEIGHTS} --output_dir scored\n"
              f"({video_demo.WARNING})")


def main(argv: list[str] | None = None, callbacks: Sequence[Callback] = ()) -> None:
    """The command: ``argv`` (default: the command line); ``callbacks``: the trainer's (``engine.trainer.Callback``),
    for benchmarks and tests that watch a run."""
    argv = sys.argv[1:] if argv is None else argv
    cfg = parse_config(argv, description=__doc__.splitlines()[0])
    if cfg.resume and not cfg.config:
        resume = Path(cfg.resume) / RESUME_FILE if Path(cfg.resume).is_dir() else Path(cfg.resume)
        if not resume.is_file():
            raise InputError(resume, "resume file not found")
        cfg = parse_config([*argv, "--config", str(resume.parent / "config.yaml")],
                           description=__doc__.splitlines()[0], overrides={"max_iters": None})
    check_output_folders(cfg)
    if launched_by_torchrun() and cfg.stage != "train":
        raise InputError("--stage", f"{cfg.stage} runs in one process; torchrun is for --stage train")
    info, device = setup(cfg.device, cfg.max_seqlen)
    log = print if info.is_main else lambda *args: None
    failed = False
    try:
        if cfg.stage == "data":
            log("configuration:\n" + cfg.summary())
            return write_synthetic(cfg)
        check_train_given(cfg)
        with main_process_first():
            cfg = prepare(with_demo_files(cfg), cfg.given)
        train = open_train(cfg)
        test = open_test(cfg) if has_test_set(cfg) else None
        extraction = extraction_settings(cfg.train_list or cfg.train_features)
        log("configuration:\n" + cfg.summary())
        log(f"train: {train.n_snippets} snippets x {train.n_crops} crops x {train.feature_size} ({train.path})")
        if extraction is not None:
            log(f"extracted with: {', '.join(f'{k} {v}' for k, v in extraction.items())}")
        if test is not None:
            log(f"test:  {test.n_snippets} snippets, {test.labels.size} frames ({test.source.path})")
        elif cfg.stage == "train":
            log(f"test:  none given: training without evaluation (no AUC, no best checkpoint; "
                f"{checkpoint_to_use(cfg)} is the one)")
        if cfg.stage == "c2fpl":
            out_dir = cfg.output_dir or c2fpl_dir(cfg)
            c2fpl_stage.run_stage(cfg, train, test, out_dir, device)
            save_text(Path(out_dir) / "config.yaml", cfg.to_yaml())
            return
        run_training(cfg, train, test, device, info, extraction, callbacks)
    except BaseException:
        failed = True
        raise
    finally:
        teardown(synchronise=not failed)  # after an error the other ranks may never arrive


if __name__ == "__main__":
    try:
        main()
    except (InputError, CheckpointError, TrainingError) as e:
        sys.exit(f"error: {e}")
    except KeyboardInterrupt as e:  # Interrupted says what was kept and how to continue
        message = str(e) if isinstance(e, Interrupted) else "interrupted"
        if message:
            print(message, file=sys.stderr)
        sys.exit(130)
