"""Per-video ``(V, 2)`` [from, to) snippet ranges: made from video lengths, checked once for every file that
carries them."""
import numpy as np

from utils.errors import InputError


def ranges_from_lengths(lengths: np.ndarray) -> np.ndarray:
    """``(V,)`` snippets per video -> ``(V, 2)`` int64 contiguous [from, to) ranges starting at 0."""
    lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
    ends = np.cumsum(lengths)
    return np.stack([ends - lengths, ends], axis=1)


def check_ranges(where: object, ranges: np.ndarray, n_snippets: int, contiguous: bool = False) -> np.ndarray:
    """Validate ``(V, 2)`` [from, to) ranges of features holding ``n_snippets`` rows -> the ranges as int64.

    Always: integers, T > 0, sorted without overlap, inside [0, N]; gaps between videos are allowed unless
    ``contiguous`` (C2FPL's per-video statistics), which also needs the first video to start at snippet 0.
    Each problem is one InputError line naming ``where`` (the ranges' file).
    """
    ranges = np.asarray(ranges)
    if ranges.ndim != 2 or ranges.shape[1] != 2:
        raise InputError(where, f"expected video ranges shaped (V, 2), got shape {ranges.shape}")
    if not np.issubdtype(ranges.dtype, np.integer):
        raise InputError(where, f"expected integer video ranges, got dtype {ranges.dtype}")
    if len(ranges) == 0:
        raise InputError(where, "no video ranges (shape (0, 2))")
    ranges = ranges.astype(np.int64)
    start, end = ranges[:, 0], ranges[:, 1]
    bad = np.flatnonzero(end <= start)
    if bad.size:
        v = int(bad[0])
        raise InputError(where, f"video {v} has range [{start[v]}, {end[v]}): T = {end[v] - start[v]} "
                                f"snippets, need T > 0 ({bad.size} such videos)")
    if start[0] < 0:
        raise InputError(where, f"video 0 starts at {start[0]} < 0")
    if contiguous and start[0] != 0:
        raise InputError(where, f"video 0 starts at snippet {start[0]}: contiguous ranges must start at snippet 0")
    bad = np.flatnonzero(start[1:] < end[:-1])
    if bad.size:
        v = int(bad[0]) + 1
        raise InputError(where, f"video {v} range [{start[v]}, {end[v]}) overlaps or precedes video "
                                f"{v - 1} [{start[v - 1]}, {end[v - 1]})")
    gaps = np.flatnonzero(start[1:] != end[:-1])
    if contiguous and gaps.size:
        v = int(gaps[0]) + 1
        raise InputError(where, f"ranges are not contiguous: video {v} starts at {start[v]}, video {v - 1} "
                                f"ends at {end[v - 1]}")
    if end[-1] > n_snippets:
        v = int(np.flatnonzero(end > n_snippets)[0])
        raise InputError(where, f"video {v} range [{start[v]}, {end[v]}) runs past the end of the "
                                f"features ({n_snippets} snippets)")
    return ranges
