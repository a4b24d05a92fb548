"""From a Config to opened data: the synthetic default, or the user's files in either layout."""
import dataclasses
from pathlib import Path

from dataset import synthetic
from dataset.features import FeatureSource, open_features
from dataset.ground_truth import TestSet, load_test_set
from utils.config import Config
from utils.errors import InputError


def synthetic_spec(cfg: Config) -> synthetic.SyntheticSpec:
    """The synthetic dataset a Config asks for (its feature size is ``feature_size``)."""
    return synthetic.SyntheticSpec(seed=cfg.synth_seed, n_train_videos=cfg.synth_train_videos,
                                   n_test_videos=cfg.synth_test_videos, feature_size=cfg.feature_size,
                                   n_crops=cfg.synth_crops, length_scale=cfg.synth_length_scale)


def with_synthetic_paths(cfg: Config, files: dict[str, Path]) -> Config:
    """``cfg`` with every data path not set by the user pointing at the synthetic files."""
    keys = ("train_features", "train_ranges", "test_features", "test_gt", "test_ranges", "train_truth")
    filled = {k: getattr(cfg, k) or str(files[k]) for k in keys}
    return dataclasses.replace(cfg, **filled)


def prepare(cfg: Config) -> Config:
    """Generate the synthetic dataset when it is the one asked for (reused when already there)."""
    if cfg.dataset_name != "synthetic" or cfg.train_list or cfg.test_list:
        return cfg
    return with_synthetic_paths(cfg, synthetic.ensure(cfg.synthetic_dir, synthetic_spec(cfg)))


def open_train(cfg: Config) -> FeatureSource:
    """The training features, checked (layout, shape, dtype, ranges) without reading them."""
    if not (cfg.train_features or cfg.train_list):
        raise InputError("--train_features", "no training features given (or --train_list for per-video files)")
    source = open_features(cfg.train_features, cfg.train_ranges, cfg.train_list, cfg.feature_root)
    check_feature_size(source, cfg.feature_size)
    return source


def open_test(cfg: Config) -> TestSet:
    """The test features and frame labels, aligned under ``--gt_mismatch``."""
    if not (cfg.test_features or cfg.test_list):
        raise InputError("--test_features", "no test features given (or --test_list for per-video files)")
    if not cfg.test_gt:
        raise InputError("--test_gt", "no frame ground truth given")
    test = load_test_set(cfg.test_features, cfg.test_gt, cfg.test_ranges, cfg.gt_mismatch,
                         cfg.test_list, cfg.feature_root)
    check_feature_size(test.source, cfg.feature_size)
    return test


def check_feature_size(source: FeatureSource, feature_size: int) -> None:
    if source.feature_size != feature_size:
        raise InputError(source.path, f"features have size {source.feature_size}, the configuration says "
                                      f"--feature_size {feature_size}")
