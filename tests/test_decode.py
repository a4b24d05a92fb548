"""Decoding with PyAV: frame count and order, timestamps and resampling, grey and odd-size sources,
chunked streaming, a one-line reason for every unreadable file, and a cut file read as far as it goes.
Videos are written in the test."""
import re
from fractions import Fraction

import numpy as np
import pytest

from tests.videos import frame_index, marked_frames, write_audio, write_video
from video.decode import VideoError, VideoInfo, probe, read_frames
from video.reader import DecodeReport

VFR_PTS_MS = [0, 40, 80, 200, 240, 400, 410, 420]  # each frame lasts 40 ms by default: the video ends at 460 ms


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("videos")
    frames = marked_frames(40, noise=5)
    colours = np.random.default_rng(1).integers(0, 256, (3, 239, 321, 3), dtype=np.uint8)
    grey = np.random.default_rng(2).integers(0, 256, (4, 48, 64), dtype=np.uint8)
    text = root / "notes.mp4"
    text.write_text("not a video\n")
    return {
        "mp4": write_video(root / "x264.mp4", frames),  # B-frames: decoding order differs from presentation order
        "mkv": write_video(root / "x264.mkv", frames),
        "avi": write_video(root / "mpeg4.avi", frames, codec="mpeg4", options={"qmax": "4"}),
        "faststart": write_video(root / "faststart.mp4", frames, codec="mpeg4",
                                 options={"qmax": "4", "movflags": "faststart"}),
        "vfr": write_video(root / "vfr.mkv", marked_frames(8), pts=VFR_PTS_MS, time_base=Fraction(1, 1000)),
        "vfr_late": write_video(root / "vfr_late.mkv", marked_frames(8), pts=[1000 + t for t in VFR_PTS_MS],
                                time_base=Fraction(1, 1000)),  # as a clip cut from a longer video
        "odd": write_video(root / "odd.mkv", marked_frames(5, 239, 321), pix_fmt="yuv444p"),
        "odd_lossless": write_video(root / "odd.nut", colours, codec="ffv1", pix_fmt="bgr0"), "colours": colours,
        "grey": write_video(root / "grey.mkv", grey, codec="ffv1", pix_fmt="gray"), "grey_frames": grey,
        "audio": write_audio(root / "audio.wav"),
        "zero": write_video(root / "zero.avi", marked_frames(0), codec="mpeg4"),
        "text": text,
        "root": root,
    }


def indices(path, **kwargs) -> list[int]:
    return [frame_index(frame) for chunk in read_frames(path, **kwargs) for frame in chunk]


@pytest.mark.parametrize("kind", ["mp4", "mkv", "avi"])
def test_every_frame_in_presentation_order(videos, kind):
    chunks = list(read_frames(videos[kind], chunk=16))
    assert [c.shape for c in chunks] == [(16, 48, 64, 3), (16, 48, 64, 3), (8, 48, 64, 3)]
    assert all(c.dtype == np.uint8 for c in chunks)
    assert [frame_index(f) for c in chunks for f in c] == list(range(40))


def test_probe(videos):
    assert probe(videos["mp4"]) == VideoInfo(str(videos["mp4"]), 64, 48, 25.0, 40, 1.6)
    info = probe(videos["mkv"])  # Matroska states no frame count
    assert (info.width, info.height, info.fps, info.frames, info.seconds) == (64, 48, 25.0, None, 1.6)
    assert probe(videos["zero"]).frames is None


@pytest.mark.parametrize("chunk, sizes", [(7, [7, 7, 7, 7, 7, 5]), (1, [1] * 40), (64, [40])])
def test_chunks_never_exceed_chunk(videos, chunk, sizes):
    chunks = list(read_frames(videos["mkv"], chunk=chunk))
    assert [len(c) for c in chunks] == sizes
    assert [frame_index(f) for c in chunks for f in c] == list(range(40))


def test_resampling_a_constant_rate(videos):
    # 25 fps -> 10 fps: output k at k/10 s shows frame floor(2.5 k); 16 outputs before the end at 1.6 s
    assert indices(videos["mp4"], fps=10) == [0, 2, 5, 7, 10, 12, 15, 17, 20, 22, 25, 27, 30, 32, 35, 37]
    # 25 -> 50 fps: every frame twice
    assert indices(videos["mkv"], fps=50) == [k // 2 for k in range(80)]


@pytest.mark.parametrize("kind", ["vfr", "vfr_late"])
def test_variable_frame_rate_by_timestamps(videos, kind):
    # at the nominal 25 fps (slots of 40 ms): every frame on its nearest slot, 0 40 80 | 200 240 | 400 410 420;
    # the empty slots (120, 160 ms; 280-360 ms) repeat the frame before; 410 and 420 come faster than the slots,
    # so each takes the slot after its predecessor's; the last one lasts until 460 ms (slot 12)
    assert indices(videos[kind]) == [0, 1, 2, 2, 2, 3, 4, 4, 4, 4, 5, 6, 7]
    # times from the first frame; output k at k * 100 ms: 0 -> frame 0 (0-40 ms), 100 -> 2 (80-200),
    # 200 -> 3, 300 -> 4 (240-400), 400 -> 5
    assert indices(videos[kind], fps=10) == [0, 2, 3, 4, 5]
    # every 20 ms up to 440 ms (the last frame, at 420 ms, lasts 40 ms)
    assert indices(videos[kind], fps=50) == [0, 0, 1, 1] + [2] * 6 + [3, 3] + [4] * 8 + [5, 7, 7]


def test_grey_source_decodes_to_equal_rgb_channels(videos):
    frames = np.concatenate(list(read_frames(videos["grey"])))
    assert frames.shape == (4, 48, 64, 3)
    for ch in range(3):
        np.testing.assert_array_equal(frames[..., ch], videos["grey_frames"])


def test_odd_size_decodes_at_its_own_size(videos):
    info = probe(videos["odd"])
    assert (info.width, info.height) == (321, 239)
    chunks = list(read_frames(videos["odd"]))
    assert chunks[0].shape == (5, 239, 321, 3)
    assert [frame_index(f) for f in chunks[0]] == list(range(5))
    # lossless RGB at an odd size: the exact pixels, channels in RGB order
    np.testing.assert_array_equal(np.concatenate(list(read_frames(videos["odd_lossless"]))), videos["colours"])
    resampled = np.concatenate(list(read_frames(videos["odd_lossless"], fps=50)))
    np.testing.assert_array_equal(resampled, np.repeat(videos["colours"], 2, axis=0))


@pytest.mark.parametrize("kind, reason", [
    ("missing", "no such file"),
    ("root", "is a directory, not a video file"),
    ("text", "not a video file (invalid data)"),
    ("audio", "no video stream"),
])
def test_unreadable_files(videos, kind, reason):
    path = videos["root"] / "missing.mp4" if kind == "missing" else videos[kind]
    with pytest.raises(VideoError) as probed:
        probe(path)
    with pytest.raises(VideoError) as read:
        next(read_frames(path))
    assert str(probed.value) == str(read.value) == reason


def test_zero_frames(videos):
    with pytest.raises(VideoError, match="^no frames$"):
        list(read_frames(videos["zero"]))


def cut(path, fraction: float, root) -> str:
    data = path.read_bytes()
    target = root / f"cut_{fraction}_{path.name}"
    target.write_bytes(data[:int(len(data) * fraction)])
    return target


def test_cut_mp4_without_its_index_is_unreadable(videos):
    with pytest.raises(VideoError, match=r"^not a video file \(invalid data\)$"):  # mp4's index (moov) is at the end
        list(read_frames(cut(videos["mp4"], 0.5, videos["root"])))


@pytest.mark.parametrize("kind", ["faststart", "mkv"])  # (this small AVI's first packet is past half its bytes)
def test_cut_in_half_is_read_as_far_as_it_goes(videos, kind):
    report = DecodeReport()
    got = indices(cut(videos[kind], 0.5, videos["root"]), report=report)
    # the frames before the cut, in order (the last, partly cut packet may decode as its predecessor or not at all)
    assert 5 <= len(got) < 30 and got[:-1] == list(range(len(got) - 1)) and got[-1] in (len(got) - 2, len(got) - 1)
    assert re.fullmatch(r"truncated: the stream ends at 0\.\d\d s of 1\.60 s", report.truncated)
    assert report.warnings() == [report.truncated]


@pytest.mark.parametrize("fraction", [0.2, 0.35, 0.65, 0.8])
@pytest.mark.parametrize("kind", ["mp4", "faststart", "mkv", "avi"])
def test_every_cut_is_one_line_error_or_read_with_one_line_warnings(videos, kind, fraction):
    report = DecodeReport()
    try:
        got = indices(cut(videos[kind], fraction, videos["root"]), report=report)
    except VideoError as error:
        assert str(error) and "\n" not in str(error)
        return
    assert got and got == sorted(got) and report.truncated
    assert all(line and "\n" not in line for line in report.warnings())


def test_a_few_missing_frames_are_not_truncation(videos):
    # the last 5% of the bytes hold the last few of 40 frames: under 10% missing is within the rule's slack
    report = DecodeReport()
    got = indices(cut(videos["faststart"], 0.95, videos["root"]), report=report)
    assert 36 <= len(got) < 40 and got[:36] == list(range(36)) and got == sorted(got)
    assert report.truncated == ""


def test_bad_arguments(videos):
    with pytest.raises(ValueError, match="chunk"):
        next(read_frames(videos["mp4"], chunk=0))
    with pytest.raises(ValueError, match="fps"):
        next(read_frames(videos["mp4"], fps=0))
