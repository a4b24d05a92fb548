"""Presets: resize sizes, crop boxes and order, mirroring, scaling and the last-snippet rule, checked
against values written out by hand from docs/video.md (Presets) and against torchvision's own transforms."""
import numpy as np
import pytest
import torch
import torchvision
import torchvision.transforms.v2.functional as TF

from video.presets import PRESETS, torchvision_preset

RTFM, GOWTHAM = PRESETS["rtfm"], PRESETS["gowtham"]
R3D_MEAN, R3D_STD = (0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989)


def pattern(frames: int, height: int, width: int) -> np.ndarray:
    """(T, H, W, 3) uint8 with value (r + 2c + 50ch + 7t) % 256 at [t, r, c, ch]."""
    t, r, c, ch = np.ogrid[:frames, :height, :width, :3]
    return ((r + 2 * c + 50 * ch + 7 * t) % 256).astype(np.uint8)


def expected_box(frames: int, width: int, top: int, left: int, mirrored: bool = False) -> np.ndarray:
    """(3, T, 224, 224) raw values of the 224 box at (top, left) of pattern frames (of the mirrored frame if asked)."""
    ch, t, i, j = np.ogrid[:3, :frames, :224, :224]
    col = width - 1 - (left + j) if mirrored else left + j
    return ((top + i + 2 * col + 50 * ch + 7 * t) % 256).astype(np.float32)


def test_resize_to_own_size_is_exact():
    r3d = torchvision_preset("r3d_18", (128, 171), (112, 112), R3D_MEAN, R3D_STD)
    for preset, (h, w) in ((RTFM, (256, 341)), (RTFM, (341, 256)), (GOWTHAM, (256, 340)), (r3d, (128, 171))):
        frames = pattern(3, h, w)
        out = preset.resize(frames)
        assert out.dtype == torch.uint8 and torch.equal(out, torch.from_numpy(frames)), (preset.name, h, w)


@pytest.mark.parametrize("preset, size, expected", [
    (RTFM, (240, 320), (256, 341)),  # UCF-Crime
    (RTFM, (239, 321), (256, 343)),  # int(256 * 321 / 239) = int(343.8)
    (RTFM, (320, 240), (341, 256)),  # portrait: the width is the shorter side
    (RTFM, (480, 856), (256, 456)),  # ShanghaiTech: int(256 * 856 / 480) = int(456.5)
    (GOWTHAM, (48, 64), (256, 340)),
    (GOWTHAM, (239, 321), (256, 340)),
    (GOWTHAM, (480, 856), (256, 340)),
    (torchvision_preset("mvit_v2_s", (256,), (224, 224), R3D_MEAN, R3D_STD), (240, 320), (256, 341)),
    (torchvision_preset("r3d_18", (128, 171), (112, 112), R3D_MEAN, R3D_STD), (240, 320), (128, 171)),
])
def test_resize_size_and_constant_frame(preset, size, expected):
    frames = np.full((2, *size, 3), 77, dtype=np.uint8)
    out = preset.resize(frames)
    assert tuple(out.shape) == (2, *expected, 3)
    assert bool((out == 77).all())


def test_rtfm_ten_crops_boxes_order_and_scaling():
    frames = pattern(16, 256, 341)
    out = RTFM.crops(torch.from_numpy(frames)[None], 10)
    assert out.shape == (1, 10, 3, 16, 224, 224) and out.dtype == torch.float32
    # torchvision's TenCrop order; centre at round(32 / 2) = 16, round(117 / 2) = 58 (round half to even)
    boxes = [(0, 0), (0, 117), (32, 0), (32, 117), (16, 58)]
    for k, (top, left) in enumerate(boxes):
        for mirrored in (False, True):
            expected = (expected_box(16, 341, top, left, mirrored) - 114.75) / 57.375
            torch.testing.assert_close(out[0, k + 5 * mirrored], torch.from_numpy(expected), rtol=0, atol=1e-6)
    # crop 5 = top-left box of the mirrored frame: row 0, columns 340 down to 117
    assert out[0, 5, 1, 3, 0, 0].item() == pytest.approx(((0 + 2 * 340 + 50 + 21) % 256 - 114.75) / 57.375)
    assert out[0, 5, 1, 3, 0, 223].item() == pytest.approx(((0 + 2 * 117 + 50 + 21) % 256 - 114.75) / 57.375)


def test_rtfm_crops_equal_torchvision_ten_crop():
    frames = pattern(16, 256, 341)
    out = RTFM.crops(torch.from_numpy(frames)[None], 10)[0]
    tv = TF.ten_crop(torch.from_numpy(frames).permute(0, 3, 1, 2), [224, 224])  # 10 × (16, 3, 224, 224)
    for k, crop in enumerate(tv):
        torch.testing.assert_close(out[k], (crop.permute(1, 0, 2, 3).float() - 114.75) / 57.375)


def test_gowtham_ten_crops_boxes_order_and_scaling():
    frames = pattern(16, 256, 340)
    out = GOWTHAM.crops(torch.from_numpy(frames)[None], 10)
    # top-left, top-right, centre, bottom-left, bottom-right, as the community extractor
    boxes = [(0, 0), (0, 116), (16, 58), (32, 0), (32, 116)]
    for k, (top, left) in enumerate(boxes):
        for mirrored in (False, True):
            expected = expected_box(16, 340, top, left, mirrored) * 2 / 255 - 1
            torch.testing.assert_close(out[0, k + 5 * mirrored], torch.from_numpy(expected), rtol=0, atol=1e-6)


@pytest.mark.parametrize("preset, centre", [(RTFM, (16, 58)), (GOWTHAM, (16, 58))])
def test_five_and_one_crops(preset, centre):
    width = 341 if preset is RTFM else 340
    snippets = torch.from_numpy(pattern(16, 256, width))[None].repeat(2, 1, 1, 1, 1)
    ten = preset.crops(snippets, 10)
    five, one = preset.crops(snippets, 5), preset.crops(snippets, 1)
    assert five.shape == (2, 5, 3, 16, 224, 224) and one.shape == (2, 1, 3, 16, 224, 224)
    assert torch.equal(five, ten[:, :5])
    raw = torch.from_numpy(expected_box(16, width, *centre))
    scaled = (raw - 114.75) / 57.375 if preset is RTFM else raw * 2 / 255 - 1
    torch.testing.assert_close(one[1, 0], scaled, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="10, 5 or 1"):
        preset.crops(snippets, 3)


@pytest.mark.parametrize("preset, low, high", [
    (RTFM, -2.0, (255 - 114.75) / 57.375),  # 2.4444...
    (GOWTHAM, -1.0, 1.0),
])
def test_pixel_scaling(preset, low, high):
    frames = np.zeros((16, 256, 341 if preset is RTFM else 340, 3), dtype=np.uint8)
    frames[:, :128] = 255
    out = preset.crops(torch.from_numpy(frames)[None], 10)
    assert out[0, :, :, :, 0, 0].unique().tolist() == pytest.approx([high])  # every crop's top row is 255
    assert out[0, :, :, :, -1, -1].unique().tolist() == pytest.approx([low])


def test_torchvision_preset_matches_weights_transforms():
    frames = pattern(16, 240, 320) // 2 + 40  # no wrap-around edges: resize rounding stays within one level
    preset = torchvision_preset("r3d_18", (128, 171), (112, 112), R3D_MEAN, R3D_STD)
    ours = preset.crops(preset.resize(frames)[None], 1)[0, 0]  # (3, 16, 112, 112)
    transforms = torchvision.models.video.R3D_18_Weights.KINETICS400_V1.transforms()
    theirs = transforms(torch.from_numpy(frames).permute(0, 3, 1, 2))  # (3, 16, 112, 112)
    # one grey level of the resize (torchvision v2's uint8 kernel vs the float path of transforms())
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1.01 / (255 * min(R3D_STD)))
    with pytest.raises(ValueError, match="square"):
        torchvision_preset("x", (128, 171), (112, 100), R3D_MEAN, R3D_STD)


def run_snippets(preset, frames: int, chunk: int) -> list[np.ndarray]:
    """Snippets of a video whose frame t has every value t, fed in chunks: each snippet's frame values."""
    video = torch.arange(frames, dtype=torch.uint8).view(-1, 1, 1, 1).expand(frames, 2, 3, 3)
    snippets = list(preset.snippets(video[i:i + chunk] for i in range(0, frames, chunk)))
    assert all(s.shape == (16, 2, 3, 3) and s.dtype == torch.uint8 for s in snippets)
    assert all(bool((s == s[:, :1, :1, :1]).all()) for s in snippets)
    return [s[:, 0, 0, 0].numpy() for s in snippets]


@pytest.mark.parametrize("chunk", [1, 5, 32])
@pytest.mark.parametrize("frames, count", [(15, 1), (16, 1), (17, 2), (31, 2), (32, 2), (33, 3)])
def test_rtfm_pads_the_last_snippet(frames, count, chunk):
    assert RTFM.snippet_count(frames) == count and RTFM.refusal(frames) is None
    got = run_snippets(RTFM, frames, chunk)
    expected = [[min(16 * i + j, frames - 1) for j in range(16)] for i in range(count)]  # last frame repeated
    assert [s.tolist() for s in got] == expected


@pytest.mark.parametrize("chunk", [1, 5, 32])
@pytest.mark.parametrize("frames, count", [(15, 0), (16, 0), (17, 1), (31, 1), (32, 2), (33, 2)])
def test_gowtham_drops_trailing_frames_and_refuses_short_videos(frames, count, chunk):
    assert GOWTHAM.snippet_count(frames) == count
    reason = GOWTHAM.refusal(frames)
    assert (reason is None) == (count > 0)
    if reason:
        assert reason == f"too short: {frames} frames, the gowtham preset needs at least 17"
    got = run_snippets(GOWTHAM, frames, chunk)
    assert [s.tolist() for s in got] == [list(range(16 * i, 16 * i + 16)) for i in range(count)]


@pytest.mark.parametrize("preset", [RTFM, GOWTHAM])
def test_no_frames_refused(preset):
    assert preset.refusal(0) == "no frames" and preset.snippet_count(0) == 0
    assert list(preset.snippets(iter([]))) == []
