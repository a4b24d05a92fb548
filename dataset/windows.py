"""Training samples: windows of ``cross_clip`` consecutive snippets, gathered a batch at a time.

Sample ``i`` is snippets ``i .. i+cc-1`` shaped ``(C, cc, D)``. By default the
release's rule holds (docs/model.md, "Input"): windows run across video
boundaries, and a row past the end of the array is replaced by the start row ``i``.
``within_video=True`` instead repeats the last snippet of the start's video.
"""
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dataset.features import FeatureSource
from utils.errors import InputError


def window_rows(starts: np.ndarray, cross_clip: int, n_snippets: int,
                ranges: np.ndarray | None = None, within_video: bool = False) -> np.ndarray:
    """``(B,)`` window starts -> ``(B, cc)`` int64 snippet rows.

    With ``within_video`` a start outside every range is a one-snippet video of its own.
    """
    starts = np.asarray(starts, dtype=np.int64).reshape(-1)
    if cross_clip < 1:
        raise ValueError(f"cross_clip must be >= 1, got {cross_clip}")
    if starts.size and (starts.min() < 0 or starts.max() >= n_snippets):
        raise IndexError(f"window starts outside [0, {n_snippets})")
    rows = starts[:, None] + np.arange(cross_clip, dtype=np.int64)
    if not within_video:
        return np.where(rows < n_snippets, rows, starts[:, None])
    if ranges is None:
        raise ValueError("within_video windows need the video ranges")
    video = np.searchsorted(ranges[:, 0], starts, side="right") - 1
    end = ranges[np.maximum(video, 0), 1]
    end = np.where((video >= 0) & (starts < end), end, starts + 1)
    return np.minimum(rows, end[:, None] - 1)


def gather_windows(source: FeatureSource, starts: np.ndarray, cross_clip: int,
                   within_video: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(B,)`` starts -> features ``(B, C, cc, D)`` float32 and rows ``(B, cc)``; one read of the unique rows."""
    rows = window_rows(starts, cross_clip, source.n_snippets, source.ranges, within_video)
    unique, inverse = np.unique(rows.reshape(-1), return_inverse=True)
    inverse = inverse.reshape(rows.shape)
    snippets = source.gather(unique)                                   # (U, C, D)
    batch = np.empty((rows.shape[0], source.n_crops, cross_clip, source.feature_size), dtype=np.float32)
    for k in range(cross_clip):                                        # one vectorised copy per clip position
        batch[:, :, k] = snippets[inverse[:, k]]
    return batch, rows


class WindowDataset(Dataset):
    """Indexed by a whole array of window starts; ``len`` = number of starts = ``n_snippets``."""

    def __init__(self, source: FeatureSource, cross_clip: int, within_video: bool = False) -> None:
        self.source = source
        self.cross_clip = cross_clip
        self.within_video = within_video

    def __len__(self) -> int:
        return self.source.n_snippets

    def __getitem__(self, starts: np.ndarray) -> dict[str, torch.Tensor]:
        """``(B,)`` starts -> {"features": ``(B, C, cc, D)`` float32, "rows": ``(B, cc)`` int64}."""
        features, rows = gather_windows(self.source, np.atleast_1d(starts), self.cross_clip, self.within_video)
        return {"features": torch.from_numpy(features), "rows": torch.from_numpy(rows)}


class ShuffledBatchSampler(Sampler):
    """Batches of window starts from a fresh permutation per epoch (seeded by ``(seed, epoch)``).

    The final short batch is kept. With ``world_size > 1`` each rank gets its
    ``batch_size / world_size`` slice of every global batch (the final short batch
    is split as evenly as possible, and dropped when smaller than ``world_size``).
    """

    def __init__(self, n_starts: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        if batch_size < 1 or n_starts < 1:
            raise ValueError(f"need batch_size >= 1 and n_starts >= 1, got {batch_size}, {n_starts}")
        if batch_size % world_size:
            raise ValueError(f"batch size {batch_size} is not divisible by world size {world_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside [0, {world_size})")
        self.n_starts, self.batch_size, self.seed = n_starts, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Use epoch ``epoch``'s permutation, from batch ``start_batch`` on (to resume inside an epoch)."""
        self.epoch, self.start_batch = epoch, start_batch

    def __len__(self) -> int:
        full, rest = divmod(self.n_starts, self.batch_size)
        return full + (rest >= self.world_size if rest else 0)

    def __iter__(self):
        seed = int(np.random.SeedSequence([self.seed, self.epoch]).generate_state(1, np.uint64)[0] >> 1)
        order = torch.randperm(self.n_starts, generator=torch.Generator().manual_seed(seed)).numpy()
        for b in range(self.start_batch, len(self)):
            batch = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield np.array_split(batch, self.world_size)[self.rank].astype(np.int64)


def make_loader(source: FeatureSource, cross_clip: int, batch_size: int, seed: int,
                within_video: bool = False, num_workers: int = 0, pin_memory: bool = False,
                prefetch_factor: int = 2, rank: int = 0, world_size: int = 1) -> DataLoader:
    """Shuffled batches ``{"features": (B, C, cc, D), "rows": (B, cc)}``; ``loader.sampler.set_epoch(e)`` per epoch."""
    if within_video and source.ranges is None:
        raise InputError(source.path, "windows within videos need the video ranges (a ranges file)")
    sampler = ShuffledBatchSampler(source.n_snippets, batch_size, seed, rank, world_size)
    return DataLoader(WindowDataset(source, cross_clip, within_video), batch_size=None, sampler=sampler,
                      num_workers=num_workers, pin_memory=pin_memory,
                      prefetch_factor=prefetch_factor if num_workers > 0 else None,
                      persistent_workers=num_workers > 0)
