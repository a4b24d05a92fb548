"""Per-video ``(V, 2)`` [from, to) snippet ranges, checked once for every file that carries them."""
import numpy as np

from utils.errors import InputError


def check_ranges(path: str, ranges: np.ndarray, n_snippets: int) -> np.ndarray:
    """Validate per-video ``(V, 2)`` [from, to) offsets: T > 0, sorted, no overlap, inside [0, N]."""
    if ranges.ndim != 2 or ranges.shape[1] != 2:
        raise InputError(path, f"expected video ranges shaped (V, 2), got shape {ranges.shape}")
    if not np.issubdtype(ranges.dtype, np.integer):
        raise InputError(path, f"expected integer video ranges, got dtype {ranges.dtype}")
    if len(ranges) == 0:
        raise InputError(path, "no video ranges (shape (0, 2))")
    ranges = ranges.astype(np.int64)
    start, end = ranges[:, 0], ranges[:, 1]
    bad = np.flatnonzero(end <= start)
    if bad.size:
        v = int(bad[0])
        raise InputError(path, f"video {v} has range [{start[v]}, {end[v]}): T = {end[v] - start[v]} "
                               f"snippets, need T > 0 ({bad.size} such videos)")
    if start[0] < 0:
        raise InputError(path, f"video 0 starts at {start[0]} < 0")
    bad = np.flatnonzero(start[1:] < end[:-1])
    if bad.size:
        v = int(bad[0]) + 1
        raise InputError(path, f"video {v} range [{start[v]}, {end[v]}) overlaps or precedes video "
                               f"{v - 1} [{start[v - 1]}, {end[v - 1]})")
    if end[-1] > n_snippets:
        v = int(np.flatnonzero(end > n_snippets)[0])
        raise InputError(path, f"video {v} range [{start[v]}, {end[v]}) runs past the end of the "
                               f"features ({n_snippets} snippets)")
    return ranges
