"""Preprocessing presets: resize rule, crop boxes and their order, pixel scaling, last-snippet rule.

``rtfm`` (the default for I3D) and ``gowtham`` follow docs/video.md (Presets); ``torchvision_preset``
builds the preprocessing of a torchvision video model's weights. The pipeline per video:
``resize`` each decoded chunk -> ``snippets`` of 16 frames -> ``crops`` of a batch of snippets.
Crop boxes are named tl, tr, bl, br (corners) and c (centre, at round((H - crop) / 2),
round((W - crop) / 2) as torchvision's center_crop); 10 crops = the five boxes in the preset's
order, then the same five of the horizontally mirrored frame; 5 = the first five; 1 = the centre.
"""
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image
from torchvision.transforms import InterpolationMode

from utils.snippet import FRAMES_PER_SNIPPET as SNIPPET
TORCHVISION_ORDER = ("tl", "tr", "bl", "br", "c")  # torchvision's five_crop / TenCrop
GOWTHAM_ORDER = ("tl", "tr", "c", "bl", "br")


def resized_size(resize_to: Sequence[int], height: int, width: int) -> tuple[int, int]:
    """(H, W) -> (h, w): ``(s,)`` makes the shorter side s and the longer int(s * long / short), as
    torchvision's Resize; ``(h, w)`` is the size itself."""
    if len(resize_to) == 2:
        return resize_to[0], resize_to[1]
    short = resize_to[0]
    if height <= width:
        return short, int(short * width / height)
    return int(short * height / width), short


def _boxes(height: int, width: int, crop: int) -> dict[str, tuple[int, int]]:
    """The five crop boxes' (top, left) on a (height, width) frame; the centre rounds halves to even, as
    torchvision's center_crop (Python's round)."""
    return {"tl": (0, 0), "tr": (0, width - crop), "bl": (height - crop, 0), "br": (height - crop, width - crop),
            "c": (round((height - crop) / 2), round((width - crop) / 2))}


@dataclass(frozen=True)
class Preset:
    """How frames become the backbone's input. ``mean`` and ``std`` are on the 0..255 pixel scale:
    a value p becomes (p - mean) / std per RGB channel."""
    name: str
    crop_size: int
    resize_to: tuple[int, ...]  # (short side,) or (H, W)
    interpolation: str = "bilinear"  # a torchvision InterpolationMode value; "lanczos" resizes with PIL
    antialias: bool = True
    crop_order: tuple[str, ...] = TORCHVISION_ORDER
    mean: tuple[float, float, float] = (114.75, 114.75, 114.75)
    std: tuple[float, float, float] = (57.375, 57.375, 57.375)
    pad_last: bool = True  # a final partial snippet repeats its last frame; else it is dropped
    min_frames: int = 1  # videos with fewer frames are refused

    def __post_init__(self) -> None:
        if len(self.resize_to) not in (1, 2) or min(self.resize_to) < self.crop_size:
            raise ValueError(f"preset {self.name}: resize_to {self.resize_to} must be 1 or 2 sizes >= the crop "
                             f"{self.crop_size}")
        if sorted(self.crop_order) != sorted(TORCHVISION_ORDER):
            raise ValueError(f"preset {self.name}: crop_order {self.crop_order} must order {TORCHVISION_ORDER}")
        if not self.pad_last and self.min_frames < SNIPPET:
            raise ValueError(f"preset {self.name}: dropping the last partial snippet needs min_frames >= {SNIPPET}")

    def refusal(self, frames: int) -> str | None:
        """Why a video of ``frames`` frames is refused (one line), or None."""
        if frames <= 0:
            return "no frames"
        if frames < self.min_frames:
            return f"too short: {frames} frames, the {self.name} preset needs at least {self.min_frames}"
        return None

    def snippet_count(self, frames: int) -> int:
        """Snippets a video of ``frames`` frames yields; 0 when refused."""
        if self.refusal(frames):
            return 0
        return -(-frames // SNIPPET) if self.pad_last else frames // SNIPPET

    def resize(self, frames: np.ndarray) -> torch.Tensor:
        """(t, H, W, 3) uint8 -> (t, h, w, 3) uint8 at the preset's size (unchanged when already that size)."""
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"preset {self.name}: frames must be (t, H, W, 3) uint8, "
                             f"got {frames.shape} {frames.dtype}")
        h, w = resized_size(self.resize_to, frames.shape[1], frames.shape[2])
        if self.interpolation == "lanczos":
            return torch.from_numpy(np.stack(
                [np.asarray(Image.fromarray(f).resize((w, h), Image.Resampling.LANCZOS)) for f in frames]))
        x = torch.from_numpy(frames).permute(0, 3, 1, 2)
        x = TF.resize(x, [h, w], interpolation=InterpolationMode(self.interpolation), antialias=self.antialias)
        return x.permute(0, 2, 3, 1).contiguous()

    def snippets(self, chunks: Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
        """Resized (t, h, w, 3) uint8 chunks -> (16, h, w, 3) uint8 snippets, the last-snippet rule applied.

        Works on a stream of unknown length: nothing is yielded before ``min_frames`` frames have
        arrived, so a refused video yields nothing (the caller reports ``refusal(total)``); the count
        is ``snippet_count(total)``. Memory holds at most 16 frames plus one chunk.
        """
        buffer: torch.Tensor | None = None
        seen = 0
        for chunk in chunks:
            seen += len(chunk)
            buffer = chunk if buffer is None else torch.cat([buffer, chunk])
            while seen >= self.min_frames and len(buffer) >= SNIPPET:
                yield buffer[:SNIPPET]
                buffer = buffer[SNIPPET:]
        if self.pad_last and buffer is not None and len(buffer) and seen >= self.min_frames:
            yield torch.cat([buffer, buffer[-1:].expand(SNIPPET - len(buffer), *buffer.shape[1:])])

    def crops(self, snippets: torch.Tensor, n_crops: int) -> torch.Tensor:
        """(S, 16, h, w, 3) uint8 -> (S, n_crops, 3, 16, crop, crop) float32, scaled; n_crops is 10, 5 or 1."""
        if n_crops not in (10, 5, 1):
            raise ValueError(f"preset {self.name}: n_crops must be 10, 5 or 1, got {n_crops}")
        height, width, c = snippets.shape[2], snippets.shape[3], self.crop_size
        boxes = _boxes(height, width, c)
        order = ("c",) if n_crops == 1 else self.crop_order
        views = [snippets[:, :, top:top + c, left:left + c] for top, left in (boxes[k] for k in order)]
        if n_crops == 10:  # a box of the mirrored frame = the mirrored box at mirrored columns
            views += [snippets[:, :, top:top + c, width - left - c:width - left].flip(3)
                      for top, left in (boxes[k] for k in order)]
        x = torch.stack(views, 1).permute(0, 1, 5, 2, 3, 4).contiguous().float()
        mean = torch.tensor(self.mean, dtype=torch.float32).view(3, 1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(3, 1, 1, 1)
        return x.sub_(mean).div_(std)


PRESETS: dict[str, Preset] = {
    "rtfm": Preset("rtfm", crop_size=224, resize_to=(256,)),
    "gowtham": Preset("gowtham", crop_size=224, resize_to=(256, 340), interpolation="lanczos",
                      crop_order=GOWTHAM_ORDER, mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5),
                      pad_last=False, min_frames=SNIPPET + 1),
}


def torchvision_preset(name: str, resize_size: int | Sequence[int], crop_size: int | Sequence[int],
                       mean: Sequence[float], std: Sequence[float], interpolation: str = "bilinear",
                       antialias: bool = False) -> Preset:
    """The preprocessing of torchvision video weights (``weights.transforms()``: mean/std on the 0..1 scale,
    antialias off as VideoClassification hard-codes it) as a preset with 10/5/1 crops."""
    resize_to = (resize_size,) if isinstance(resize_size, int) else tuple(resize_size)
    crop = (crop_size,) if isinstance(crop_size, int) else tuple(crop_size)
    if len(crop) not in (1, 2) or crop[0] != crop[-1]:
        raise ValueError(f"preset {name}: crop_size {crop_size} must be one size or a square (H, W)")
    return Preset(name, crop_size=crop[0], resize_to=resize_to, interpolation=interpolation, antialias=antialias,
                  mean=tuple(255 * m for m in mean), std=tuple(255 * s for s in std))


def preset_for(backbone: str, preprocessing: dict | None, preset: str | None = None) -> Preset:
    """The preset of ``backbone``: for i3d_r50 (``preprocessing`` None) the one named ``preset`` (rtfm by
    default), for a torchvision model its weights' own ``preprocessing``."""
    if preprocessing is None:
        return PRESETS[preset or "rtfm"]
    return torchvision_preset(backbone, **preprocessing)
