"""From a Config to opened data: the synthetic default, or the user's files in either layout.

The synthetic dataset is used only when no data path at all is given; any data path means the user's
files and nothing else. The user's files (no dataset name, or ``custom``) decide the feature size unless
the command line names one. Features written by extract_features.py come with ``videos.json`` beside
them: the settings they were extracted with.
"""
import dataclasses
import json
from pathlib import Path
from typing import Collection

from dataset import synthetic
from dataset.features import FeatureSource, open_features
from dataset.ground_truth import TestSet, load_test_set
from dataset.layout import CONCAT_FILE, INFO_FILE, RANGES_FILE
from utils.config import Config
from utils.errors import InputError

DATA_PATHS = ("train_features", "train_ranges", "train_list", "test_features", "test_gt", "test_ranges",
              "test_list", "feature_root", "train_truth")
REAL_FILES_HINT = 'see docs/data.md, "Where the real files come from"'
OWN_FILES = {"synthetic", "custom"}  # dataset names whose data paths are the user's files: these decide the size


def gives_data_paths(cfg: Config) -> bool:
    """True when ``cfg`` names any data file of the user's."""
    return any(getattr(cfg, key) for key in DATA_PATHS)


def uses_synthetic(cfg: Config) -> bool:
    """True when ``cfg`` asks for the synthetic dataset: its name, and no data path of the user's."""
    return cfg.dataset_name == "synthetic" and not gives_data_paths(cfg)


def synthetic_spec(cfg: Config) -> synthetic.SyntheticSpec:
    """The synthetic dataset a Config asks for (its feature size is ``feature_size``)."""
    types = synthetic.ANOMALY_TYPES if cfg.synth_anomaly_types == "all" else tuple(
        t.strip() for t in cfg.synth_anomaly_types.split(","))
    try:
        share = tuple(float(x) for x in cfg.synth_event_share.split(","))
    except ValueError:
        raise InputError("--synth_event_share", f"expected two numbers low,high, got {cfg.synth_event_share!r}") from None
    try:
        return synthetic.SyntheticSpec(seed=cfg.synth_seed, n_train_videos=cfg.synth_train_videos,
                                       n_test_videos=cfg.synth_test_videos, feature_size=cfg.feature_size,
                                       n_crops=cfg.synth_crops, length_scale=cfg.synth_length_scale,
                                       anomalous_fraction=cfg.synth_anomalous_fraction, anomaly_types=types,
                                       max_length=cfg.synth_max_length, event_share=share)
    except InputError as e:
        raise InputError("synthetic dataset", str(e)) from None


def synthetic_dir(cfg: Config) -> Path:
    """``--synthetic_dir``, or one folder per specification under ``data/synthetic/``."""
    return Path(cfg.synthetic_dir) if cfg.synthetic_dir else Path("data/synthetic") / synthetic_spec(cfg).name


def prepare(cfg: Config, explicit: Collection[str] = ()) -> Config:
    """``cfg`` with its data settled: the synthetic files generated (or reused) and filled in when it is the
    synthetic default; otherwise the user's files as they are (for ``custom``, the ranges beside
    extract_features.py's ``concat.npy`` when none are given). The video demo's files are filled in before, by
    ``video.demo.with_files``. ``explicit``: the settings the user gave; without
    a dataset name (or with ``custom``) and an explicit ``feature_size``, the user's files decide it."""
    if uses_synthetic(cfg):
        files = synthetic.ensure(synthetic_dir(cfg), synthetic_spec(cfg))
        return dataclasses.replace(cfg, **{key: str(files[key]) for key in files})
    if cfg.dataset_name == "custom" and cfg.train_features and not cfg.train_ranges:
        cfg = dataclasses.replace(cfg, train_ranges=extracted_ranges(cfg.train_features))
    if cfg.dataset_name in OWN_FILES and "feature_size" not in explicit:
        cfg = dataclasses.replace(cfg, feature_size=feature_size_of_files(cfg))
    return cfg


def extracted_ranges(features: str) -> str | None:
    """The ranges ``nalist.npy`` that extract_features.py --concat wrote beside ``features`` when these are its
    ``concat.npy`` (``videos.json`` beside them too), or None."""
    folder = Path(features).parent
    ranges = folder / RANGES_FILE
    found = Path(features).name == CONCAT_FILE and (folder / INFO_FILE).is_file() and ranges.is_file()
    return str(ranges) if found else None


def extraction_settings(path: str | Path) -> dict | None:
    """The settings (backbone, weights, preset, crops, fps, amp) that extract_features.py made the features of
    ``path`` (a list file or a concatenated array) with, from the ``videos.json`` beside it; None without one.

    Videos extracted with different settings cannot train one model: InputError naming two of them."""
    record = Path(path).parent / INFO_FILE
    if not record.is_file():
        return None
    try:
        videos = json.loads(record.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise InputError(record, f"not readable JSON ({e})") from None
    if not isinstance(videos, list) or not all(isinstance(v, dict) and isinstance(v.get("settings"), dict)
                                               for v in videos):
        raise InputError(record, "expected a list of videos, each with its extraction settings")
    if not videos:
        return None
    first = videos[0]
    for video in videos[1:]:
        a, b = first["settings"], video["settings"]
        if a != b:
            keys = [k for k in {**a, **b} if a.get(k) != b.get(k)]
            raise InputError(record, f"videos extracted with different settings: {_described(first, keys)}; "
                                     f"{_described(video, keys)}")
    return first["settings"]


def _described(video: dict, keys: list[str]) -> str:
    """'walk.mp4 has backbone r3d_18, crops 1': a videos.json entry's ``keys`` settings."""
    return f"{video.get('video')} has " + ", ".join(f"{k} {video['settings'].get(k)}" for k in keys)


def check_exist(cfg: Config, *keys: str) -> None:
    """Each file that ``cfg`` names under ``keys`` exists; a missing one of a real dataset points to docs/data.md."""
    for key in keys:
        path = getattr(cfg, key)
        if path and not Path(path).exists():
            hint = f" ({REAL_FILES_HINT})" if cfg.dataset_name not in OWN_FILES else ""
            raise InputError(path, f"file not found{hint}")


def feature_size_of_files(cfg: Config) -> int:
    """The feature size ``D`` of the user's training files, or of the test files when there are none."""
    if cfg.train_features or cfg.train_list:
        return open_features(cfg.train_features, None, cfg.train_list, cfg.feature_root).feature_size
    if has_test_set(cfg):
        return open_features(cfg.test_features, None, cfg.test_list, cfg.feature_root).feature_size
    raise InputError("--train_features", "no features given (or --train_list / --test_features / --test_list)")


def check_train_given(cfg: Config) -> None:
    """Training features are named or are the synthetic default's (``--dataset_name custom`` has none of its own:
    say what to pass)."""
    if cfg.train_features or cfg.train_list or uses_synthetic(cfg) or cfg.dataset_name == "video_demo":
        return
    if cfg.dataset_name == "custom":
        raise InputError("--dataset_name custom", "no training features given: pass --train_list OUT/features.list "
                                                  "(extract_features.py's output) or --train_features FILE.npy "
                                                  "--train_ranges RANGES.npy")
    raise InputError("--train_features", "no training features given (or --train_list for per-video files)")


def open_train(cfg: Config, check_size: bool = True) -> FeatureSource:
    """The training features, checked (layout, shape, dtype, ranges and, with ``check_size``, the feature size)
    without reading them."""
    check_train_given(cfg)
    check_exist(cfg, "train_features", "train_ranges", "train_list", "feature_root", "train_truth")
    source = open_features(cfg.train_features, cfg.train_ranges, cfg.train_list, cfg.feature_root)
    if check_size:
        check_feature_size(source, cfg.feature_size)
    return source


def has_test_set(cfg: Config) -> bool:
    return bool(cfg.test_features or cfg.test_list)


def open_test(cfg: Config, check_size: bool = True) -> TestSet:
    """The test features and frame labels, aligned under ``--gt_mismatch`` (feature size checked with
    ``check_size``)."""
    if not has_test_set(cfg):
        raise InputError("--test_features", "no test features given (or --test_list for per-video files)")
    if not cfg.test_gt:
        raise InputError("--test_gt", "no frame ground truth given")
    check_exist(cfg, "test_features", "test_gt", "test_ranges", "test_list", "feature_root")
    test = load_test_set(cfg.test_features, cfg.test_gt, cfg.test_ranges, cfg.gt_mismatch,
                         cfg.test_list, cfg.feature_root)
    if check_size:
        check_feature_size(test.source, cfg.feature_size)
    return test


def check_feature_size(source: FeatureSource, feature_size: int) -> None:
    if source.feature_size != feature_size:
        raise InputError(source.path, f"features have size {source.feature_size}, the configuration says "
                                      f"--feature_size {feature_size}")
