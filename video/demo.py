"""The video demo (``--dataset_name video_demo``): the whole path from video files, with no download.

Generated videos (three fixed cameras; people walking; some run, a car drives through, two collide and scuffle, or
the light flickers) → I3D ResNet-50 features with **stand-in weights** (the parity rule's seeded values, not Kinetics
weights, with a first convolution that sees only change and BatchNorm statistics re-estimated on the demo's training
videos: these features are not the field's) → the per-video layout main.py reads, with the
test set's frame labels. Everything is written once into ``data/video_demo/<specification>/`` and reused. The
commands call :func:`with_files` before ``dataset.prepare``.
"""
import dataclasses
import json
from pathlib import Path

import torch

from dataset.layout import LIST_FILE
from dataset.prepare import gives_data_paths
from utils.config import Config
from utils.device import resolve_device
from utils.errors import InputError
from utils.io import atomic_open, save_json
from video.backbones import batchnorm_estimation, build_backbone, file_id, standin_i3d_state_dict
from video.extract import Extractor
from video.presets import PRESETS
from video.scenes import DemoVideo, write_demo_set
from video.writer import extract_videos, write_index

STANDIN_WEIGHTS = "i3d_r50_standin.pth"
STANDIN_RECORD = "i3d_r50_standin.json"  # how the stand-in weights were made; weights made otherwise are remade
BATCHNORM_EVERY = 4  # every 4th training video re-estimates the stand-in's BatchNorm statistics
WARNING = ("video demo: I3D features from STAND-IN weights (seeded values, not Kinetics-trained; first convolution "
           "seeing only change; BatchNorm statistics re-estimated on the demo's training videos): they show the path "
           "from videos to anomaly times, not the field's features or results")


def demo_dir(cfg: Config) -> Path:
    """One folder per specification: ``data/video_demo/<train>+<test>videos-seed<seed>-<crops>crop``."""
    return (Path("data/video_demo") /
            f"{cfg.synth_train_videos}+{cfg.synth_test_videos}videos-seed{cfg.synth_seed}-{cfg.synth_crops}crop")


def ensure(cfg: Config) -> dict[str, str]:
    """The demo's files, made when missing: ``train_list``, ``test_list``, ``test_gt`` and the stand-in ``weights``
    (for ``run_test.py --video … --weights``)."""
    root = demo_dir(cfg)
    train, test = write_demo_set(root / "videos", cfg.synth_train_videos, cfg.synth_test_videos, cfg.synth_seed)
    device = resolve_device(cfg.device)
    weights = standin_weights(root, train, cfg.synth_crops, device)
    print(WARNING)
    backbone = build_backbone("i3d_r50", str(weights))
    extractor = Extractor(backbone, PRESETS["rtfm"], crops=cfg.synth_crops, device=device)
    backbone.net.to(device)
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


def motion_only(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with ``conv1.weight`` (64, 3, 5, 7, 7) less its mean over the 5 frames: the first layer answers
    what changes between frames (motion, light), never a still scene, as an untrained net cannot learn to ignore
    the static background that a trained one does."""
    conv1 = state["conv1.weight"]
    return {**state, "conv1.weight": conv1 - conv1.mean(dim=2, keepdim=True)}


def standin_weights(root: Path, train: list[DemoVideo], crops: int, device: torch.device) -> Path:
    """``root/i3d_r50_standin.pth``, made unless ``root/i3d_r50_standin.json`` says it was made this way: the parity
    rule's values (``standin_i3d_state_dict``), whose BatchNorm statistics do not fit any input (features 50x the
    scale of Kinetics I3D's, on which every classifier saturates), with those statistics re-estimated on every
    ``BATCHNORM_EVERY``-th training video (never a test video; no label), as a trained net's fit its data."""
    weights, record = root / STANDIN_WEIGHTS, root / STANDIN_RECORD
    videos = train[::BATCHNORM_EVERY]
    how = {"values": "video.backbones.standin_i3d_state_dict: the parity rule's seeded values, not trained",
           "conv1": "each kernel less its mean over its 5 frames (video.demo.motion_only): sees change, not scenes",
           "batchnorm": "running statistics re-estimated (video.backbones.batchnorm_estimation) on these training "
                        "videos, no label", "videos": [v.name for v in videos], "preset": "rtfm", "crops": crops}
    try:
        made = json.loads(record.read_text())
    except (OSError, ValueError):
        made = {}
    if (weights.is_file() and isinstance(made, dict) and made.get("how") == how
            and made.get("sha256") == file_id(weights)):
        return weights
    backbone = build_backbone("i3d_r50", None, random_ok=True)
    backbone.net.load_state_dict(motion_only(standin_i3d_state_dict()))
    backbone.net.to(device)
    extractor = Extractor(backbone, PRESETS["rtfm"], crops=crops, batch_size=8, device=device)
    snippets = 0
    with batchnorm_estimation(backbone.net):
        for video in videos:
            snippets += sum(len(batch) for batch in extractor.features(str(video.path)))
    with atomic_open(weights) as f:
        torch.save({k: v.detach().cpu().contiguous() for k, v in backbone.net.state_dict().items()}, f)
    save_json(record, {"weights": STANDIN_WEIGHTS, "sha256": file_id(weights), "snippets": snippets, "how": how})
    return weights
