"""Real recordings read as players show them: a dropped-frame AVI (444 index slots, 68 coded frames), phone
rotation, odd sizes, interlaced and 10-bit sources, audio as stream 0, a damaged stretch, a file cut short; and
constant-rate files decoded to exactly their frames. Files are written here; the ffmpeg command line, where
installed, is the independent reference."""
import csv
import subprocess
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from torch import nn

from deploy.score import EventRules, score_video
from tests.videos import (FFMPEG, FINE_STEP, avi_index, damaged_copy, ffmpeg_frames, ffprobe_frame_times,
                          frame_index, marked_frames, write_video)
from video.backbones import Backbone
from video.decode import VideoError, probe, read_frames
from video.extract import Extractor
from video.presets import PRESETS
from video.reader import DecodeReport
from video.writer import extract_one

SLOTS = 444  # the dropped-frame AVI: 444 index slots at 15 fps, 68 of them coded frames, the rest empty
CODED = [0, 11, 17] + sorted(np.random.default_rng(0).choice(np.arange(18, 443), 64, replace=False).tolist()) + [443]
needs_ffmpeg = pytest.mark.skipif(not FFMPEG, reason="the ffmpeg command line is not installed")


@pytest.fixture(scope="module")
def drop_avi(tmp_path_factory):
    """A 320x240 Cinepak AVI as screen recorders write them: frame k (grey level k) at slot CODED[k]."""
    return write_video(tmp_path_factory.mktemp("drop") / "drop.avi", marked_frames(68, 240, 320, step=FINE_STEP),
                       fps=15, codec="cinepak", pix_fmt="rgb24", pts=CODED, time_base=Fraction(1, 15))


def read(path, **kwargs) -> tuple[np.ndarray, DecodeReport]:
    report = DecodeReport()
    return np.concatenate(list(read_frames(path, report=report, **kwargs))), report


def on_screen(times: list[float], rate: float, slots: int) -> list[int]:
    """Slot k shows the last frame whose time is at or before k / rate (the frames' times in order)."""
    return [int(np.searchsorted(times, k / rate + 1e-9, side="right")) - 1 for k in range(slots)]


def test_the_dropped_frame_avi_has_444_slots_68_coded(drop_avi):
    sizes = avi_index(drop_avi)  # the file's own index, read from its bytes
    assert len(sizes) == SLOTS and sum(s > 0 for s in sizes) == 68
    assert probe(drop_avi).frames == SLOTS and probe(drop_avi).seconds == pytest.approx(SLOTS / 15)


def test_dropped_frames_repeat_the_previous_one(drop_avi):
    frames, report = read(drop_avi)
    expected = on_screen([s / 15 for s in CODED], 15, SLOTS)
    assert [frame_index(f, FINE_STEP) for f in frames] == expected
    assert (report.decoded, report.shown, report.repeated, report.warnings()) == (68, SLOTS, SLOTS - 68, [])
    # on a grid: the same at 15 fps, every third slot at 5 fps
    assert np.array_equal(read(drop_avi, fps=15)[0], frames)
    assert [frame_index(f, FINE_STEP) for f in read(drop_avi, fps=5)[0]] == expected[::3]


@needs_ffmpeg
def test_dropped_frame_timeline_is_ffmpegs(drop_avi):
    times = ffprobe_frame_times(drop_avi)  # the coded frames' times as ffprobe reads them
    assert len(times) == 68 and times[:3] == pytest.approx([0, 11 / 15, 17 / 15])
    packets = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
                              "stream=nb_frames,nb_read_packets", "-of", "csv=p=0", str(drop_avi)],
                             check=True, capture_output=True, text=True).stdout.split(",")
    assert [int(n) for n in packets] == [SLOTS, 68]
    ours = read(drop_avi)[0]
    np.testing.assert_array_equal(ours, ffmpeg_frames(drop_avi, 320, 240, "-vf", "fps=15"))
    assert [frame_index(f, FINE_STEP) for f in read(drop_avi, fps=5)[0]] == on_screen(times, 5, SLOTS // 3)


class FrameMeans(nn.Module):
    """A stand-in backbone: (B, 3, 16, h, w) -> (B, 48), each frame's mean per channel (which frame a slot shows)."""

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return clips.mean(dim=(3, 4)).flatten(1)


def frame_means_extractor(fps: float | None = None) -> Extractor:
    return Extractor(Backbone("i3d_r50", FrameMeans(), 48, 16, None, "frame-means"), PRESETS["rtfm"], crops=1,
                     fps=fps)


def shown_frames(features: np.ndarray) -> list[int]:
    """(S, 1, 48) frame means -> per frame, the rank of its grey level: the coded frame it shows."""
    levels = features[:, 0, :16].reshape(-1).round(4)  # channel 0 of each snippet's 16 frames
    return list(np.unique(levels, return_inverse=True)[1])


@pytest.mark.parametrize("fps", [None, 15.0])
def test_dropped_frame_avi_extracts_28_snippets_covering_its_time(drop_avi, tmp_path, fps):
    extractor = frame_means_extractor(fps)
    outcome = extract_one(extractor, str(drop_avi), "drop", tmp_path)
    assert outcome.status == "done", outcome.reason
    features = np.load(tmp_path / "drop_i3d.npy")
    assert features.shape == (28, 1, 48)  # ceil(444 / 16)
    expected = on_screen([s / 15 for s in CODED], 15, SLOTS)
    assert shown_frames(features) == expected + [67] * (28 * 16 - SLOTS)  # the last snippet padded with its last
    info = outcome.info
    assert (info["frames"], info["snippets"], info["decoded_frames"], info["repeated_frames"], info["warnings"]) \
        == (SLOTS, 28, 68, SLOTS - 68, [])
    assert info["seconds"] == pytest.approx(SLOTS / 15)


def test_dropped_frame_avi_scores_a_row_per_displayed_frame(drop_avi, tmp_path):
    def score(x: torch.Tensor) -> torch.Tensor:
        return x[:, 0, :16].mean(1).sigmoid()
    report = score_video(frame_means_extractor(), score, str(drop_avi), "drop", tmp_path, EventRules(),
                         torch.device("cpu"))
    with open(tmp_path / "scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == report.frames == SLOTS and len(report.snippet_scores) == 28
    assert [float(r["time"]) for r in rows] == pytest.approx([round(k / 15, 3) for k in range(SLOTS)])
    assert report.warnings == []


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotation_is_applied_as_players_do(tmp_path, rotation):
    frames = np.zeros((4, 48, 64, 3), np.uint8)
    frames[:, :16, :16] = 255  # a white top-left corner
    path = write_video(tmp_path / "phone.mp4", frames, rotation=rotation)
    got, report = read(path)
    turned = np.rot90(frames, rotation // 90, axes=(1, 2))  # counterclockwise, as the display matrix says
    assert got.shape == turned.shape and np.abs(got.astype(int) - turned).mean() < 2
    assert report.rotation == rotation % 360 and (probe(path).height, probe(path).width) == turned.shape[1:3]
    if FFMPEG:
        np.testing.assert_allclose(got, ffmpeg_frames(path, turned.shape[2], turned.shape[1]), atol=2)


@pytest.mark.parametrize("name, options", [
    ("odd.avi", dict(codec="mpeg4", options={"qmax": "4"}, size=(241, 321))),  # 4:2:0 at an odd size
    ("interlaced.ts", dict(options={"flags": "+ildct+ilme"})),  # x264 interlaced, in MPEG-TS as cameras write it
    ("interlaced_mpeg2.ts", dict(codec="mpeg2video", options={"flags": "+ildct+ilme", "qmax": "4"})),
    ("ten_bit.mp4", dict(pix_fmt="yuv420p10le")),
    ("audio_first.mp4", dict(audio_first=True)),
    ("audio_first.mkv", dict(audio_first=True)),
])
def test_sources_decode_to_their_frames(tmp_path, name, options):
    options = dict(options)
    height, width = options.pop("size", (48, 64))
    path = write_video(tmp_path / name, marked_frames(40, height, width, noise=3), **options)
    got, report = read(path)
    assert got.shape == (40, height, width, 3) and [frame_index(f) for f in got] == list(range(40))
    assert (report.decoded, report.repeated, report.warnings()) == (40, 0, [])
    assert probe(path).fps == 25.0 and (probe(path).width, probe(path).height) == (width, height)


def test_damaged_stretch_is_skipped_and_the_rest_read(tmp_path):
    path = write_video(tmp_path / "whole.mp4", marked_frames(40, 96, 128, noise=5))
    damaged = damaged_copy(path, tmp_path / "damaged.mp4", 0.45, 0.55)
    got, report = read(damaged)
    shown = [frame_index(f) for f in got]
    assert len(got) == 40 and shown[:10] == list(range(10)) and shown[-5:] == list(range(35, 40))
    assert shown == sorted(shown) and report.damaged > 0 and report.decoded < 40
    assert report.repeated == 40 - report.decoded and not report.truncated
    assert report.warnings() == [f"{report.damaged} damaged packet(s) skipped, the previous frame shown in their place"]
    if FFMPEG:  # the same frames survive as in ffmpeg, each once
        theirs = [frame_index(f) for f in ffmpeg_frames(damaged, 128, 96, "-fps_mode", "passthrough")]
        assert theirs == sorted(set(shown)) and len(theirs) == report.decoded


def test_a_file_cut_short_keeps_its_frames_with_a_warning(tmp_path, drop_avi):
    whole = write_video(tmp_path / "whole.mp4", marked_frames(40, noise=5), codec="mpeg4",
                        options={"qmax": "4", "movflags": "faststart"}).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) * 6 // 10])
    got, report = read(cut)
    shown = [frame_index(f) for f in got]
    assert 10 < len(got) < 36 and shown[:-1] == list(range(len(got) - 1))
    assert report.truncated.startswith("truncated: the stream ends at ") and report.truncated.endswith(" of 1.60 s")
    # the dropped-frame AVI's empty slots up to its stated length are not truncation
    assert read(drop_avi)[1].truncated == ""


def test_constant_rate_files_decode_to_exactly_their_frames(tmp_path):
    frames = marked_frames(40, noise=5)
    paths = [write_video(tmp_path / "x264.mp4", frames), write_video(tmp_path / "x264.mkv", frames),
             write_video(tmp_path / "mpeg4.avi", frames, codec="mpeg4"),
             write_video(tmp_path / "ntsc.mkv", frames, fps=Fraction(30000, 1001))]  # timestamps rounded to ms
    for path in paths:
        with av.open(str(path)) as container:
            decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
        got, report = read(path)
        np.testing.assert_array_equal(got, decoded)
        assert (report.shown, report.repeated) == (40, 0), path.name


def test_a_file_whose_every_packet_is_damaged_is_an_error(tmp_path):
    path = write_video(tmp_path / "whole.mp4", marked_frames(40, noise=5), codec="mpeg4",
                       options={"qmax": "4", "movflags": "faststart"})
    data = path.read_bytes()
    start = (data.index(b"mdat") + 4) / len(data)  # the index intact, every frame's bytes garbage
    with pytest.raises(VideoError, match=r"^no frames \(\d+ packet\(s\) refused by the decoder\)$"):
        read(damaged_copy(path, tmp_path / "garbage.mp4", start, 1.0))


def test_a_cut_file_is_extracted_and_scored_with_a_warning(tmp_path, capsys):
    whole = write_video(tmp_path / "whole.mp4", marked_frames(40, noise=5), codec="mpeg4",
                        options={"qmax": "4", "movflags": "faststart"}).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) * 6 // 10])
    outcome = extract_one(frame_means_extractor(), str(cut), "cut", tmp_path / "features")
    assert outcome.status == "done" and len(outcome.info["warnings"]) == 1
    assert outcome.info["warnings"][0].startswith("truncated: the stream ends at ")
    assert f"warning: {cut}: truncated: " in capsys.readouterr().out
    report = score_video(frame_means_extractor(), lambda x: x[:, 0, :16].mean(1).sigmoid(), str(cut), "cut",
                         tmp_path / "scores", EventRules(), torch.device("cpu"))
    assert report.warnings == outcome.info["warnings"] and report.frames == outcome.info["frames"]
