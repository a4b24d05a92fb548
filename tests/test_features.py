"""Feature layouts: memory-mapped reads, per-video == concatenated, and one test per kind of bad input."""
import pickle

import numpy as np
import pytest

from dataset.features import ConcatFeatures, PerVideoFeatures, check_finite, open_features, video_key
from utils.errors import InputError

LENGTHS = [5, 1, 7, 3]
C, D = 10, 8


@pytest.fixture
def data() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((sum(LENGTHS), C, D)).astype(np.float32)


@pytest.fixture
def ranges() -> np.ndarray:
    ends = np.cumsum(LENGTHS)
    return np.stack([ends - LENGTHS, ends], axis=1).astype(np.int64)


def write_concat(tmp_path, data, ranges=None):
    np.save(tmp_path / "concat.npy", data)
    if ranges is not None:
        np.save(tmp_path / "ranges.npy", ranges)
    return str(tmp_path / "concat.npy"), None if ranges is None else str(tmp_path / "ranges.npy")


def write_per_video(tmp_path, data, ranges, kind: str) -> str:
    """Per-video files under tmp_path/feat, a list file with relative paths; kind: 10crop, 1crop, crops."""
    (tmp_path / "feat").mkdir(exist_ok=True)
    lines = []
    for v, (a, b) in enumerate(ranges):
        name = f"feat/Video{v:03d}_x264_i3d"
        if kind == "10crop":
            np.save(tmp_path / f"{name}.npy", data[a:b])
            lines.append(f"{name}.npy")
        elif kind == "1crop":
            np.save(tmp_path / f"{name}.npy", data[a:b, 0])
            lines.append(f"{name}.npy")
        else:
            for c in reversed(range(data.shape[1])):   # out of order on purpose
                np.save(tmp_path / f"{name}__{c}.npy", data[a:b, c])
                lines.append(f"{name}__{c}.npy")
    (tmp_path / "test.list").write_text("\n".join(lines) + "\n")
    return str(tmp_path / "test.list")


def test_concat_is_memory_mapped_and_gathers_rows(tmp_path, data, ranges):
    path, rpath = write_concat(tmp_path, data, ranges)
    source = ConcatFeatures(path, rpath)
    assert isinstance(source.array, np.memmap)
    assert (source.n_snippets, source.n_crops, source.feature_size) == data.shape
    np.testing.assert_array_equal(source.ranges, ranges)
    rows = np.array([0, 3, 4, 15], dtype=np.int64)
    out = source.gather(rows)
    assert out.dtype == np.float32 and not isinstance(out, np.memmap)
    np.testing.assert_array_equal(out, data[rows])


def test_two_dimensional_array_is_one_crop_and_float64_becomes_float32(tmp_path, data):
    path, _ = write_concat(tmp_path, data[:, 0].astype(np.float64))
    source = ConcatFeatures(path)
    assert source.n_crops == 1 and source.ranges is None
    out = source.gather(np.array([1, 2]))
    assert out.shape == (2, 1, D) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:, 0], data[1:3, 0])


def test_pickle_carries_the_path_not_the_data(tmp_path, data, ranges):
    source = ConcatFeatures(*write_concat(tmp_path, data, ranges))
    blob = pickle.dumps(source)
    assert len(blob) < data.nbytes // 4
    again = pickle.loads(blob)
    assert again._array is None
    np.testing.assert_array_equal(again.gather(np.arange(6)), data[:6])
    per_video = PerVideoFeatures(write_per_video(tmp_path, data, ranges, "crops"))
    per_video.gather(np.arange(16))
    again = pickle.loads(pickle.dumps(per_video))
    assert len(per_video._maps) == 40 and again._maps == {}
    np.testing.assert_array_equal(again.gather(np.arange(16)), data)


@pytest.mark.parametrize("kind", ["10crop", "1crop", "crops"])
def test_per_video_layout_equals_concatenated(tmp_path, data, ranges, kind):
    source = PerVideoFeatures(write_per_video(tmp_path, data, ranges, kind))
    expected = data[:, :1] if kind == "1crop" else data
    assert (source.n_snippets, source.n_crops, source.feature_size) == expected.shape
    np.testing.assert_array_equal(source.ranges, ranges)
    assert source.video_names == [f"Video{v:03d}_x264" for v in range(len(LENGTHS))]
    np.testing.assert_array_equal(source.gather(np.arange(source.n_snippets)), expected)
    rows = np.array([0, 4, 5, 6, 13, 15])
    np.testing.assert_array_equal(source.gather(rows), expected[rows])


def test_per_video_root_and_absolute_paths(tmp_path, data, ranges):
    list_file = write_per_video(tmp_path, data, ranges, "10crop")
    lines = (tmp_path / "test.list").read_text().split()
    moved = tmp_path / "elsewhere.list"
    moved.write_text(f"{tmp_path / lines[0]}\n" + "\n".join(lines[1:]))
    source = PerVideoFeatures(str(moved), root=str(tmp_path))
    np.testing.assert_array_equal(source.gather(np.arange(16)), data)
    assert open_features(list_file).n_snippets == 16


def test_open_features_picks_the_layout(tmp_path, data, ranges):
    path, rpath = write_concat(tmp_path, data, ranges)
    assert isinstance(open_features(path, rpath), ConcatFeatures)
    list_file = write_per_video(tmp_path, data, ranges, "10crop")
    assert isinstance(open_features(list_file), PerVideoFeatures)
    assert isinstance(open_features(list_file=list_file), PerVideoFeatures)
    with pytest.raises(InputError, match=r"ranges\.npy: the per-video layout takes its video ranges from .*test\.list$"):
        open_features(list_file, ranges=rpath)


def test_video_key():
    assert video_key("/a/b/Abuse028_x264_i3d__7.npy") == "Abuse028_x264"
    assert video_key("Abuse028_x264.mp4") == "Abuse028_x264"
    assert video_key("01_0014_i3d.npy") == "01_0014"


def test_check_finite_scans_in_chunks(tmp_path, data):
    source = ConcatFeatures(write_concat(tmp_path, data)[0])
    check_finite(source, chunk_rows=3)
    data[11, 4, 2] = np.nan
    source = ConcatFeatures(write_concat(tmp_path, data)[0])
    with pytest.raises(InputError, match=r"concat\.npy: non-finite .* row 11, crop 4"):
        check_finite(source, chunk_rows=3)


# --- bad input: one test each; every message names the file ---------------------------------------

def test_truncated_npy(tmp_path, data):
    path, _ = write_concat(tmp_path, data)
    with open(path, "r+b") as f:
        f.truncate(200)
    with pytest.raises(InputError, match=r"concat\.npy: truncated or unreadable \.npy"):
        ConcatFeatures(path)
    (tmp_path / "garbage.npy").write_bytes(b"not an array")
    with pytest.raises(InputError, match=r"garbage\.npy: truncated or unreadable"):
        open_features(str(tmp_path / "garbage.npy"))
    np.savez(tmp_path / "archive.npz", x=data)
    with pytest.raises(InputError, match=r"archive\.npz: a \.npz archive, expected a \.npy file"):
        open_features(str(tmp_path / "archive.npz"))
    with pytest.raises(InputError, match=r"truncated or unreadable"):
        open_features(str(tmp_path))


def test_truncated_per_video_file_names_list_line(tmp_path, data, ranges):
    list_file = write_per_video(tmp_path, data, ranges, "10crop")
    with open(tmp_path / "feat/Video002_x264_i3d.npy", "r+b") as f:
        f.truncate(300)
    with pytest.raises(InputError, match=r"Video002_x264_i3d\.npy: truncated.*test\.list, line 3"):
        PerVideoFeatures(list_file)


@pytest.mark.parametrize("shape", [(16,), (16, 2, 2, 2)])
def test_wrong_ndim(tmp_path, shape):
    path, _ = write_concat(tmp_path, np.zeros(shape, np.float32))
    with pytest.raises(InputError, match=r"concat\.npy: expected features shaped \(N, C, D\)"):
        ConcatFeatures(path)


def test_non_float_dtype(tmp_path):
    path, _ = write_concat(tmp_path, np.zeros((4, 2, 3), np.int32))
    with pytest.raises(InputError, match=r"concat\.npy: expected floating-point features, got dtype int32"):
        ConcatFeatures(path)


def test_empty_array(tmp_path):
    path, _ = write_concat(tmp_path, np.zeros((0, 2, 3), np.float32))
    with pytest.raises(InputError, match=r"concat\.npy: no snippets \(T = 0\)"):
        ConcatFeatures(path)


@pytest.mark.parametrize("value, name", [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")])
def test_non_finite_in_gathered_rows(tmp_path, data, value, name):
    data[9, 2, 5] = value
    source = ConcatFeatures(write_concat(tmp_path, data)[0])
    source.gather(np.array([0, 8, 10]))            # the bad row is not read
    with pytest.raises(InputError, match=r"concat\.npy: non-finite value \(NaN or Inf\) in row 9, crop 2"):
        source.gather(np.array([0, 8, 9, 10]))


def test_non_finite_in_per_crop_file_names_that_file(tmp_path, data, ranges):
    data[6, 3, 0] = np.nan                         # video 2, snippet 0, crop 3
    source = PerVideoFeatures(write_per_video(tmp_path, data, ranges, "crops"))
    with pytest.raises(InputError, match=r"Video002_x264_i3d__3\.npy: non-finite .* snippet 0, crop 3 "
                                         r"\(global row 6\)"):
        source.gather(np.arange(4, 8))


@pytest.mark.parametrize("bad, message", [
    ([[0, 5], [4, 8]], r"video 1 range \[4, 8\) overlaps or precedes video 0"),
    ([[0, 5], [5, 17]], r"video 1 range \[5, 17\) runs past the end of the features \(16 snippets\)"),
    ([[0, 5], [5, 5], [5, 16]], r"video 1 has range \[5, 5\): T = 0 snippets"),
    ([[5, 16], [0, 5]], r"video 1 range \[0, 5\) overlaps or precedes video 0"),
    ([[-1, 5]], r"video 0 starts at -1"),
    ([0, 5, 16], r"expected video ranges shaped \(V, 2\), got shape \(3,\)"),
    ([[0, 5, 9]], r"expected video ranges shaped \(V, 2\), got shape \(1, 3\)"),
    ([[0.0, 5.0]], r"expected integer video ranges"),
])
def test_bad_ranges(tmp_path, data, bad, message):
    path, rpath = write_concat(tmp_path, data, np.array(bad))
    with pytest.raises(InputError, match=r"ranges\.npy: " + message):
        ConcatFeatures(path, rpath)


def test_ranges_with_a_gap_are_accepted(tmp_path, data):
    source = ConcatFeatures(*write_concat(tmp_path, data, np.array([[0, 5], [7, 16]])))
    assert source.ranges.tolist() == [[0, 5], [7, 16]]


def test_missing_list_entry(tmp_path, data, ranges):
    list_file = write_per_video(tmp_path, data, ranges, "10crop")
    (tmp_path / "feat/Video001_x264_i3d.npy").unlink()
    with pytest.raises(InputError, match=r"Video001_x264_i3d\.npy: missing feature file \(list .*test\.list, "
                                         r"line 2\)"):
        PerVideoFeatures(list_file)


def test_empty_list(tmp_path):
    (tmp_path / "empty.list").write_text("\n\n")
    with pytest.raises(InputError, match=r"empty\.list: empty list file"):
        PerVideoFeatures(str(tmp_path / "empty.list"))


def test_inconsistent_feature_size(tmp_path, data, ranges):
    list_file = write_per_video(tmp_path, data, ranges, "10crop")
    np.save(tmp_path / "feat/Video003_x264_i3d.npy", np.zeros((3, C, D + 1), np.float32))
    with pytest.raises(InputError, match=r"Video003_x264_i3d\.npy: feature size 9 differs from 8 .*line 4"):
        PerVideoFeatures(list_file)


def test_inconsistent_crop_count(tmp_path, data, ranges):
    list_file = write_per_video(tmp_path, data, ranges, "10crop")
    np.save(tmp_path / "feat/Video001_x264_i3d.npy", np.zeros((1, 5, D), np.float32))
    with pytest.raises(InputError, match=r"Video001_x264_i3d\.npy: 5 crops differ from 10"):
        PerVideoFeatures(list_file)


def test_per_crop_files_with_a_missing_crop(tmp_path, data, ranges):
    list_file = write_per_video(tmp_path, data, ranges, "crops")
    lines = [x for x in (tmp_path / "test.list").read_text().split() if x != "feat/Video002_x264_i3d__4.npy"]
    (tmp_path / "test.list").write_text("\n".join(lines))
    with pytest.raises(InputError, match=r"Video002_x264_i3d__9\.npy: crop files of one video"):
        PerVideoFeatures(list_file)


def test_zero_length_video_file(tmp_path, data, ranges):
    list_file = write_per_video(tmp_path, data, ranges, "10crop")
    np.save(tmp_path / "feat/Video002_x264_i3d.npy", np.zeros((0, C, D), np.float32))
    with pytest.raises(InputError, match=r"Video002_x264_i3d\.npy: no snippets \(T = 0\).*line 3"):
        PerVideoFeatures(list_file)


def test_missing_feature_file(tmp_path):
    with pytest.raises(InputError, match=r"nothere\.npy: file not found"):
        open_features(str(tmp_path / "nothere.npy"))


def test_authors_absolute_paths_fall_back_to_root(tmp_path, data, ranges):
    list_file = write_per_video(tmp_path, data, ranges, "10crop")
    names = [line.split("/")[-1] for line in open(list_file).read().split()]
    foreign = tmp_path / "authors.list"
    foreign.write_text("".join(f"/home/someone/UCF_Train_ten_crop_i3d/{n}\n" for n in names))
    source = PerVideoFeatures(str(foreign), root=str(tmp_path / "feat"))
    np.testing.assert_array_equal(source.gather(np.arange(len(data))), data)
