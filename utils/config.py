"""One configuration for every command: built-in defaults < configs/<dataset>.yaml < --config < command line.

The release's flags keep their names and their ``--lab False`` style booleans; our
additions (data paths, device, stages) are plain argparse flags. Each setting carries its
help sentence, its help group and its allowed values with it (``field(metadata=...)``). The
resolved values travel as one :class:`Config` built once by :func:`parse_config`.
"""
import argparse
import dataclasses
import shutil
import sys
import textwrap
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, NoReturn, Sequence

import yaml

from utils.errors import InputError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
DATASET_ALIASES = {"ucf": "ucfcrime", "ucf-crime": "ucfcrime", "ucf_crime": "ucfcrime",
                   "sh": "shanghaitech", "shanghai": "shanghaitech", "shanghaitech": "shanghaitech",
                   "avenue": "avenue", "cuhk": "avenue", "ucfcrime": "ucfcrime", "synthetic": "synthetic",
                   "xdviolence": "xdviolence", "xd": "xdviolence", "xd-violence": "xdviolence",
                   "xd_violence": "xdviolence", "custom": "custom", "video_demo": "video_demo", "demo": "video_demo"}
# --select_metric: the metrics.jsonl key and the printed name of each checkpoint-selecting test metric.
SELECT_METRICS = {"auc": ("auc_all", "AUC"), "ap": ("ap", "AP")}
# --recipe: the settings each recipe changes from the built-in and configs/<dataset>.yaml defaults.
RECIPES = {"release": {},
           "improved": {"keep_train_mode": False, "score_fusion": 0.001, "disagree_fusion": 0.1, "agreement": 0.75,
                        "aux_fallback": True}}
COMMANDS = ("train", "test")  # main.py, run_test.py
# Help groups in the order --help lists them: (title, description, shown by run_test.py).
GROUPS = {
    "data": ("data", "Features and frame ground truth.", True),
    "synthetic": ("synthetic dataset", "The generated stand-in dataset, used for --dataset_name synthetic when no "
                                       "data path is given.", True),
    "model": ("model", "The reconstructor and the latent anomaly bank.", False),
    "training": ("training", None, False),
    "aux": ("auxiliary scorer", "A second opinion on the training snippets: its 0/1 labels gate the "
                                "reconstructor's pseudo labels.", False),
    "recipe": ("recipe", "How the checkpoint to use is chosen. release (the default, as published): best_ckpt_*.pkl "
                         "is the best of many test evaluations, chosen with the test labels. improved: selected.pkl "
                         "is chosen with no test label, and the recipe brings its own defaults, which replace "
                         "configs/NAME.yaml's (--config and flags still override them): "
                         + ", ".join(f"--{k} {v}" for k, v in RECIPES["improved"].items())
                         + " (the fusion and the fallback only with --aux c2fpl; chosen on synthetic variants kept "
                           "apart from those it is reported on; docs/results.md).", False),
    "evaluation": ("evaluation", None, True),
    "performance": ("performance", None, True),
}


def setting(default: Any, help: str, group: str, *, choices: tuple[str, ...] | None = None,
            metavar: str | None = None, test: bool | None = None, only: str | None = None) -> Any:
    """A Config field with its help sentence, help group and allowed values. ``test``: whether run_test.py's
    --help lists it (default: its group's); ``only``: why values outside ``choices`` are refused."""
    assert group in GROUPS, group
    shown = GROUPS[group][2] if test is None else test
    return field(default=default, metadata={"help": help, "group": group, "choices": choices, "metavar": metavar,
                                            "commands": COMMANDS if shown else ("train",), "only": only})


@dataclass
class Config:
    """Every setting of training, testing and data preparation, with the release's defaults.

    The release's flags keep the release's spelling: dataset_name, feature_pretrain_model, feature_modal,
    cross_clip, lab, lab_type, beta, delta, Vitblock_num, max_seqlen, max_epoch, Lambda, lr, snapshot, seed,
    feature_size, ckpt_path.
    """

    # Data.
    dataset_name: str = setting(
        "synthetic", "The dataset: synthetic, ucfcrime, shanghaitech, avenue, xdviolence (aliases: ucf, sh, cuhk, "
                     "xd), custom (your own training features, e.g. from extract_features.py, with the paper's "
                     "model settings) or video_demo (generated videos, extracted, then trained on: the path from "
                     "video files, with no download); its settings come from configs/NAME.yaml.", "data",
        metavar="NAME")
    config: str | None = setting(
        None, "A YAML file of settings (name: value); it overrides configs/NAME.yaml and flags override it.",
        "data", metavar="FILE")
    feature_pretrain_model: str = setting(
        "i3d", "The network the features come from; this implementation supports I3D features only.", "data",
        choices=("i3d",), only="this implementation supports RGB I3D features only")
    feature_modal: str = setting(
        "rgb", "The modality of the features; this implementation supports RGB features only.", "data",
        choices=("rgb",), only="this implementation supports RGB I3D features only")
    feature_size: int = setting(
        2048, "Length of one snippet's feature vector. Your own files (no --dataset_name, or --dataset_name "
              "custom) decide it when not given; run_test.py reads it off the checkpoint; a value given here that "
              "disagrees is an error.",
        "data", metavar="D")
    train_features: str | None = setting(
        None, "Training features, all videos concatenated: an (N, crops, D) .npy, read memory-mapped.", "data",
        metavar="FILE")
    train_ranges: str | None = setting(
        None, "The training videos' [from, to) snippet ranges: a (V, 2) int64 .npy.", "data", metavar="FILE")
    train_list: str | None = setting(
        None, "Per-video layout instead: a list file naming one feature .npy per training video.", "data",
        metavar="FILE")
    test_features: str | None = setting(
        None, "Test features, all videos concatenated: an (N, crops, D) .npy.", "data", metavar="FILE")
    test_gt: str | None = setting(
        None, "Frame ground truth of the test set: a .npy of 16 labels per snippet, or a pickle of video name "
              "to frame labels.", "data", metavar="FILE")
    test_ranges: str | None = setting(
        None, "The test videos' snippet ranges: a (V, 2) int64 .npy; enables per-video metrics and plots.",
        "data", metavar="FILE")
    test_list: str | None = setting(
        None, "Per-video layout instead: a list file naming one feature .npy per test video.", "data",
        metavar="FILE")
    feature_root: str | None = setting(
        None, "The folder that relative paths in --train_list and --test_list start from.", "data", metavar="DIR")
    gt_mismatch: str = setting(
        "error", "When the ground truth is not 16 frames per test snippet: error, or truncate both to the "
                 "shorter.", "data", choices=("error", "truncate"))
    train_truth: str | None = setting(
        None, "True per-snippet labels of the training set (.npy), for diagnostics only: reported, never "
              "trained on.", "data", metavar="FILE", test=False)
    # The synthetic dataset (dataset_name synthetic); its feature size is feature_size.
    synthetic_dir: str | None = setting(
        None, "Where the synthetic dataset is generated on first use and reused afterwards (default: one folder "
              "per specification, data/synthetic/<feature size, crops, videos, seed, scale>).",
        "synthetic", metavar="DIR")
    synth_seed: int = setting(0, "Random seed of the synthetic dataset.", "synthetic", metavar="N")
    synth_train_videos: int = setting(280, "Number of training videos of the synthetic dataset.", "synthetic",
                                      metavar="N")
    synth_test_videos: int = setting(140, "Number of test videos of the synthetic dataset.", "synthetic",
                                     metavar="N")
    synth_crops: int = setting(10, "Crops per snippet of the synthetic dataset (the release's features have 10).",
                               "synthetic", metavar="N")
    synth_length_scale: float = setting(
        0.1, "Video lengths of the synthetic dataset as a fraction of UCF-Crime's training lengths.", "synthetic",
        metavar="X")
    synth_anomalous_fraction: float = setting(
        0.5, "Fraction of the synthetic dataset's videos (training and test) that hold anomalies.", "synthetic",
        metavar="X")
    synth_anomaly_types: str = setting(
        "all", "Anomaly types of the synthetic dataset, comma separated out of appearance, motion, energy, "
               "scene_mix, burst (all: these five), surge (extra energy) and drift (off the normal features at "
               "the same norm).", "synthetic", metavar="NAMES")
    synth_max_length: int = setting(160, "Longest video of the synthetic dataset, in snippets (longer ones are cut).",
                                    "synthetic", metavar="N")
    synth_event_share: str = setting(
        "0.1,0.45", "Share of an anomalous synthetic video's frames its events cover: low,high.", "synthetic",
        metavar="LO,HI")
    # The model (the release's flags).
    Vitblock_num: int = setting(
        8, "Transformer blocks of the reconstructor, 0 for the plain autoencoder (cross_clip 4: 0, 1, 2, 4, 6 "
           "or 8).", "model", metavar="N")
    cross_clip: int = setting(4, "Consecutive snippets per training sample: 1, 2 or 4.", "model", metavar="N")
    lab: bool = setting(False, "Use the latent anomaly bank: True or False.", "model")
    lab_type: str = setting(
        "wlab", "Which samples the bank takes: wlab (any clip flagged) or slab (every clip flagged).", "model",
        choices=("wlab", "slab"))
    beta: float = setting(0.1, "Capacity of the bank as a fraction of the batch: int(max_seqlen * beta).",
                          "model", metavar="X")
    delta: float = setting(0.5, "Bank threshold: a score above mean + delta * std of the scores is flagged.",
                           "model", metavar="X")
    # Training.
    stage: str = setting(
        "train", "What main.py runs: data writes the synthetic dataset into --output_dir, c2fpl makes the C2FPL "
                 "pseudo labels and classifier only, train runs the whole pipeline.", "training",
        choices=("data", "c2fpl", "train"))
    max_seqlen: int = setting(
        320, "Batch size: samples per training step (the release's name; the global batch under torchrun).",
        "training", metavar="N")
    max_epoch: int = setting(5, "Number of passes over the training set.", "training", metavar="N")
    max_iters: int | None = setting(
        None, "Stop after this many iterations, with a snapshot at the end (unset: run every epoch).", "training",
        metavar="N")
    lr: float = setting(1e-3, "Learning rate of the AdamW optimiser.", "training", metavar="X")
    adamw_beta1: float = setting(0.9, "AdamW's first beta, the decay of its gradient average.", "training",
                                 metavar="X")
    adamw_beta2: float = setting(0.95, "AdamW's second beta, the decay of its squared-gradient average.",
                                 "training", metavar="X")
    Lambda: str = setting(
        "1_1_1", "Loss weights of the reconstruction, disruption and scorer losses, joined by _ (e.g. 1_1_1).",
        "training", metavar="RE_DI_S")
    seed: int = setting(1, "Random seed of training: initial weights, batches and the bank.", "training",
                        metavar="N")
    snapshot: int = setting(
        50, "Every N iterations, and at the end: evaluate on the test set (if any), log metrics.jsonl, save last.pkl "
            "and resume.pt.", "training", metavar="N")
    keep_train_mode: bool = setting(
        False, "Return to train mode after each snapshot (the release stays in eval mode: no dropout or "
               "disruption after the first evaluation; without a test set, after the first snapshot).", "training")
    within_video: bool = setting(
        False, "Keep each cross-clip sample inside one video (needs video ranges; the release's samples may "
               "span two videos).", "training")
    output_dir: str | None = setting(
        None, "Where a run writes its checkpoints, metrics and settings (unset: ckpt/DATASET/TIMESTAMP/); "
              "--stage data writes the dataset here; run_test.py --video writes each video's results into "
              "DIR/<video name>/.", "training", metavar="DIR", test=True)
    resume: str | None = setting(
        None, "Continue an interrupted run from its resume.pt (or its folder), with the run's saved settings.",
        "training", metavar="PATH")
    # The auxiliary scorer: a C2FPL classifier (given, or built from scratch), FRD labels, or none.
    aux: str = setting(
        "c2fpl", "The auxiliary scorer: c2fpl (the classifier of --aux_ckpt, or one built from scratch), frd "
                 "(fixed labels from --aux_labels) or none.", "aux", choices=("c2fpl", "frd", "none"))
    aux_ckpt: str | None = setting(
        None, "A C2FPL classifier checkpoint, such as the release's UCFfinal.pkl (unset: the C2FPL stage builds "
              "one).", "aux", metavar="FILE")
    aux_labels: str | None = setting(
        None, "Per-snippet 0/1 labels of the training set, an (N,) .npy, for --aux frd (run_test.py --split "
              "train --save_pseudo_labels makes one).", "aux", metavar="FILE")
    c2fpl_window: float = setting(0.2, "C2FPL fine stage: window length as a fraction of the video, in [0, 1].",
                                  "aux", metavar="X")
    c2fpl_nu: float = setting(
        1.0, "C2FPL coarse stage: grow the anomalous set until anomalous/normal >= nu.", "aux", metavar="X")
    c2fpl_epochs: int = setting(20, "Training epochs of the C2FPL classifier (the published recipe: 20).", "aux",
                                metavar="N")
    c2fpl_lr: float = setting(0.01, "Learning rate of the C2FPL classifier's SGD (the published recipe: 0.01).",
                              "aux", metavar="X")
    c2fpl_momentum: float = setting(0.9, "Momentum of the C2FPL classifier's SGD (the published recipe: 0.9).",
                                    "aux", metavar="X")
    c2fpl_nesterov: bool = setting(True, "Nesterov momentum for the C2FPL classifier's SGD: True or False.", "aux")
    c2fpl_weight_decay: float = setting(5e-4, "Weight decay of the C2FPL classifier's SGD (the published recipe: "
                                              "5e-4).", "aux", metavar="X")
    c2fpl_milestones: str = setting(
        "15,25", "Epochs after which the C2FPL classifier's learning rate is multiplied by --c2fpl_gamma, comma "
                 "separated (the published recipe: 15,25).", "aux", metavar="E1,E2")
    c2fpl_gamma: float = setting(0.1, "Learning-rate factor of the C2FPL classifier at each milestone.", "aux",
                                 metavar="X")
    c2fpl_batch_size: int = setting(128, "Snippets per batch of the C2FPL classifier (the published recipe: 128).",
                                    "aux", metavar="N")
    c2fpl_dir: str | None = setting(
        None, "Where the C2FPL stage writes and caches its files (unset: under ckpt/DATASET/c2fpl/).", "aux",
        metavar="DIR")
    # The recipe: how the checkpoint to use is chosen.
    recipe: str = setting(
        "release", "How the checkpoint to use is chosen: release keeps best_ckpt_*.pkl, chosen with the test labels; "
                   "improved also writes selected.pkl beside last.pkl, chosen with no test label (last.pkl, or the "
                   "C2FPL classifier where the Scorer learned nothing, scored with a fusion weight decided from "
                   "training snippets), and sets its own defaults (see above).",
        "recipe", choices=tuple(RECIPES))
    aux_fallback: bool = setting(
        False, "Score selected.pkl with the C2FPL classifier alone when the Scorer learned nothing: it flags none of "
               "a seeded sample of training snippets (score >= 0.5); a label-free check, recorded in selected.yaml "
               "(the improved recipe only, with --aux c2fpl).", "recipe")
    ema_decay: float = setting(
        0.0, "The scorer's average in selected.pkl: after --ema_start, each step average = decay * average + (1 - "
             "decay) * weights, the first step's weights taken as they are; 0 averages nothing (the improved recipe "
             "only).", "recipe", metavar="X")
    ema_start: float = setting(
        0.5, "Where the average starts, as a fraction of the run's iterations (--max_epoch or --max_iters): from the "
             "first step after int(fraction * iterations).", "recipe", metavar="X")
    score_fusion: float = setting(
        0.0, "Weight w of the C2FPL classifier in selected.pkl's scores, (1 - w) * scorer + w * C2FPL, recorded in "
             "selected.yaml so that run_test.py scores the same way; training, its evaluations, best_ckpt_*.pkl and "
             "last.pkl stay the Scorer's alone (the improved recipe only, with --aux c2fpl).", "recipe", metavar="W")
    disagree_fusion: float = setting(
        0.0, "The weight w of selected.pkl's fusion instead of --score_fusion when the two scorers disagree on the "
             "training snippets: their Spearman correlation on a seeded sample is below --agreement (a label-free "
             "check, recorded in selected.yaml; 0: no such check; the improved recipe only, with --aux c2fpl).",
        "recipe", metavar="W")
    agreement: float = setting(
        0.75, "The Spearman correlation of the Scorer's and the C2FPL classifier's scores on the training sample "
              "below which selected.pkl fuses with --disagree_fusion.", "recipe", metavar="RHO")
    # Evaluation.
    ckpt_path: str | None = setting(
        None, "The checkpoint run_test.py evaluates: a full FRD-UVAD checkpoint or a scorer-only one (main.py "
              "does not read it).", "evaluation", metavar="FILE")
    select_metric: str = setting(
        "auc", "The test metric that selects the best checkpoint (best_ckpt_<its value>.pkl) and is printed first: "
               "auc (frame AUC) or ap (average precision, XD-Violence's).", "evaluation",
        choices=tuple(SELECT_METRICS))
    label_threshold: float = setting(
        0.5, "Score at or above which a snippet counts as anomalous: the false alarm rates (FAR) and the 0/1 labels "
             "of run_test.py --save_pseudo_labels.", "evaluation", metavar="X")
    report: bool = setting(
        True, "Write report.html, one self-contained page (it needs no network) with the metrics, curves and per-video "
              "scores: run_test.py next to --metrics_out (else in --plot or --output_dir), for --run_dir (else "
              "RUN/test_report.html) and next to --video's videos.json; main.py in the run folder after training.",
        "evaluation")
    auc_abn_group: int = setting(
        128, "Snippets per group of the release's AUC_abn and FAR_abn (its evaluation batches): a group counts as "
             "abnormal when any of its frames is anomalous.", "evaluation", metavar="N")
    # Hardware and speed.
    device: str = setting("auto", "Where to run: auto (the first GPU if there is one), cpu, cuda or cuda:N.",
                          "performance", metavar="DEVICE")
    amp: str = setting(
        "off", "Mixed precision: bf16 autocasts the networks to bfloat16, for GPUs (losses and statistics stay "
               "float32); off keeps float32 throughout.", "performance", choices=("off", "bf16"))
    compile: bool = setting(False, "torch.compile the networks: minutes of compiling first, pays off on GPUs.",
                            "performance")
    eval_batch_size: int = setting(1024, "Snippets per batch when scoring a test or training set.",
                                   "performance", metavar="N")
    checkpoint_blocks: bool = setting(
        False, "Activation checkpointing of the transformer blocks (320 sample-crop rows recomputed at a "
               "time): far less memory, about 1/3 more compute.", "performance", test=False)
    num_workers: int = setting(0, "Background worker processes assembling training batches (0: none).",
                               "performance", metavar="N", test=False)
    # Not a setting: the names of those the user gave (typed, or in the --config file), filled in by parse_config.
    given: frozenset[str] = field(default=frozenset(), repr=False, compare=False, metadata={"setting": False})

    @property
    def c2fpl_recipe(self) -> "C2FPLRecipe":
        """The C2FPL classifier's training settings, for train_c2fpl (and its cache fingerprint)."""
        return C2FPLRecipe(self.c2fpl_lr, self.c2fpl_momentum, self.c2fpl_nesterov, self.c2fpl_weight_decay,
                           parse_milestones(self.c2fpl_milestones), self.c2fpl_gamma, self.c2fpl_batch_size,
                           self.c2fpl_epochs)

    @property
    def lambdas(self) -> tuple[float, float, float]:
        """``--Lambda 1_1_1`` as (λ_re, λ_di, λ_s)."""
        return parse_lambda(self.Lambda)

    def to_dict(self) -> dict[str, Any]:
        """The settings (not ``given``), as config.yaml holds them."""
        return {name: getattr(self, name) for name in FIELDS}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def summary(self) -> str:
        """The resolved configuration, one ``key: value`` per line."""
        width = max(len(name) for name in FIELDS)
        return "\n".join(f"  {k:<{width}}  {v}" for k, v in self.to_dict().items())


FIELDS = {f.name: f for f in fields(Config) if f.metadata.get("setting", True)}  # the settings


def str2bool(text: str) -> bool:
    """The release's ``--lab False`` booleans: True/False (any case), 1/0, yes/no."""
    value = str(text).strip().lower()
    if value in ("true", "1", "yes", "y", "t"):
        return True
    if value in ("false", "0", "no", "n", "f"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")


@dataclass(frozen=True)
class C2FPLRecipe:
    """How the C2FPL classifier trains: SGD (lr, momentum, nesterov, weight_decay), the learning rate times
    ``gamma`` after each epoch of ``milestones`` (MultiStepLR), ``batch_size`` snippets per step, ``epochs``."""

    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    milestones: tuple[int, ...]
    gamma: float
    batch_size: int
    epochs: int


def parse_milestones(text: str) -> tuple[int, ...]:
    """'15,25' → (15, 25); '' → () (no decay)."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = (0,)
    if any(v < 1 for v in values):
        raise InputError("--c2fpl_milestones", f"expected epochs >= 1 separated by commas like 15,25, got {text!r}")
    return values


def parse_lambda(text: str) -> tuple[float, float, float]:
    """'1_1_1' → (1.0, 1.0, 1.0)."""
    parts = str(text).split("_")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3:
        raise InputError("--Lambda", f"expected three weights like 1_1_1, got {text!r}")
    return values  # type: ignore[return-value]


def _field_type(f: dataclasses.Field) -> type:
    text = str(f.type)
    return bool if "bool" in text else int if "int" in text else float if "float" in text else str


def to_value(name: str, value: Any) -> Any:
    """A command-line or YAML value as setting ``name``'s type, within its choices; ``ValueError`` (or argparse's
    ``ArgumentTypeError``) with a one-line reason otherwise."""
    f = FIELDS[name]
    kind = _field_type(f)
    if kind is bool:
        return str2bool(value)
    try:
        value = kind(value)
    except (TypeError, ValueError):
        expected = {int: "an integer", float: "a number"}.get(kind, "a string")
        raise ValueError(f"expected {expected}, got {value!r}") from None
    choices = f.metadata.get("choices")
    if choices and value not in choices:
        reason = f"{f.metadata['only']}; " if f.metadata.get("only") else ""
        expected = " or ".join(choices) if len(choices) < 3 else f"one of {', '.join(choices)}"
        raise ValueError(f"{reason}expected {expected}, got {value!r}")
    return value


def _argparse_type(name: str) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return to_value(name, text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    convert.__name__ = name
    return convert


class CliParser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one :class:`InputError` line (``--lab: expected True or
    False, got 'maybe'``) rather than a usage dump. ``command``: which command's flags --help lists
    (train = main.py, test = run_test.py); a command's ``extra`` parser carries it to :func:`parse_config`."""

    def __init__(self, *args: Any, command: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.command = command

    def error(self, message: str) -> NoReturn:
        message = message.removeprefix("argument ")
        where, _, problem = message.partition(": ")
        if where == "unrecognized arguments":
            problem += " (--help lists the flags)"
        raise InputError(where, problem) if problem else InputError("command line", message)


class _Formatter(argparse.HelpFormatter):
    """At most 100 columns; descriptions keep their paragraphs (blank-line separated), each one wrapped."""

    def __init__(self, prog: str) -> None:
        width = min(100, shutil.get_terminal_size().columns - 2)
        super().__init__(prog, max_help_position=32, width=max(width, 60))

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n\n".join(textwrap.fill(" ".join(p.split()), width, initial_indent=indent, subsequent_indent=indent)
                           for p in text.split("\n\n"))


def _show(value: Any) -> str:
    return str(value).replace("%", "%%")


def build_parser(description: str = "FRD-UVAD", extra: argparse.ArgumentParser | None = None,
                 command: str | None = None, defaults: dict[str, Any] | None = None) -> CliParser:
    """argparse over every Config field (plus ``extra``'s flags) in help groups; defaults are SUPPRESSed so we
    know what the user typed.

    ``command``: ``"train"`` (main.py) or ``"test"`` (run_test.py): --help lists only the flags that command
    uses (the others are still accepted); None lists every flag. ``defaults``: the values the help text
    shows as ``(default: ...)``, normally :func:`resolved_defaults` for the chosen dataset; None: those of
    the built-in dataset.
    """
    if command is not None and command not in COMMANDS:
        raise ValueError(f"command must be one of {COMMANDS}, got {command!r}")
    shown = defaults if defaults is not None else resolved_defaults()
    parser = CliParser(description=description, argument_default=argparse.SUPPRESS, add_help=False,
                       usage="%(prog)s [-h] [options]", formatter_class=_Formatter, command=command)
    parser.add_argument("-h", "--help", action="store_true",
                        help="Show this help, with the defaults of the chosen --dataset_name and --config, and exit.")
    visible = {name for name, f in FIELDS.items() if command is None or command in f.metadata["commands"]}
    groups = {}
    for key, (title, text, _) in GROUPS.items():
        if any(FIELDS[name].metadata["group"] == key for name in visible):
            groups[key] = parser.add_argument_group(title, text)
    for key in GROUPS:
        for name, f in FIELDS.items():
            if f.metadata["group"] != key:
                continue
            kwargs: dict[str, Any] = {"type": _argparse_type(name)}
            choices = f.metadata["choices"]
            if _field_type(f) is bool:
                kwargs["metavar"] = "True|False"
            elif choices:
                kwargs["metavar"] = "{" + ",".join(choices) + "}"
            else:
                kwargs["metavar"] = f.metadata["metavar"] or name.upper()
            if name in visible:
                value = shown.get(name, f.default)
                default = "" if value is None else f" (default: {_show(value)})"
                kwargs["help"] = _show(f.metadata["help"]) + default
                groups[key].add_argument(f"--{name}", **kwargs)
            else:
                parser.add_argument(f"--{name}", help=argparse.SUPPRESS, **kwargs)
    if extra is not None:
        parser._add_container_actions(extra)  # extra's groups join ours of the same title (as parents= does)
    return parser


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping of Config field names; unknown keys are an error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise InputError(path, f"not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise InputError(path, "expected a mapping of setting: value")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise InputError(path, f"unknown setting(s) {', '.join(unknown)}")
    return data


def canonical_dataset(name: str) -> str:
    key = str(name).strip().lower()
    if key not in DATASET_ALIASES:
        raise InputError("--dataset_name",
                         f"unknown dataset {name!r}; choose from synthetic, ucfcrime, shanghaitech, avenue, "
                         "xdviolence, custom, video_demo")
    return DATASET_ALIASES[key]


def _coerce(name: str, value: Any, source: str) -> Any:
    """YAML values to the field's type (so 'False' in YAML means False, like on the command line)."""
    if value is None:
        return None
    try:
        return to_value(name, value)
    except (ValueError, argparse.ArgumentTypeError) as e:
        raise InputError(source, f"{name}: {e}") from None


def _layers(cli: dict[str, Any], overrides: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """The dataset's name and the values of configs/<dataset>.yaml < --config < ``overrides`` (no flags)."""
    user_yaml = read_yaml(cli["config"]) if cli.get("config") else {}
    name = canonical_dataset(cli.get("dataset_name") or user_yaml.get("dataset_name") or Config.dataset_name)
    dataset_yaml = CONFIG_DIR / f"{name}.yaml"
    layers = [(str(dataset_yaml), read_yaml(dataset_yaml))] if dataset_yaml.is_file() else []
    layers += [(str(cli.get("config")), user_yaml), ("overrides", overrides or {})]
    values: dict[str, Any] = {}
    for source, layer in layers:
        values.update({k: _coerce(k, v, source) for k, v in layer.items()})
    chosen = {**values, **cli}
    recipe = recipe_defaults(chosen.get("recipe", Config.recipe), chosen.get("aux", Config.aux))
    given = set(user_yaml) | set(overrides or {})
    values.update({k: v for k, v in recipe.items() if k not in given})  # above configs/<dataset>.yaml, below the rest
    return name, values


def recipe_defaults(recipe: str, aux: str) -> dict[str, Any]:
    """The settings ``--recipe`` changes; the improved recipe fuses scores only with a C2FPL auxiliary."""
    values = dict(RECIPES[recipe])
    if aux != "c2fpl":
        for key in ("score_fusion", "disagree_fusion", "aux_fallback"):
            values.pop(key, None)
    return values


def resolved_defaults(dataset_name: str | None = None, config: str | None = None,
                      overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every setting as it stands without flags: built-in < configs/<dataset>.yaml < ``config`` < ``overrides``."""
    cli = {k: v for k, v in (("dataset_name", dataset_name), ("config", config)) if v}
    name, values = _layers(cli, overrides)
    return {**{n: f.default for n, f in FIELDS.items()}, **values, "dataset_name": name, "config": config}


def _help_text(description: str, name: str, config: str | None) -> str:
    chosen = f"--dataset_name {name}" + (f" and --config {config}" if config else "")
    text = (f"Settings resolve as built-in < configs/{name}.yaml < --config FILE < flags; "
            f"the defaults below are those of {chosen} (--dataset_name NAME --help shows another dataset's).")
    return f"{description}\n\n{_show(text)}"


def _parse_cli(argv: Sequence[str], description: str, extra: argparse.ArgumentParser | None, command: str,
               overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The Config settings typed on the command line; prints the help (of the chosen dataset) and exits on -h."""
    cli = vars(build_parser(description, extra, command, defaults={}).parse_args(argv))
    wants_help = cli.pop("help", False)
    cli = {k: v for k, v in cli.items() if k in FIELDS}
    if wants_help:
        name, _ = _layers(cli, overrides)
        chosen = {k: cli[k] for k in ("recipe", "aux") if k in cli}  # the recipe's defaults depend on them
        shown = resolved_defaults(name, cli.get("config"), {**(overrides or {}), **chosen})
        build_parser(_help_text(description, name, cli.get("config")), extra, command, shown).print_help()
        raise SystemExit(0)
    return cli


def parse_config(argv: Sequence[str] | None = None, description: str = "FRD-UVAD",
                 overrides: dict[str, Any] | None = None, extra: argparse.ArgumentParser | None = None,
                 command: str | None = None) -> Config:
    """Resolve defaults < configs/<dataset>.yaml < --config < ``overrides`` < command line.

    ``extra``: a parser (``add_help=False``) of a command's own flags, accepted and shown in ``--help``; the
    command reads their values itself. ``command``: whose flags ``--help`` lists, "train" (main.py) or "test"
    (run_test.py); unset, ``extra.command`` (a :class:`CliParser`'s) or else "train". A bad command line
    raises :class:`InputError` (one line); ``-h`` prints the help, with the chosen dataset's defaults, and exits.
    The Config's ``given`` names the settings the user gave: typed in ``argv`` or set in its --config file (not
    those of configs/<dataset>.yaml, the recipe or the built-in defaults).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    command = command or getattr(extra, "command", None) or "train"
    cli = _parse_cli(argv, description, extra, command, overrides)
    name, values = _layers(cli, overrides)
    values.update(cli)
    values["dataset_name"] = name
    given = set(cli) | (set(read_yaml(cli["config"])) if cli.get("config") else set())
    cfg = Config(**values, given=frozenset(given))
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Cheap checks of values, before any work starts."""
    parse_lambda(cfg.Lambda)
    positive = ("max_seqlen", "max_epoch", "snapshot", "feature_size", "synth_train_videos", "synth_test_videos",
                "synth_crops", "c2fpl_epochs", "c2fpl_batch_size", "c2fpl_lr", "c2fpl_gamma", "eval_batch_size",
                "auc_abn_group")
    for name in positive:
        if getattr(cfg, name) <= 0:
            raise InputError(f"--{name}", f"must be positive, got {getattr(cfg, name)}")
    if cfg.cross_clip not in (1, 2, 4):
        raise InputError("--cross_clip", f"must be 1, 2 or 4, got {cfg.cross_clip}")
    if cfg.within_video and not (cfg.train_ranges or cfg.train_list or cfg.dataset_name == "synthetic"):
        raise InputError("--within_video", "needs training video ranges (--train_ranges or --train_list)")
    if not (cfg.device == "auto" or cfg.device == "cpu" or cfg.device.startswith("cuda")):
        raise InputError("--device", f"expected auto, cpu, cuda or cuda:N, got {cfg.device!r}")
    if not 0.0 <= cfg.c2fpl_window <= 1.0:
        raise InputError("--c2fpl_window", f"must be in [0, 1], got {cfg.c2fpl_window}")
    parse_milestones(cfg.c2fpl_milestones)
    for name in ("adamw_beta1", "adamw_beta2", "c2fpl_momentum"):
        if not 0.0 <= getattr(cfg, name) < 1.0:
            raise InputError(f"--{name}", f"must be in [0, 1), got {getattr(cfg, name)}")
    if cfg.c2fpl_nesterov and cfg.c2fpl_momentum == 0:
        raise InputError("--c2fpl_nesterov", "Nesterov momentum needs --c2fpl_momentum > 0")
    if cfg.c2fpl_weight_decay < 0:
        raise InputError("--c2fpl_weight_decay", f"must be >= 0, got {cfg.c2fpl_weight_decay}")
    if cfg.c2fpl_nu < 0:
        raise InputError("--c2fpl_nu", f"must be >= 0, got {cfg.c2fpl_nu}")
    if cfg.aux == "frd" and cfg.stage == "train" and not cfg.aux_labels:
        raise InputError("--aux_labels", "--aux frd needs the per-snippet labels file (run_test.py --split train "
                                         "--save_pseudo_labels FILE makes one)")
    if cfg.max_iters is not None and cfg.max_iters <= 0:
        raise InputError("--max_iters", f"must be positive, got {cfg.max_iters}")
    if cfg.num_workers < 0:
        raise InputError("--num_workers", "must be >= 0")
    if not 0.0 <= cfg.ema_decay < 1.0:
        raise InputError("--ema_decay", f"must be in [0, 1), got {cfg.ema_decay}")
    if cfg.ema_decay and cfg.recipe != "improved":
        raise InputError("--ema_decay", "the average goes into selected.pkl, which only --recipe improved writes")
    for name in ("ema_start", "score_fusion", "disagree_fusion"):
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            raise InputError(f"--{name}", f"must be in [0, 1], got {getattr(cfg, name)}")
    if cfg.aux_fallback and cfg.recipe != "improved":
        raise InputError("--aux_fallback", "the fallback is selected.pkl's, which only --recipe improved writes")
    if cfg.aux_fallback and cfg.aux != "c2fpl":
        raise InputError("--aux_fallback", f"falls back to the C2FPL classifier: needs --aux c2fpl, not {cfg.aux}")
    if not -1.0 <= cfg.agreement <= 1.0:
        raise InputError("--agreement", f"a correlation: must be in [-1, 1], got {cfg.agreement}")
    if cfg.disagree_fusion and cfg.recipe != "improved":
        raise InputError("--disagree_fusion", "the fusion is selected.pkl's, which only --recipe improved writes")
    if cfg.disagree_fusion and cfg.aux != "c2fpl":
        raise InputError("--disagree_fusion", f"fuses with the C2FPL classifier's scores: needs --aux c2fpl, not "
                                              f"{cfg.aux}")
    if cfg.score_fusion and cfg.recipe != "improved":
        raise InputError("--score_fusion", "the fusion is selected.pkl's, which only --recipe improved writes")
    if cfg.score_fusion and cfg.aux != "c2fpl":
        raise InputError("--score_fusion", f"fuses with the C2FPL classifier's scores: needs --aux c2fpl, not "
                                           f"{cfg.aux}")
