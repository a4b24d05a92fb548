"""The video demo (``--dataset_name video_demo``): the whole path from video files, with no download.

Generated videos (people walking; some run, fall, collide, or the light flickers) → I3D ResNet-50 features with
**stand-in weights** (the parity rule's seeded values, not Kinetics weights: these features are not the field's)
→ the per-video layout main.py reads, with the test set's frame labels. Everything is written once into
``data/video_demo/<specification>/`` and reused. The commands call :func:`with_files` before ``dataset.prepare``.
"""
import dataclasses
from pathlib import Path

import torch

from dataset.layout import LIST_FILE
from dataset.prepare import gives_data_paths
from utils.config import Config
from utils.device import resolve_device
from utils.errors import InputError
from utils.io import atomic_open
from video.backbones import build_backbone, standin_i3d_state_dict
from video.extract import Extractor
from video.presets import PRESETS
from video.scenes import write_demo_set
from video.writer import extract_videos, write_index

STANDIN_WEIGHTS = "i3d_r50_standin.pth"
WARNING = ("video demo: I3D features from STAND-IN weights (seeded values, not Kinetics-trained): they show the "
           "path from videos to anomaly times, not the field's features or results")


def demo_dir(cfg: Config) -> Path:
    """One folder per specification: ``data/video_demo/<train>+<test>videos-seed<seed>-<crops>crop``."""
    return (Path("data/video_demo") /
            f"{cfg.synth_train_videos}+{cfg.synth_test_videos}videos-seed{cfg.synth_seed}-{cfg.synth_crops}crop")


def ensure(cfg: Config) -> dict[str, str]:
    """The demo's files, made when missing: ``train_list``, ``test_list``, ``test_gt`` and the stand-in ``weights``
    (for ``run_test.py --video … --weights``)."""
    root = demo_dir(cfg)
    train, test = write_demo_set(root / "videos", cfg.synth_train_videos, cfg.synth_test_videos, cfg.synth_seed)
    weights = root / STANDIN_WEIGHTS
    if not weights.is_file():
        with atomic_open(weights) as f:
            torch.save(standin_i3d_state_dict(), f)
    print(WARNING)
    extractor = Extractor(build_backbone("i3d_r50", str(weights)), PRESETS["rtfm"], crops=cfg.synth_crops,
                          device=resolve_device(cfg.device))
    for split, videos in (("train", train), ("test", test)):
        out = root / "features" / split
        outcomes = extract_videos(extractor, [(str(v.path), v.name) for v in videos], out, f"demo {split} videos")
        failed = [o for o in outcomes if o.info is None]
        if failed:
            raise InputError(failed[0].video, f"demo video not extracted: {failed[0].reason}")
        write_index(out, outcomes, concat=False)
    return {"train_list": str(root / "features" / "train" / LIST_FILE),
            "test_list": str(root / "features" / "test" / LIST_FILE),
            "test_gt": str(root / "videos" / "test_gt.npy"), "weights": str(weights)}


def with_files(cfg: Config) -> Config:
    """``cfg`` with the demo's files filled in (made when missing) when it is ``--dataset_name video_demo`` with no
    data path of the user's; else ``cfg`` as it is."""
    if cfg.dataset_name != "video_demo" or gives_data_paths(cfg):
        return cfg
    files = ensure(cfg)
    return dataclasses.replace(cfg, **{key: files[key] for key in ("train_list", "test_list", "test_gt")})
