"""One configuration for every command: built-in defaults < configs/<dataset>.yaml < --config < command line.

The release's flags keep their names and their ``--lab False`` style booleans; our
additions (data paths, device, stages) are plain argparse flags. The resolved values
travel as one :class:`Config` built once by :func:`parse_config`.
"""
import argparse
import dataclasses
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import yaml

from utils.errors import InputError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
DATASET_ALIASES = {"ucf": "ucfcrime", "ucf-crime": "ucfcrime", "ucf_crime": "ucfcrime",
                   "sh": "shanghaitech", "shanghai": "shanghaitech", "shanghaitech": "shanghaitech",
                   "avenue": "avenue", "cuhk": "avenue", "ucfcrime": "ucfcrime", "synthetic": "synthetic"}


@dataclass
class Config:
    """Every setting of training, testing and data preparation, with the release's defaults."""

    # The release's flags (names kept as the release spells them).
    dataset_name: str = "synthetic"
    feature_pretrain_model: str = "i3d"
    feature_modal: str = "rgb"
    cross_clip: int = 4
    lab: bool = False
    lab_type: str = "wlab"
    beta: float = 0.1
    delta: float = 0.5
    Vitblock_num: int = 8
    max_seqlen: int = 320
    max_epoch: int = 5
    Lambda: str = "1_1_1"
    lr: float = 1e-3
    snapshot: int = 50
    seed: int = 1
    feature_size: int = 2048
    ckpt_path: str | None = None
    # What to run.
    stage: str = "train"
    config: str | None = None
    # Data: the concatenated layout (features + ranges) or the per-video layout (list + root).
    train_features: str | None = None
    train_ranges: str | None = None
    train_list: str | None = None
    test_features: str | None = None
    test_gt: str | None = None
    test_ranges: str | None = None
    test_list: str | None = None
    feature_root: str | None = None
    train_truth: str | None = None
    gt_mismatch: str = "error"
    within_video: bool = False
    num_workers: int = 0
    # The synthetic dataset (dataset_name synthetic); its feature size is feature_size.
    synthetic_dir: str = "data/synthetic"
    synth_seed: int = 0
    synth_train_videos: int = 280
    synth_test_videos: int = 140
    synth_crops: int = 10
    synth_length_scale: float = 0.1
    # The auxiliary scorer: a C2FPL classifier (given, or built from scratch), FRD labels, or none.
    aux: str = "c2fpl"
    aux_ckpt: str | None = None
    aux_labels: str | None = None
    c2fpl_window: float = 0.2
    c2fpl_nu: float = 1.0
    c2fpl_epochs: int = 20
    c2fpl_dir: str | None = None
    # The training loop.
    keep_train_mode: bool = False
    max_iters: int | None = None
    resume: str | None = None
    # Outputs and hardware.
    output_dir: str | None = None
    device: str = "auto"
    checkpoint_blocks: bool = False
    amp: str = "off"
    compile: bool = False
    eval_batch_size: int = 1024

    @property
    def lambdas(self) -> tuple[float, float, float]:
        """``--Lambda 1_1_1`` as (λ_re, λ_di, λ_s)."""
        return parse_lambda(self.Lambda)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def summary(self) -> str:
        """The resolved configuration, one ``key: value`` per line."""
        width = max(len(f.name) for f in fields(self))
        return "\n".join(f"  {k:<{width}}  {v}" for k, v in self.to_dict().items())


CHOICES = {
    "stage": ("data", "c2fpl", "train"),
    "aux": ("c2fpl", "frd", "none"),
    "lab_type": ("wlab", "slab"),
    "gt_mismatch": ("error", "truncate"),
    "feature_modal": ("rgb", "flow", "combine"),
    "amp": ("off", "bf16"),
}
HELP = {
    "dataset_name": "synthetic | ucfcrime | shanghaitech | avenue: loads configs/NAME.yaml",
    "cross_clip": "consecutive snippets per training sample (1, 2 or 4)",
    "lab": "latent anomaly bank on/off (True/False)",
    "lab_type": "bank policy: wlab (any clip flagged) or slab (all clips flagged)",
    "beta": "bank capacity = int(max_seqlen * beta)",
    "delta": "bank threshold: mean + delta * std of the scores",
    "Vitblock_num": "transformer blocks of the reconstructor (0 = autoencoder)",
    "max_seqlen": "batch size (samples per step)",
    "Lambda": "loss weights lambda_re_lambda_di_lambda_s, e.g. 1_1_1",
    "snapshot": "evaluate on the test set every N iterations",
    "ckpt_path": "checkpoint to evaluate (run_test.py)",
    "stage": "data: write the synthetic dataset into --output_dir; c2fpl: C2FPL pseudo labels and classifier; "
             "train: the full pipeline",
    "aux": "auxiliary scorer: c2fpl (classifier from --aux_ckpt, or built from scratch), frd (labels from "
           "--aux_labels), none",
    "aux_ckpt": "C2FPL classifier checkpoint (such as the release's UCFfinal.pkl)",
    "aux_labels": "per-snippet 0/1 labels (N,) .npy of the training set, for --aux frd",
    "c2fpl_window": "C2FPL fine stage: window length as a fraction of the video",
    "c2fpl_nu": "C2FPL coarse stage: grow the anomalous set until #anomalous/#normal >= nu",
    "c2fpl_epochs": "C2FPL classifier training epochs (the published recipe: 20)",
    "c2fpl_dir": "where the C2FPL stage writes and caches its files (default ckpt/<dataset>/c2fpl)",
    "eval_batch_size": "snippets per batch when scoring a test or training set",
    "keep_train_mode": "return to train mode after each evaluation (the release stays in eval mode: no dropout "
                       "or disruption after the first evaluation)",
    "max_iters": "stop after this many iterations (evaluating at the end)",
    "resume": "continue an interrupted run from its resume.pt (or its folder)",
    "config": "a YAML file of settings (overrides configs/<dataset>.yaml, overridden by flags)",
    "train_features": "concatenated training features (N, C, D) .npy, read memory-mapped",
    "train_ranges": "(V, 2) int64 [from, to) snippet ranges of the training videos",
    "train_list": "per-video layout: list file of training feature files",
    "test_features": "concatenated test features (N, C, D) .npy",
    "test_gt": "frame ground truth: .npy (16 per snippet) or a pickle of name -> frame labels",
    "test_ranges": "(V, 2) int64 test video ranges (enables per-video metrics)",
    "test_list": "per-video layout: list file of test feature files",
    "feature_root": "folder that relative paths in list files are relative to",
    "train_truth": "per-snippet true training labels, for diagnostics only (never used for training)",
    "gt_mismatch": "when ground truth != 16 x snippets: error, or truncate to the shorter",
    "within_video": "keep cross-clip windows inside one video (needs ranges; not the release's behaviour)",
    "num_workers": "background workers assembling batches",
    "synthetic_dir": "where the synthetic dataset is generated on first use",
    "output_dir": "where outputs go (default ckpt/<dataset>/<timestamp>/)",
    "device": "auto | cpu | cuda | cuda:N",
    "checkpoint_blocks": "activation checkpointing of the transformer blocks (recomputed 320 sample-crop rows at a "
                         "time): far less memory, ~1/3 more compute",
    "amp": "off | bf16: bfloat16 autocast for the networks (losses and statistics stay float32); for GPUs",
    "compile": "torch.compile the networks (minutes of compiling first; pays off on GPUs)",
}


def str2bool(text: str) -> bool:
    """The release's ``--lab False`` booleans: True/False (any case), 1/0, yes/no."""
    value = str(text).strip().lower()
    if value in ("true", "1", "yes", "y", "t"):
        return True
    if value in ("false", "0", "no", "n", "f"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")


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


def build_parser(description: str = "FRD-UVAD",
                 extra: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """argparse over every Config field (plus ``extra``'s flags); defaults are SUPPRESSed so we know what the
    user typed."""
    parser = argparse.ArgumentParser(description=description, argument_default=argparse.SUPPRESS,
                                     parents=[extra] if extra else [])
    for f in fields(Config):
        kind = _field_type(f)
        kwargs: dict[str, Any] = {"help": HELP.get(f.name, f.name) + f" (default: {f.default})"}
        if kind is bool:
            kwargs.update(type=str2bool, metavar="True|False")
        else:
            kwargs["type"] = kind
        if f.name in CHOICES:
            kwargs["choices"] = CHOICES[f.name]
        parser.add_argument(f"--{f.name}", **kwargs)
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
    unknown = sorted(set(data) - {f.name for f in fields(Config)})
    if unknown:
        raise InputError(path, f"unknown setting(s) {', '.join(unknown)}")
    return data


def canonical_dataset(name: str) -> str:
    key = str(name).strip().lower()
    if key not in DATASET_ALIASES:
        raise InputError("--dataset_name",
                         f"unknown dataset {name!r}; choose from synthetic, ucfcrime, shanghaitech, avenue")
    return DATASET_ALIASES[key]


def _coerce(name: str, value: Any, source: str) -> Any:
    """YAML values to the field's type (so 'False' in YAML means False, like on the command line)."""
    f = next(f for f in fields(Config) if f.name == name)
    if value is None:
        return None
    kind = _field_type(f)
    try:
        value = str2bool(value) if kind is bool else kind(value)
    except (ValueError, argparse.ArgumentTypeError) as e:
        raise InputError(source, f"{name}: {e}") from None
    if name in CHOICES and value not in CHOICES[name]:
        raise InputError(source, f"{name}: {value!r} is not one of {', '.join(CHOICES[name])}")
    return value


def parse_config(argv: Sequence[str] | None = None, description: str = "FRD-UVAD",
                 overrides: dict[str, Any] | None = None, extra: argparse.ArgumentParser | None = None) -> Config:
    """Resolve defaults < configs/<dataset>.yaml < --config < ``overrides`` < command line.

    ``extra``: a parser (``add_help=False``) of a command's own flags, accepted and shown in ``--help``; the
    command reads their values itself.
    """
    known = {f.name for f in fields(Config)}
    cli = vars(build_parser(description, extra).parse_args(sys.argv[1:] if argv is None else argv))
    cli = {k: v for k, v in cli.items() if k in known}
    user_yaml = read_yaml(cli["config"]) if cli.get("config") else {}
    name = canonical_dataset(cli.get("dataset_name") or user_yaml.get("dataset_name") or Config.dataset_name)
    values: dict[str, Any] = {}
    dataset_yaml = CONFIG_DIR / f"{name}.yaml"
    layers = [(str(dataset_yaml), read_yaml(dataset_yaml))] if dataset_yaml.is_file() else []
    layers += [(str(cli.get("config")), user_yaml), ("overrides", overrides or {})]
    for source, layer in layers:
        values.update({k: _coerce(k, v, source) for k, v in layer.items()})
    values.update(cli)
    values["dataset_name"] = name
    cfg = Config(**values)
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Cheap checks of values, before any work starts."""
    parse_lambda(cfg.Lambda)
    positive = ("max_seqlen", "max_epoch", "snapshot", "feature_size", "synth_train_videos", "synth_test_videos",
                "synth_crops", "c2fpl_epochs", "eval_batch_size")
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
    if cfg.c2fpl_nu < 0:
        raise InputError("--c2fpl_nu", f"must be >= 0, got {cfg.c2fpl_nu}")
    if cfg.aux == "frd" and cfg.stage == "train" and not cfg.aux_labels:
        raise InputError("--aux_labels", "--aux frd needs the per-snippet labels file (run_test.py --split train "
                                         "--save_pseudo_labels FILE makes one)")
    if cfg.max_iters is not None and cfg.max_iters <= 0:
        raise InputError("--max_iters", f"must be positive, got {cfg.max_iters}")
    if cfg.num_workers < 0:
        raise InputError("--num_workers", "must be >= 0")
