"""Cross-clip windows: release semantics, vectorised gathering, the sampler and the loader."""
import numpy as np
import pytest
import torch

from dataset.features import ConcatFeatures, PerVideoFeatures
from dataset.windows import ShuffledBatchSampler, WindowDataset, gather_windows, make_loader, window_rows
from utils.errors import InputError

LENGTHS = [5, 1, 7, 3, 4]
C, D = 3, 6


@pytest.fixture
def data() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((sum(LENGTHS), C, D)).astype(np.float32)


@pytest.fixture
def ranges() -> np.ndarray:
    ends = np.cumsum(LENGTHS)
    return np.stack([ends - LENGTHS, ends], axis=1).astype(np.int64)


@pytest.fixture
def concat(tmp_path, data, ranges) -> ConcatFeatures:
    np.save(tmp_path / "concat.npy", data)
    np.save(tmp_path / "ranges.npy", ranges)
    return ConcatFeatures(tmp_path / "concat.npy", tmp_path / "ranges.npy")


def per_video(tmp_path, data, ranges, per_crop: bool) -> PerVideoFeatures:
    lines = []
    for v, (a, b) in enumerate(ranges):
        if per_crop:
            for c in range(data.shape[1]):
                np.save(tmp_path / f"v{v}_i3d__{c}.npy", data[a:b, c])
                lines.append(f"v{v}_i3d__{c}.npy")
        else:
            np.save(tmp_path / f"v{v}_i3d.npy", data[a:b])
            lines.append(f"v{v}_i3d.npy")
    (tmp_path / "train.list").write_text("\n".join(lines))
    return PerVideoFeatures(tmp_path / "train.list")


def naive_windows(data, starts, cc, ranges=None):
    """One sample at a time, straight from docs/model.md."""
    n = len(data)
    out = []
    for i in starts:
        if ranges is None:
            rows = [i + k if i + k < n else i for k in range(cc)]
        else:
            end = next(b for a, b in ranges if a <= i < b)
            rows = [min(i + k, end - 1) for k in range(cc)]
        out.append(data[rows].transpose(1, 0, 2))
    return np.stack(out)


def test_window_rows_release_semantics():
    rows = window_rows(np.array([0, 3, 5, 17, 18, 19]), 4, 20, ranges=np.array([[0, 4], [4, 20]]))
    assert rows.tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [5, 6, 7, 8],
                             [17, 18, 19, 17], [18, 19, 18, 18], [19, 19, 19, 19]]
    assert window_rows(np.array([2]), 1, 20).tolist() == [[2]]


def test_window_rows_within_video():
    ranges = np.array([[0, 4], [4, 5], [5, 20]])
    rows = window_rows(np.array([0, 2, 3, 4, 18]), 4, 20, ranges, within_video=True)
    assert rows.tolist() == [[0, 1, 2, 3], [2, 3, 3, 3], [3, 3, 3, 3], [4, 4, 4, 4], [18, 19, 19, 19]]
    gap = window_rows(np.array([0, 3, 4, 7]), 3, 9, np.array([[1, 3], [5, 9]]), within_video=True)
    assert gap.tolist() == [[0, 0, 0], [3, 3, 3], [4, 4, 4], [7, 8, 8]]


@pytest.mark.parametrize("cc", [1, 2, 4])
@pytest.mark.parametrize("within_video", [False, True])
def test_gather_windows_equals_naive_loop(concat, data, ranges, cc, within_video):
    starts = np.array([19, 0, 4, 5, 5, 12, 15, 16, 18, 3])
    features, rows = gather_windows(concat, starts, cc, within_video)
    assert features.shape == (len(starts), C, cc, D) and features.dtype == np.float32
    assert features.flags.c_contiguous and rows.shape == (len(starts), cc)
    np.testing.assert_array_equal(features, naive_windows(data, starts, cc, ranges if within_video else None))
    np.testing.assert_array_equal(features, data[rows].transpose(0, 2, 1, 3))


def test_gather_windows_reads_each_row_once(concat):
    seen = []
    gather = concat.gather
    concat.gather = lambda rows: seen.append(rows.copy()) or gather(rows)
    gather_windows(concat, np.array([3, 4, 3, 19]), 4)
    assert len(seen) == 1 and seen[0].tolist() == [3, 4, 5, 6, 7, 19]


@pytest.mark.parametrize("per_crop", [False, True])
def test_per_video_layout_gives_the_same_batches(tmp_path, concat, data, ranges, per_crop):
    source = per_video(tmp_path, data, ranges, per_crop)
    for within_video in (False, True):
        a = list(make_loader(concat, 4, 6, seed=3, within_video=within_video))
        b = list(make_loader(source, 4, 6, seed=3, within_video=within_video))
        assert len(a) == len(b) == 4
        for x, y in zip(a, b):
            torch.testing.assert_close(x["features"], y["features"], rtol=0, atol=0)
            assert torch.equal(x["rows"], y["rows"])


def test_within_video_needs_ranges(tmp_path, data):
    np.save(tmp_path / "plain.npy", data)
    with pytest.raises(InputError, match=r"plain\.npy: windows within videos need the video ranges"):
        make_loader(ConcatFeatures(tmp_path / "plain.npy"), 4, 6, seed=0, within_video=True)


def test_window_dataset(concat, data):
    dataset = WindowDataset(concat, 2)
    assert len(dataset) == len(data)
    item = dataset[np.array([1, 19])]
    assert item["features"].dtype == torch.float32 and item["features"].shape == (2, C, 2, D)
    assert item["rows"].dtype == torch.int64 and item["rows"].tolist() == [[1, 2], [19, 19]]


def epoch_batches(sampler, epoch):
    sampler.set_epoch(epoch)
    return list(sampler)


def test_sampler_covers_every_start_once_per_epoch():
    sampler = ShuffledBatchSampler(23, 5, seed=7)
    batches = epoch_batches(sampler, 0)
    assert len(sampler) == len(batches) == 5
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
    assert all(b.dtype == np.int64 for b in batches)
    assert sorted(np.concatenate(batches).tolist()) == list(range(23))


def test_sampler_is_reproducible_and_differs_across_epochs():
    first = epoch_batches(ShuffledBatchSampler(50, 8, seed=7), 0)
    again = epoch_batches(ShuffledBatchSampler(50, 8, seed=7), 0)
    other_epoch = epoch_batches(ShuffledBatchSampler(50, 8, seed=7), 1)
    other_seed = epoch_batches(ShuffledBatchSampler(50, 8, seed=8), 0)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(np.concatenate(first), np.concatenate(other_epoch))
    assert not np.array_equal(np.concatenate(first), np.concatenate(other_seed))


@pytest.mark.parametrize("n", [48, 50, 53])
def test_rank_slices_partition_the_global_batch(n):
    full = epoch_batches(ShuffledBatchSampler(n, 12, seed=2), 4)
    ranks = [epoch_batches(ShuffledBatchSampler(n, 12, seed=2, rank=r, world_size=3), 4) for r in range(3)]
    assert all(len(r) == len(ShuffledBatchSampler(n, 12, seed=2, rank=0, world_size=3)) for r in ranks)
    kept = len(ranks[0])
    assert kept == (len(full) if n % 12 == 0 or n % 12 >= 3 else len(full) - 1)
    for b in range(kept):
        assert all(len(r[b]) in (len(full[b]) // 3, -(-len(full[b]) // 3)) for r in ranks)
        np.testing.assert_array_equal(np.concatenate([r[b] for r in ranks]), full[b])


def test_sampler_rejects_indivisible_batch():
    with pytest.raises(ValueError, match="not divisible"):
        ShuffledBatchSampler(50, 10, seed=0, world_size=3)


def test_workers_give_the_same_batches(concat):
    serial = make_loader(concat, 4, 6, seed=5)
    parallel = make_loader(concat, 4, 6, seed=5, num_workers=2)
    for epoch in (0, 1):
        serial.sampler.set_epoch(epoch)
        parallel.sampler.set_epoch(epoch)
        a, b = list(serial), list(parallel)
        assert len(a) == len(b) == 4
        for x, y in zip(a, b):
            assert torch.equal(x["features"], y["features"]) and torch.equal(x["rows"], y["rows"])
    assert sorted(torch.cat([x["rows"][:, 0] for x in a]).tolist()) == list(range(20))


def test_sampler_resumes_inside_an_epoch():
    sampler = ShuffledBatchSampler(50, 8, seed=3)
    sampler.set_epoch(2)
    whole = [b.tolist() for b in sampler]
    sampler.set_epoch(2, start_batch=4)
    assert [b.tolist() for b in sampler] == whole[4:]
