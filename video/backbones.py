"""Video backbones as feature nets ``(B, 3, T, H, W) float32 -> (B, D)``: our I3D ResNet-50 and torchvision's
Kinetics-400 video models with their classification heads removed.

``build_backbone(name, weights)`` is the one entry point; ``BACKBONES`` maps each name to its feature size.
Weights files load with ``weights_only=True``; a file of another layout stops with one line naming the keys.
"""
import hashlib
import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torchvision
from torch import nn

from utils.errors import InputError

CLIP_FRAMES = 16  # every backbone here takes 16-frame clips, as the field's features
I3D_WEIGHTS_HELP = ("i3d_r50_kinetics.pth (the Kinetics-400 weights published with the Tushar-N/pytorch-resnet3d "
                    "model definition, converted from video-nonlocal-net's i3d_baseline_32x2_IN_pretrain_400k.pkl)")

# torchvision name -> (attribute of its classification head, size of that head's input = the feature)
TORCHVISION_HEADS = {
    "r3d_18": ("fc", 512), "mc3_18": ("fc", 512), "r2plus1d_18": ("fc", 512),
    "s3d": ("classifier", 1024),
    "mvit_v1_b": ("head", 768), "mvit_v2_s": ("head", 768),
    "swin3d_t": ("head", 768), "swin3d_s": ("head", 768), "swin3d_b": ("head", 1024),
}
BACKBONES: dict[str, int] = {"i3d_r50": 2048, **{name: size for name, (_, size) in TORCHVISION_HEADS.items()}}

# I3D ResNet-50 stages: (planes, spatial stride, which blocks have the temporal 3×1×1 conv1)
I3D_STAGES = ((64, 1, (1, 1, 1)), (128, 2, (1, 0, 1, 0)), (256, 2, (1, 0, 1, 0, 1, 0)), (512, 2, (0, 1, 0)))


class Bottleneck(nn.Module):
    """conv1 (3×1×1 if temporal, else 1×1×1) → conv2 1×3×3 (spatial stride) → conv3 1×1×1 to 4·planes; + shortcut.

    (B, inplanes, T, H, W) -> (B, 4·planes, T, ⌈H/stride⌉, ⌈W/stride⌉)
    """

    def __init__(self, inplanes: int, planes: int, stride: int, temporal: bool, downsample: bool) -> None:
        super().__init__()
        t = int(temporal)
        self.conv1 = nn.Conv3d(inplanes, planes, (1 + 2 * t, 1, 1), padding=(t, 0, 0), bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(planes, planes, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = nn.Conv3d(planes, 4 * planes, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(4 * planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if downsample:
            self.downsample = nn.Sequential(nn.Conv3d(inplanes, 4 * planes, 1, stride=(1, stride, stride), bias=False),
                                            nn.BatchNorm3d(4 * planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + shortcut)


def i3d_stage(inplanes: int, planes: int, stride: int, temporal: tuple[int, ...]) -> nn.Sequential:
    """One stage: block 0 strides and projects the shortcut, the others keep the shape."""
    blocks = [Bottleneck(inplanes if b == 0 else 4 * planes, planes, stride if b == 0 else 1, bool(t), b == 0)
              for b, t in enumerate(temporal)]
    return nn.Sequential(*blocks)


class I3DResNet50(nn.Module):
    """Vanilla I3D ResNet-50 (no non-local blocks) under the reference's state-dict names (docs/video.md).

    forward: (B, 3, 16, 224, 224) float32 -> (B, 2048), the feature; ``fc`` (2048 -> 400 Kinetics classes) is
    kept only so that the weights file loads, and runs only in ``logits``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(3, 64, (5, 7, 7), stride=2, padding=(2, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool1 = nn.MaxPool3d((2, 3, 3), stride=2)
        self.maxpool2 = nn.MaxPool3d((2, 1, 1), stride=(2, 1, 1))
        (p1, s1, t1), (p2, s2, t2), (p3, s3, t3), (p4, s4, t4) = I3D_STAGES
        self.layer1 = i3d_stage(64, p1, s1, t1)
        self.layer2 = i3d_stage(4 * p1, p2, s2, t2)
        self.layer3 = i3d_stage(4 * p2, p3, s3, t3)
        self.layer4 = i3d_stage(4 * p3, p4, s4, t4)
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(4 * p4, 400)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, 2048); shapes below for T = 16, H = W = 224."""
        x = self.maxpool1(self.relu(self.bn1(self.conv1(x))))  # (B, 64, 4, 55, 55)
        x = self.maxpool2(self.layer1(x))  # (B, 256, 2, 55, 55)
        x = self.layer4(self.layer3(self.layer2(x)))  # (B, 2048, 2, 7, 7)
        return self.avgpool(x).flatten(1)  # (B, 2048)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """(B, 2048) features -> (B, 400) Kinetics-400 class scores: the head, not part of the features."""
        return self.fc(features)


def standin_i3d_state_dict() -> dict[str, torch.Tensor]:
    """Deterministic stand-in weights for ``I3DResNet50``: the parity README's rule (``i3d_r50_parity.pt``).

    These are not Kinetics weights: features made with them are not the field's features and say nothing of how
    a method does on them; they exist for tests, benchmarks and the download-free demo. Each tensor comes from its
    key alone: key index i (state-dict order) draws from ``torch.Generator().manual_seed(1000 + i)``;
    ``num_batches_tracked`` zeros; ``running_mean`` 0.1·randn; ``running_var`` 1 + 0.5·rand; a ``weight`` of ≥ 2
    dims randn·sqrt(2 / fan_in), of 1 dim 1 + 0.1·randn; a BatchNorm ``bias`` 0.1·randn; any other (``fc.bias``)
    0.02·randn. The global RNG is left alone.
    """
    with torch.device("meta"):  # shapes and dtypes only: no initialisation, no global RNG draws
        layout = I3DResNet50().state_dict()
    state = {}
    for i, (key, meta) in enumerate(layout.items()):
        shape, g = meta.shape, torch.Generator().manual_seed(1000 + i)
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros(shape, dtype=meta.dtype)
        elif key.endswith(".running_mean"):
            state[key] = 0.1 * torch.randn(shape, generator=g)
        elif key.endswith(".running_var"):
            state[key] = 1 + 0.5 * torch.rand(shape, generator=g)
        elif key.endswith(".weight") and len(shape) >= 2:
            state[key] = torch.randn(shape, generator=g) * (2.0 / math.prod(shape[1:])) ** 0.5
        elif key.endswith(".weight"):
            state[key] = 1 + 0.1 * torch.randn(shape, generator=g)
        elif key.endswith(".bias") and key.removesuffix(".bias") + ".running_mean" in layout:
            state[key] = 0.1 * torch.randn(shape, generator=g)
        else:
            state[key] = 0.02 * torch.randn(shape, generator=g)
    return state


@contextmanager
def batchnorm_estimation(net: nn.Module) -> Iterator[nn.Module]:
    """Re-estimate the running statistics of every BatchNorm of ``net`` from what it runs inside the block, with
    no label (the usual recalibration of a net whose statistics do not fit its input): each BatchNorm forgets
    its statistics and keeps the plain average of the means and variances of the batches it sees (train mode,
    ``momentum=None``; each batch is normalised by its own statistics meanwhile). On leaving, the BatchNorms are
    back in eval mode with their momenta; weights and biases are never touched. Run at least one batch inside.
    """
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    try:
        yield net
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
            m.eval()


def file_id(path: str | os.PathLike) -> str:
    """The first 16 hex digits of the file's sha256: names the weights in the features' settings."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:16]


def read_state_dict(path: str | os.PathLike) -> Mapping[str, torch.Tensor]:
    """The tensors of a weights file: a plain state dict or one under a ``state_dict`` key (weights only)."""
    if not os.path.isfile(path):
        raise InputError(path, "no such weights file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # whatever torch.load refuses is not a weights file we can read
        raise InputError(path, f"not a PyTorch weights file: torch.load(weights_only=True) fails with "
                               f"{type(e).__name__}") from None
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise InputError(path, "holds no state dict (a mapping of names to tensors)")
    return obj


def load_state(net: nn.Module, state: Mapping[str, torch.Tensor], where: object, layout: str,
               optional: tuple[str, ...] = (), dropped: tuple[str, ...] = ()) -> None:
    """Load ``state`` into ``net`` after checking its layout; one InputError line names what does not match.

    Keys of ``net`` ending in ``num_batches_tracked`` or starting with an ``optional`` prefix may be absent (they
    keep their values); keys of ``state`` starting with a ``dropped`` prefix are ignored.
    """
    expected = net.state_dict()
    missing = [k for k in expected if k not in state
               and not k.endswith("num_batches_tracked") and not k.startswith(optional)]
    unexpected = [k for k in state if k not in expected and not k.startswith(dropped)]
    misshaped = [f"{k} is {tuple(state[k].shape)} not {tuple(expected[k].shape)}"
                 for k in state if k in expected and state[k].shape != expected[k].shape]
    problems = [f"{len(keys)} {what}: {', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''}"
                for what, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped))
                if keys]
    if problems:
        raise InputError(where, f"not {layout} weights: {'; '.join(problems)}")
    net.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=False)


def load_i3d_weights(model: I3DResNet50, path: str | os.PathLike) -> None:
    """Load an I3D ResNet-50 weights file (with or without ``num_batches_tracked`` and ``fc.*``) into ``model``."""
    load_state(model, read_state_dict(path), path, "I3D ResNet-50", optional=("fc.",))


def torchvision_preprocessing(name: str) -> dict:
    """The preprocessing of the Kinetics-400 weights of torchvision model ``name``, read from the weights'
    ``transforms()`` (torchvision.transforms._presets.VideoClassification), nothing downloaded.

    Applied in this order to uint8 frames: resize to ``resize_size`` (one number: the shorter side, the longer one
    truncated; two: exactly (H, W)) with ``interpolation`` and ``antialias`` (the result rounded back to uint8),
    centre crop of ``crop_size`` (H, W), p / 255, then (p - mean) / std per RGB channel.
    """
    transforms = torchvision.models.get_model_weights(name).DEFAULT.transforms()
    return {"resize_size": tuple(transforms.resize_size), "crop_size": tuple(transforms.crop_size),
            "mean": tuple(transforms.mean), "std": tuple(transforms.std),
            "interpolation": transforms.interpolation.value,
            "antialias": False}  # hard-coded in VideoClassification.forward


def torchvision_net(name: str, weights: str | None, random_ok: bool = False) -> tuple[nn.Module, str]:
    """torchvision's ``name`` with its head replaced by ``nn.Identity``: (B, 3, T, H, W) -> (B, D), and its
    weights_id. ``weights``: a weights file, or None: torchvision's DEFAULT weights (downloaded on first use),
    random ones with ``random_ok``."""
    head, _ = TORCHVISION_HEADS[name]
    net = torchvision.models.get_model(name, weights=None)
    setattr(net, head, nn.Identity())  # s3d averages the Identity's output over (T, H, W): still (B, 1024)
    layout = f"torchvision {name}"
    if weights is None and random_ok:
        return net, "random"
    if weights is None:
        default = torchvision.models.get_model_weights(name).DEFAULT
        try:
            state = default.get_state_dict(progress=True, check_hash=True)
        except (OSError, RuntimeError) as e:
            reason = " ".join(str(e).split())[:200] or type(e).__name__
            raise InputError(default.url, f"download failed ({reason}); download it on a connected machine and "
                                          f"pass --weights FILE") from None
        load_state(net, state, default.url, layout, dropped=(f"{head}.",))
        return net, str(default)
    load_state(net, read_state_dict(weights), weights, layout, dropped=(f"{head}.",))
    return net, file_id(weights)


@dataclass(frozen=True)
class Backbone:
    """A feature net ready for ``torch.inference_mode()``, and what the extractor needs to know about it."""
    name: str
    net: nn.Module  # eval mode; (B, 3, T, H, W) float32 -> (B, feature_size)
    feature_size: int
    frames: int  # clip length it takes
    preprocessing: dict | None  # None for i3d_r50 (the extractor's preset decides); see torchvision_preprocessing
    weights_id: str  # "random", the weights file's sha256 (first 16 hex), or the weights enum name when downloaded
    channels_last: bool = False  # the net's weights are channels_last_3d: feed it input in that format


def build_backbone(name: str, weights: str | None, *, random_ok: bool = False) -> Backbone:
    """The backbone ``name`` (a key of BACKBONES) with ``weights``: a file, or None: torchvision's published
    weights (downloaded on first use; i3d_r50 has none to download), random ones with ``random_ok`` (tests)."""
    if name not in BACKBONES:
        raise InputError("--backbone", f"unknown backbone {name!r}; choose from {', '.join(BACKBONES)}")
    if name != "i3d_r50":
        net, weights_id = torchvision_net(name, weights, random_ok)
        return Backbone(name, net.eval(), BACKBONES[name], CLIP_FRAMES, torchvision_preprocessing(name), weights_id)
    if weights is None and not random_ok:
        raise InputError("--weights", f"required for i3d_r50: pass --weights {I3D_WEIGHTS_HELP}")
    net = I3DResNet50()
    if weights is not None:
        load_i3d_weights(net, weights)
    net = net.to(memory_format=torch.channels_last_3d)  # 1.3-1.5x faster on CPU, fp32 and bf16 alike
    return Backbone(name, net.eval(), BACKBONES[name], CLIP_FRAMES, None,
                    "random" if weights is None else file_id(weights), channels_last=True)
