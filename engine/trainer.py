"""The FRD-UVAD training loop: steps, snapshots, checkpoints, resume.

The release's loop: AdamW (lr, betas 0.9/0.95), shuffled batches of ``max_seqlen`` windows,
evaluation on the test set every ``snapshot`` iterations and at the end, the best test AUC
selecting ``best_ckpt_<auc>.pkl``. The release's evaluation leaves the model in eval mode for the
rest of training (no dropout, no disruption after the first snapshot); that is the default here,
``--keep_train_mode True`` returns to train mode after each evaluation instead.

Under ``--recipe improved`` each snapshot also writes ``selected.pkl``, the checkpoint chosen with no test label:
last.pkl's weights scored ``(1 − w)·Scorer + w·C2FPL classifier``, w from the two scorers' rank agreement on a
sample of training snippets (``--score_fusion``, or ``--disagree_fusion`` below ``--agreement``), or by the C2FPL
classifier alone when the Scorer learned nothing (``--aux_fallback``; ``scorer_check``, ``fusion_weight``), with
the scorer's weights replaced by their exponential moving average (``ScorerAverage``) under ``--ema_decay``;
``best_ckpt_*.pkl`` is still kept, for comparison.

Without a test set nothing is evaluated: each snapshot logs the losses and pseudo-label counts, saves
``last.pkl`` and resume.pt, and switches to eval mode as an evaluation would, so that the weights are
those of the same run with a test set.
"""
import copy
import glob
import json
import os
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from dataset.features import FeatureSource
from dataset.ground_truth import TestSet
from dataset.windows import make_loader
from engine.global_batch import GlobalBatchStatistics, global_batch_means
from engine.interrupt import Interrupted, sigint_held
from engine.scoring import score_snippets, scorer, test_metrics
from model.checkpoint import model_settings
from model.frd import FRDUVAD, BatchStatistics
from utils.checkpoint import remove_checkpoint, save_checkpoint
from utils.config import SELECT_METRICS, Config
from utils.device import autocast
from utils.distributed import Distributed, broadcast_object, gather_objects, is_distributed, sum_floats
from utils.errors import InputError
from utils.io import atomic_open, save_text
from utils.learning import feature_scale, learning_problems
from utils.metrics import precision_recall
from utils.progress import progress_bar

RESUME_FILE = "resume.pt"
SELECTED_FILE = "selected.pkl"  # the improved recipe's choice, made with no test label
CHECK_SNIPPETS = 8192  # the training snippets (a seeded sample) on which the improved recipe checks the Scorer
SCALE_SNIPPETS = 512  # of them, spread over the sample, on which the end of training measures the features' scale


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss); the last good checkpoints are kept."""


@dataclass
class TrainingProgress:
    """Where training stands; saved with every snapshot so that ``--resume`` continues exactly.

    ``best_value``: the best value of the ``--select_metric`` metric (AUC by default).
    """

    iteration: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_value: float = -1.0
    best_iteration: int = 0
    best_file: str | None = None
    history: list[dict] = field(default_factory=list)

    @classmethod
    def from_state(cls, state: dict) -> "TrainingProgress":
        """From resume.pt's ``progress``; files written before ``best_value`` was named so call it ``best_auc``."""
        state = dict(state)
        if "best_auc" in state:
            state["best_value"] = state.pop("best_auc")
        return cls(**state)


class Callback:
    """Fixed points of a run where a caller (a benchmark, a test) may look at the trainer or stop it; each method
    does nothing here. A KeyboardInterrupt raised from one is a Ctrl-C at that point."""

    def on_step_end(self, trainer: "Trainer") -> None:
        """After an optimiser step and its counters (``trainer.progress.iteration`` is the step's number)."""

    def on_evaluation_start(self, trainer: "Trainer") -> None:
        """Before an evaluation scores the test set (with no test set: before it sums the losses)."""

    def on_evaluation_end(self, trainer: "Trainer", record: dict) -> None:
        """Once the evaluation's ``record`` is kept: the checkpoints, the logs and resume.pt are written."""


class Interval:
    """Sums over the steps since the last evaluation, for metrics.jsonl (kept on the device: no sync per step)."""

    LOSSES = ("loss", "Lre", "Ldi", "Ls")
    LABELS = ("recon_labels", "aux_labels", "pseudo_labels")

    def __init__(self, truth: torch.Tensor | None = None) -> None:
        self.truth, self.steps, self.labels_total = truth, 0, 0
        self.finite: torch.Tensor | bool = True
        self.last: dict[str, torch.Tensor] = {}
        self.sums: dict[str, torch.Tensor | float] = dict.fromkeys(self.LOSSES + self.LABELS + ("hits", "true"), 0.0)

    def add(self, out, rows: torch.Tensor) -> None:
        self.steps += 1
        self.labels_total += out.pseudo_labels.numel()
        self.finite = torch.isfinite(out.loss.detach()) & self.finite
        self.last = {name: getattr(out, name).detach() for name in ("Lre", "Ldi", "Ls")}
        for name in self.LOSSES:
            self.sums[name] = self.sums[name] + getattr(out, name).detach()
        for name in self.LABELS:
            self.sums[name] = self.sums[name] + getattr(out, name).sum()
        if self.truth is not None:
            true = self.truth[rows]
            self.sums["hits"] = self.sums["hits"] + (out.pseudo_labels * true).sum()
            self.sums["true"] = self.sums["true"] + true.sum()

    def summary(self) -> dict:
        """Mean losses, label counts and, with true labels, the pseudo labels' precision and recall (over all
        processes under torchrun: a collective call)."""
        names = list(self.sums)
        totals = sum_floats([float(self.sums[k]) for k in names] + [self.steps, self.labels_total])
        sums = dict(zip(names, totals))
        steps, labels_total = totals[-2:]
        result = {name: sums[name] / max(steps, 1) for name in self.LOSSES}
        result.update({name: int(sums[name]) for name in self.LABELS}, labels_total=int(labels_total))
        if self.truth is not None:
            quality = precision_recall(sums["hits"], sums["pseudo_labels"], sums["true"])
            result.update(pseudo_precision=quality["precision"], pseudo_recall=quality["recall"])
        return result

    def mean_loss(self) -> float:
        return float(self.sums["loss"]) / max(self.steps, 1)

    def copy(self) -> "Interval":
        """A copy that later ``add`` calls leave as it is: ``add`` replaces the sums' tensors, never changes them
        in place."""
        twin = copy.copy(self)
        twin.sums, twin.last = dict(self.sums), dict(self.last)
        return twin

    def state(self) -> dict:
        """The sums so far (tensors on the CPU), for resume.pt."""
        return {"steps": self.steps, "labels_total": self.labels_total, "finite": _to(self.finite, "cpu"),
                "last": {k: v.cpu() for k, v in self.last.items()},
                "sums": {k: _to(v, "cpu") for k, v in self.sums.items()}}

    def load(self, state: dict, device: torch.device) -> None:
        """Restore ``state()``: the next ``summary`` is that of an interval never stopped."""
        self.steps, self.labels_total = state["steps"], state["labels_total"]
        self.finite = _to(state["finite"], device)
        self.last = {k: v.to(device) for k, v in state["last"].items()}
        self.sums = {k: _to(v, device) for k, v in state["sums"].items()}


class ScorerAverage:
    """The improved recipe's exponential moving average of the scorer's weights: at each iteration after ``start``,
    average = decay · average + (1 − decay) · weights, the first one taken as it is."""

    def __init__(self, scorer: nn.Module, decay: float, start: int) -> None:
        self.start = start
        self.average = AveragedModel(scorer, multi_avg_fn=get_ema_multi_avg_fn(decay))

    def update(self, scorer: nn.Module, iteration: int) -> None:
        """After the optimiser step that reached ``iteration``."""
        if iteration > self.start:
            self.average.update_parameters(scorer)

    def scorer_state(self) -> dict[str, torch.Tensor] | None:
        """The averaged weights under the full state dict's keys (``scorer.*``); None before the first update."""
        if not int(self.average.n_averaged):
            return None
        return {f"scorer.{k}": v for k, v in self.average.module.state_dict().items()}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.average.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.average.load_state_dict(state)


def scorer_check(model: FRDUVAD, source: FeatureSource, device: torch.device, amp: str, seed: int,
                 agreement: bool = False) -> dict:
    """The label-free check of the Scorer (the improved recipe's fallback and fusion weight, the end of training's
    learning check) on a seeded sample of ``CHECK_SNIPPETS`` training snippets (``check_rows``): the share it flags
    (score ≥ 0.5), the spread of its scores, and ``learned_nothing`` when it flags none of them (it was trained to
    flag its pseudo labels; flagging nothing, it ranks by noise); with ``agreement``, also ``spearman``, the rank
    correlation of its scores with the C2FPL classifier's on the sample (None where either is constant)."""
    rows = check_rows(source.n_snippets, seed)
    was_training = model.training
    model.eval()
    try:
        def score(fusion: float) -> np.ndarray:
            def forward(x: torch.Tensor) -> torch.Tensor:
                with autocast(device, amp):
                    return model.score(x, fusion=fusion)
            return score_snippets(forward, source, rows, device=device)
        scores = score(0.0)
        classifier = score(1.0) if agreement else None
    finally:
        model.train(was_training)
    flagged = float(np.mean(scores >= 0.5))
    check = {"snippets": int(len(rows)), "flagged": round(flagged, 6), "spread": round(float(np.std(scores)), 6),
             "learned_nothing": flagged == 0.0}
    if agreement:
        rho = float(spearmanr(scores, classifier).statistic)
        check["spearman"] = None if np.isnan(rho) else round(rho, 6)
    return check


def fusion_weight(check: dict, score_fusion: float, disagree_fusion: float, agreement: float,
                  aux_fallback: bool) -> float:
    """selected.pkl's w from ``scorer_check``'s record: ``disagree_fusion`` (when set) where the two scorers'
    Spearman correlation is below ``agreement`` or undefined, 1 under ``aux_fallback`` where the Scorer learned
    nothing, else ``score_fusion``."""
    w = score_fusion
    if disagree_fusion and (check["spearman"] is None or check["spearman"] < agreement):
        w = disagree_fusion
    if aux_fallback and check["learned_nothing"]:
        w = 1.0
    return w


def check_rows(n_snippets: int, seed: int) -> np.ndarray:
    """The sorted rows of the seeded sample of ``CHECK_SNIPPETS`` training snippets (all of them when fewer)."""
    rows = np.arange(n_snippets)
    if len(rows) > CHECK_SNIPPETS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, CHECK_SNIPPETS, replace=False))
    return rows


def _to(value: torch.Tensor | float | bool, device: torch.device | str) -> torch.Tensor | float | bool:
    return value.to(device) if torch.is_tensor(value) else value


def default_output_dir(cfg: Config) -> Path:
    """``ckpt/<dataset>/<timestamp>/``, a new folder for every run."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path("ckpt") / cfg.dataset_name / stamp
    n = 1
    while path.exists():
        n += 1
        path = Path("ckpt") / cfg.dataset_name / f"{stamp}-{n}"
    return path


def check_output_dir(out_dir: Path) -> None:
    """A run never writes over another run's files."""
    taken = [p for p in ("last.pkl", SELECTED_FILE, "metrics.jsonl", RESUME_FILE) if (out_dir / p).exists()]
    taken += [Path(p).name for p in glob.glob(str(out_dir / "best_ckpt_*.pkl"))]
    if taken:
        raise InputError(out_dir, f"already holds a run ({', '.join(taken)}); choose another --output_dir "
                                  f"or continue it with --resume {out_dir / RESUME_FILE}")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Python, numpy and torch RNG states in types that ``torch.load(weights_only=True)`` accepts."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    numpy_state = [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss]
    return {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Trainer:
    """Owns the optimiser, the loader and the output folder of one run.

    Under torchrun the trained parts' gradients are averaged by DDP (the frozen parts are left out), the model's
    batch statistics and bank are those of the global batch (``GlobalBatchStatistics``), and rank 0 writes the files.
    """

    def __init__(self, cfg: Config, model: FRDUVAD, train: FeatureSource, test: TestSet | None, device: torch.device,
                 out_dir: Path, aux_labels: np.ndarray | None = None, truth: np.ndarray | None = None,
                 dist: Distributed = Distributed(), extraction: dict | None = None,
                 callbacks: Sequence[Callback] = ()) -> None:
        """``test``: None trains without evaluations; ``extraction``: the features' extraction settings, recorded
        beside every checkpoint; ``callbacks``: called at the run's fixed points, in order."""
        self.cfg, self.model, self.test, self.device, self.out_dir = cfg, model, test, device, Path(out_dir)
        self.dist, self.callbacks = dist, list(callbacks)
        self.net = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None,
                                           forward_sync_buffers=False) if is_distributed() else model
        self.statistics = GlobalBatchStatistics() if is_distributed() else BatchStatistics()
        recorded = {"extraction": extraction} if extraction else {}
        self.settings = model_settings(model.config, train.n_crops, **recorded)  # beside every checkpoint, <name>.yaml
        self.train_source = train
        self.aux_labels = None if aux_labels is None else torch.from_numpy(aux_labels.astype(np.float32)).to(device)
        self.truth = None if truth is None else torch.from_numpy(truth.astype(np.float32)).to(device)
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=(cfg.adamw_beta1, cfg.adamw_beta2))
        self.loader = make_loader(train, cfg.cross_clip, cfg.max_seqlen, cfg.seed, cfg.within_video,
                                  cfg.num_workers, pin_memory=device.type == "cuda", rank=dist.rank,
                                  world_size=dist.world_size)
        self.bank_rng = torch.Generator(device=device).manual_seed(cfg.seed)
        self.average = None
        if cfg.recipe == "improved" and cfg.ema_decay:
            self.average = ScorerAverage(model.scorer, cfg.ema_decay, int(cfg.ema_start * self.total_iterations))
        self.progress = TrainingProgress()
        self.interval = Interval(self.truth)
        self.boundary = self.capture_boundary()

    @property
    def total_iterations(self) -> int:
        total = self.cfg.max_epoch * len(self.loader)
        return min(total, self.cfg.max_iters) if self.cfg.max_iters else total

    def capture_boundary(self) -> dict:
        """What a step changes besides the weights and the optimiser (loss sums, bank, random states): captured at
        each step boundary, so that a Ctrl-C in the middle of a step can drop it (``restore_boundary``)."""
        return {"interval": self.interval.copy(), "bank": self.model.bank.samples,
                "bank_rng": self.bank_rng.get_state(), "rng": rng_state()}

    def restore_boundary(self, boundary: dict) -> None:
        self.interval, self.model.bank.samples = boundary["interval"], boundary["bank"]
        self.bank_rng.set_state(boundary["bank_rng"])
        set_rng_state(boundary["rng"])

    def step(self, batch: dict) -> None:
        """One optimiser step and the progress counters, together (a Ctrl-C during them takes effect after them);
        no host synchronisation on a GPU except the bank's size and ``check_finite``."""
        x = batch["features"].to(self.device, non_blocking=True)
        rows = batch["rows"].to(self.device, non_blocking=True)
        aux = None if self.aux_labels is None else self.aux_labels[rows]
        try:
            with autocast(self.device, self.cfg.amp):
                out = self.net(x, aux, self.bank_rng, self.statistics)
        except RuntimeError:  # the BCE refuses NaN scores
            if all(torch.isfinite(p).all() for p in self.model.parameters()):
                raise
            raise TrainingError(f"non-finite loss at iteration {self.progress.iteration}: the weights hold NaN or "
                                f"Inf; the last good checkpoints in {self.out_dir} are kept") from None
        out = global_batch_means(out, self.model)
        self.interval.add(out, rows)
        if self.device.type == "cpu":  # free here; on a GPU it waits for the step, so it runs every 10 steps
            self.check_finite()
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        with sigint_held():
            self.optimizer.step()
            p = self.progress
            p.iteration += 1
            p.batch_in_epoch += 1
            if self.average is not None:
                self.average.update(self.model.scorer, p.iteration)
            if p.batch_in_epoch == len(self.loader):
                p.epoch, p.batch_in_epoch = p.epoch + 1, 0
            self.boundary = self.capture_boundary()

    def check_finite(self) -> None:
        """Stop with a one-line error if a loss since the last evaluation was NaN or Inf (the last step's losses)."""
        if not bool(self.interval.finite):
            losses = ", ".join(f"{name} {float(v):.4g}" for name, v in self.interval.last.items())
            raise TrainingError(f"non-finite loss at iteration {self.progress.iteration} ({losses}); the last good "
                                f"checkpoints in {self.out_dir} are kept")

    def evaluate(self) -> dict:
        """The record of this snapshot, the same on every process: the test metrics (with a test set), the mean
        losses and label counts since the last snapshot, the bank's size. Changes nothing: a Ctrl-C here loses
        nothing."""
        self.check_finite()
        for callback in self.callbacks:
            callback.on_evaluation_start(self)
        summary = self.interval.summary()
        scores = None if self.test is None else self.test_scores()
        record, p = None, self.progress
        if self.dist.is_main:
            metrics = {}
            if self.test is not None:
                metrics = test_metrics(scores, self.test, self.cfg)
            record = {"iteration": p.iteration, "epoch": p.epoch, **metrics, **summary,
                      "bank_size": len(self.model.bank)}
            problems = self.learning_check(record) if p.iteration >= self.total_iterations else None
            if problems is not None:
                record["learned_nothing"] = problems
        return broadcast_object(record)

    def learning_check(self, record: dict) -> dict | None:
        """At the end of training (``record``: the last snapshot's): why the run learned nothing, when it did
        (``learning_problems``, from the records, ``scorer_check`` and the features' scale); else None."""
        check = scorer_check(self.model, self.train_source, self.device, self.cfg.amp, self.cfg.seed)
        rows = check_rows(self.train_source.n_snippets, self.cfg.seed)
        rows = rows[:: -(-len(rows) // SCALE_SNIPPETS)]
        return learning_problems([*self.progress.history, record], check,
                                 feature_scale(self.train_source.gather(rows)), self.train_source.feature_size)

    def test_scores(self) -> np.ndarray | None:
        """``(N_test,)`` scores of the model in eval mode on rank 0 (each process scores its share), None on the
        other ranks."""
        was_training = self.model.training
        self.model.eval()
        try:
            return score_snippets(scorer(self.model, self.device, self.cfg.amp), self.test.source, self.test.rows,
                                  self.cfg.eval_batch_size, self.device, sharded=True)
        finally:
            self.model.train(was_training)

    def commit_evaluation(self, record: dict) -> None:
        """Keep the snapshot's ``record``, whole (a Ctrl-C takes effect after it): a new interval, the release's
        eval mode from now on (unless ``--keep_train_mode``), the checkpoints, the logs and resume.pt."""
        with sigint_held():
            self.interval = Interval(self.truth)
            if not self.cfg.keep_train_mode:
                self.model.eval()
            self.checkpoint(record)
            self.log(record)
            rng = gather_objects(rng_state())
            if self.dist.is_main:
                self.save_resume(rng)
            self.boundary = self.capture_boundary()

    def checkpoint(self, record: dict) -> None:
        """``last.pkl``, ``selected.pkl`` (the improved recipe) and, with a test set, ``best_ckpt_<value>.pkl`` when
        ``record`` is the best so far (replacing the previous best), each with its settings (``<name>.yaml``) beside
        it; rank 0 writes them."""
        p = self.progress
        key = SELECT_METRICS[self.cfg.select_metric][0]
        previous, improved = p.best_file, self.test is not None and record[key] > p.best_value
        if improved:
            p.best_value, p.best_iteration = float(record[key]), p.iteration
            p.best_file = f"best_ckpt_{p.best_value:.4f}.pkl"
        if not self.dist.is_main:
            return
        state = self.model.state_dict()
        if improved:
            save_checkpoint(self.out_dir / p.best_file, state, self.settings)
            if previous and previous != p.best_file:
                remove_checkpoint(self.out_dir / previous)
        save_checkpoint(self.out_dir / "last.pkl", state, self.settings)
        if self.cfg.recipe == "improved":
            save_checkpoint(self.out_dir / SELECTED_FILE, self.selected_state(state), self.selected_settings())

    def selected_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The improved recipe's checkpoint: ``state`` (the weights now) with the averaged scorer, once there is
        one; no test label enters it."""
        averaged = None if self.average is None else self.average.scorer_state()
        return state if averaged is None else {**state, **averaged}

    def selected_settings(self) -> dict:
        """selected.pkl's settings: last.pkl's with ``score_fusion``; under ``--disagree_fusion`` that weight where the
        two scorers' rank correlation on the training sample is below ``--agreement`` (or undefined); under
        ``--aux_fallback`` 1 (the C2FPL classifier alone) where the Scorer learned nothing; the check recorded
        (``fallback``)."""
        cfg = self.cfg
        if not (cfg.aux_fallback or cfg.disagree_fusion):
            return {**self.settings, **({"score_fusion": cfg.score_fusion} if cfg.score_fusion else {})}
        check = scorer_check(self.model, self.train_source, self.device, cfg.amp, cfg.seed,
                             agreement=bool(cfg.disagree_fusion))
        w = fusion_weight(check, cfg.score_fusion, cfg.disagree_fusion, cfg.agreement, cfg.aux_fallback)
        return {**self.settings, **({"score_fusion": w} if w else {}), "fallback": check}

    def log(self, record: dict) -> None:
        """``record`` into the history, metrics.jsonl and, with a test set, result.txt; rank 0 writes the files."""
        self.progress.history.append({k: v for k, v in record.items() if k != "per_video_auc"})
        if self.dist.is_main:
            with open(self.out_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            if self.test is not None:
                save_text(self.out_dir / "result.txt", self.result_text())

    def result_text(self) -> str:
        p = self.progress
        lines = [f"iteration {h['iteration']}\tepoch {h['epoch']}\tAUC {h['auc_all']:.4f}\tAUC_abn {h['auc_abn']:.4f}"
                 f"\tFAR {h['far_all']:.4f}\tAP {h['ap']:.4f}" for h in p.history]
        name = SELECT_METRICS[self.cfg.select_metric][1]
        best = f"best {name} {p.best_value:.4f} at iteration {p.best_iteration} ({p.best_file})"
        return "\n".join(lines + [best]) + "\n"

    def save_resume(self, rng: list[dict]) -> None:
        """``rng``: every process's random states, in rank order."""
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "bank": self.model.bank.state().cpu(), "bank_rng": self.bank_rng.get_state(),
                 "training_mode": self.model.training, "rng": rng[0], "rng_ranks": rng,
                 "progress": asdict(self.progress), "interval": self.interval.state(), "config": self.cfg.to_dict(),
                 "average": None if self.average is None else self.average.state_dict()}
        with atomic_open(self.out_dir / RESUME_FILE) as f:
            torch.save(state, f)

    def load_resume(self, path: str | os.PathLike) -> None:
        if not os.path.isfile(path):
            raise InputError(path, "resume file not found")
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state["model"])
        self.model.bank.load(state["bank"].to(self.device))
        self.model.train(state["training_mode"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.bank_rng.set_state(state["bank_rng"])
        ranks = state.get("rng_ranks", [state["rng"]])
        set_rng_state(ranks[self.dist.rank] if len(ranks) == self.dist.world_size else state["rng"])
        self.progress = TrainingProgress.from_state(state["progress"])
        average = state.get("average")
        if self.average is not None and average is not None and self.progress.iteration > self.average.start:
            self.average.load_state_dict(average)  # else it starts later in this run's schedule: a run stopped by
            # --max_iters and resumed to its --max_epoch starts its average as if it had never stopped
        if "interval" in state and self.dist.is_main:  # rank 0 only: the sums are summed over processes
            self.interval.load(state["interval"], self.device)
        self.boundary = self.capture_boundary()

    def run(self) -> TrainingProgress:
        """Train to ``max_epoch`` (or ``max_iters``); a snapshot (evaluation, logs, checkpoints) every ``snapshot``
        iterations and at the end.

        Ctrl-C: resume.pt gets the state after the last completed step (a step cut short is dropped) and
        ``Interrupted`` says how to continue.
        """
        p, total = self.progress, self.total_iterations
        last_auc = p.history[-1].get("auc_all", float("nan")) if p.history else float("nan")
        bar = progress_bar(total=total, initial=p.iteration, desc="train", unit="it", dynamic_ncols=True,
                           disable=not self.dist.is_main)

        def due() -> bool:
            return p.iteration % self.cfg.snapshot == 0 or p.iteration == total

        def evaluation() -> float:
            record = self.evaluate()
            self.commit_evaluation(record)
            for callback in self.callbacks:
                callback.on_evaluation_end(self, record)
            auc = record.get("auc_all", float("nan"))
            bar.set_postfix(self.postfix(record["loss"], auc))
            return auc

        try:
            if p.iteration and due() and (not p.history or p.history[-1]["iteration"] != p.iteration):
                last_auc = evaluation()  # a Ctrl-C cut this evaluation short
            # An iterator draws the loader's seed from torch's random state (with persistent workers only the
            # first one); a state saved inside an epoch was taken after that draw, so it is not drawn again.
            redraw = p.batch_in_epoch > 0 or (self.loader.persistent_workers and p.epoch > 0)
            while p.iteration < total and p.epoch < self.cfg.max_epoch:
                self.loader.sampler.set_epoch(p.epoch, p.batch_in_epoch)
                with torch.random.fork_rng(devices=[], enabled=redraw):
                    batches = iter(self.loader)
                redraw = False
                for batch in batches:
                    self.step(batch)
                    for callback in self.callbacks:
                        callback.on_step_end(self)
                    bar.update(1)
                    if due():
                        last_auc = evaluation()
                    elif p.iteration % 10 == 0:
                        self.check_finite()
                        bar.set_postfix(self.postfix(self.interval.mean_loss(), last_auc))
                    if p.iteration >= total:
                        break
            if not p.history or p.history[-1]["iteration"] != p.iteration:
                evaluation()
        except KeyboardInterrupt:
            raise Interrupted(self.keep_interrupted()) from None
        finally:
            bar.close()
        return p

    def postfix(self, loss: float, auc: float) -> dict[str, str]:
        """The progress bar's mean loss and, with a test set, the last test AUC."""
        return {"loss": f"{loss:.4f}"} | ({} if self.test is None else {"auc": f"{auc:.4f}"})

    def keep_interrupted(self) -> str:
        """After a Ctrl-C: resume.pt of the last step boundary, and the line saying how to continue ('' on ranks
        other than 0). Under torchrun nothing is written (saving needs every process): the last evaluation's
        resume.pt stays."""
        p, path = self.progress, self.out_dir / RESUME_FILE
        if not self.dist.is_main:
            return ""
        arguments = f"main.py --resume {path}" + (f" --max_iters {self.cfg.max_iters}" if self.cfg.max_iters else "")
        if is_distributed():
            if not path.is_file():
                return f"interrupted at iteration {p.iteration}: nothing saved yet (no evaluation reached)"
            return (f"interrupted at iteration {p.iteration}: {path} holds the state of the last evaluation; continue "
                    f"with: torchrun --nproc_per_node {self.dist.world_size} {arguments}")
        with sigint_held(drop=True):
            self.restore_boundary(self.boundary)
            self.save_resume([self.boundary["rng"]])
        return f"interrupted at iteration {p.iteration}: saved {path}; continue with: python {arguments}"
