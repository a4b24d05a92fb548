"""I3D feature files behind one interface: the concatenated and the per-video layout.

Both layouts are memory-mapped and only the rows a batch needs are copied.
Every check that can be made cheaply (headers, shapes, dtypes, ranges) runs when a
file is opened, so bad input fails before any work starts; NaN/Inf values are
found in the rows actually gathered (or by ``check_finite`` for a full scan).
Sources pickle as paths and reopen their maps lazily, so DataLoader workers never
copy the data.
"""
import contextlib
import os
import re
from pathlib import Path

import numpy as np

from utils.errors import InputError
from utils.ranges import check_ranges, ranges_from_lengths

CROP_FILE = re.compile(r"^(?P<video>.+)__(?P<crop>\d+)\.npy$")


def video_key(path: str) -> str:
    """A video's name from any of its file names: folder, extension, ``__k`` and ``_i3d`` dropped."""
    name = os.path.basename(str(path).strip())
    stem, ext = os.path.splitext(name)
    if ext.lower() in {".npy", ".mp4", ".avi"}:
        name = stem
    name = re.sub(r"__\d+$", "", name)
    return re.sub(r"_i3d$", "", name)


class FeatureSource:
    """Snippet features ``(N, C, D)`` addressed by global row; ``ranges`` are per-video [from, to)."""

    path: str
    n_snippets: int
    n_crops: int
    feature_size: int
    ranges: np.ndarray | None

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """``(k,)`` int64 rows (sorted) -> ``(k, C, D)`` float32; InputError on NaN/Inf."""
        raise NotImplementedError

    def __len__(self) -> int:
        return self.n_snippets


def read_npy_header(path: str | os.PathLike, note: str = "") -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a ``.npy`` file from its header alone; InputError (``note`` appended) when bad."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            offset = f.tell()
    except FileNotFoundError:
        raise InputError(path, "file not found" + note) from None
    except (OSError, ValueError, SyntaxError) as e:
        problem = f"truncated or unreadable .npy ({e})"
        with contextlib.suppress(OSError), open(path, "rb") as f:
            if f.read(2) == b"PK":
                problem = "a .npz archive, expected a .npy file"
        raise InputError(path, problem + note) from None
    if dtype.hasobject:
        raise InputError(path, f"holds Python objects (dtype {dtype}), expected numbers" + note)
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = os.path.getsize(path)
    if actual < expected:
        raise InputError(path, f"truncated or unreadable .npy: header says {shape} {dtype} "
                               f"({expected} bytes), the file has {actual}{note}")
    return tuple(int(s) for s in shape), dtype


def read_npy(path: str | os.PathLike, mmap_mode: str | None = "r") -> np.ndarray:
    """``np.load(path, mmap_mode)`` (memory-mapped by default) with any failure as a one-line InputError."""
    try:
        array = np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except (OSError, ValueError) as e:
        raise InputError(path, f"truncated or unreadable .npy ({e})") from None
    if not isinstance(array, np.ndarray):
        raise InputError(path, "not a single array (.npz archive?), expected a .npy file")
    return array


def check_feature_array(path: str, shape: tuple[int, ...], dtype: np.dtype,
                        note: str = "") -> tuple[int, int, int]:
    """``(N, C, D)`` from a feature array's shape; ``(N, D)`` counts as one crop."""
    if len(shape) not in (2, 3):
        raise InputError(path, f"expected features shaped (N, C, D) or (N, D), got shape {shape}{note}")
    if not np.issubdtype(dtype, np.floating):
        raise InputError(path, f"expected floating-point features, got dtype {dtype}{note}")
    n, d = shape[0], shape[-1]
    c = shape[1] if len(shape) == 3 else 1
    if n == 0:
        raise InputError(path, f"no snippets (T = 0), shape {shape}{note}")
    if c == 0 or d == 0:
        raise InputError(path, f"empty feature array, shape {shape}{note}")
    return n, c, d


def load_ranges(path: str, n_snippets: int) -> np.ndarray:
    """A ``nalist.npy``-style ranges file -> checked ``(V, 2)`` int64."""
    return check_ranges(path, read_npy(path, mmap_mode=None), n_snippets)


def first_non_finite(out: np.ndarray) -> tuple[int, int] | None:
    """``(row position, crop)`` of the first NaN/Inf in ``(k, C, D)`` features, or None."""
    if np.isfinite(out).all():
        return None
    row, crop = np.argwhere(~np.isfinite(out).all(axis=2))[0]
    return int(row), int(crop)


class ConcatFeatures(FeatureSource):
    """One ``(N, C, D)`` or ``(N, D)`` ``.npy`` (e.g. ``concat_UCF.npy``), memory-mapped, plus optional ranges."""

    def __init__(self, path: str | os.PathLike, ranges_path: str | os.PathLike | None = None) -> None:
        self.path = str(path)
        self.ranges_path = None if ranges_path is None else str(ranges_path)
        shape, dtype = read_npy_header(self.path)
        self.n_snippets, self.n_crops, self.feature_size = check_feature_array(self.path, shape, dtype)
        self.ranges = None if ranges_path is None else load_ranges(self.ranges_path, self.n_snippets)
        self._array: np.ndarray | None = read_npy(self.path)

    @property
    def array(self) -> np.ndarray:
        """The memory map, reopened after unpickling."""
        if self._array is None:
            self._array = read_npy(self.path)
        return self._array

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """``(k,)`` int64 rows (sorted) -> ``(k, C, D)`` float32; InputError on NaN/Inf."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.asarray(self.array[rows], dtype=np.float32)
        out = out.reshape(len(rows), self.n_crops, self.feature_size)
        bad = first_non_finite(out)
        if bad is not None:
            raise InputError(self.path, f"non-finite value (NaN or Inf) in row {rows[bad[0]]}, crop {bad[1]}")
        return out

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_array": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


class PerVideoFeatures(FeatureSource):
    """RTFM layout: a list file of ``*_i3d.npy`` paths, one ``(T, C, D)`` / ``(T, D)`` file per video.

    Files named ``<video>__<k>.npy`` are crop ``k`` of ``<video>``, each ``(T, D)``;
    the crops of one video form one video with ``C`` = number of crop files.
    Relative paths resolve against ``root`` (default: the list file's folder); an absolute path that does
    not exist here (lists as their authors wrote them) is looked up as ``root/<file name>``.
    ``ranges`` are the cumulative per-video offsets; ``video_names`` the videos' names.
    """

    def __init__(self, list_file: str | os.PathLike, root: str | os.PathLike | None = None) -> None:
        self.path = str(list_file)
        self.root = str(Path(self.path).parent if root is None else root)
        videos = self._read_list()
        self.video_files: list[list[str]] = []
        self.video_names: list[str] = []
        lengths = []
        self.n_crops = self.feature_size = 0
        for name, files in videos:
            t, c, d = self._check_video(files)
            if not self.video_files:
                self.n_crops, self.feature_size = c, d
            elif d != self.feature_size:
                raise InputError(files[0][0], f"feature size {d} differs from {self.feature_size} of "
                                              f"{self.video_files[0][0]} (list {self.path}, line {files[0][1]})")
            elif c != self.n_crops:
                raise InputError(files[0][0], f"{c} crops differ from {self.n_crops} of "
                                              f"{self.video_files[0][0]} (list {self.path}, line {files[0][1]})")
            self.video_files.append([f for f, _ in files])
            self.video_names.append(name)
            lengths.append(t)
        self.ranges = ranges_from_lengths(lengths)
        self.n_snippets = int(self.ranges[-1, 1])
        self._maps: dict[str, np.ndarray] = {}

    def _read_list(self) -> list[tuple[str, list[tuple[str, int]]]]:
        """``[(video name, [(file, list line), ...]), ...]`` in list order, crop files grouped by video."""
        try:
            with open(self.path) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            raise InputError(self.path, "list file not found") from None
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(self.path, f"unreadable list file ({e})") from None
        videos: dict[str, list[tuple[int, str, int]]] = {}
        for number, line in enumerate(lines, start=1):
            entry = line.strip()
            if not entry:
                continue
            file = os.path.join(self.root, entry)
            fallback = os.path.join(self.root, os.path.basename(entry))
            if not os.path.isfile(file) and os.path.isabs(entry) and os.path.isfile(fallback):
                file = fallback
            if not os.path.isfile(file):
                raise InputError(file, f"missing feature file (list {self.path}, line {number})")
            match = CROP_FILE.match(file)
            key, crop = (match["video"], int(match["crop"])) if match else (f"{number}:{file}", -1)
            videos.setdefault(key, []).append((crop, file, number))
        if not videos:
            raise InputError(self.path, "empty list file: no feature files")
        grouped = []
        for entries in videos.values():
            crops = sorted(c for c, _, _ in entries)
            if crops[0] >= 0 and crops != list(range(len(crops))):
                _, file, number = entries[0]
                raise InputError(file, f"crop files of one video must be numbered __0 .. __{len(crops) - 1} "
                                       f"once each, found {crops} (list {self.path}, line {number})")
            entries.sort()
            grouped.append((video_key(entries[0][1]), [(file, number) for _, file, number in entries]))
        return grouped

    def _check_video(self, files: list[tuple[str, int]]) -> tuple[int, int, int]:
        """``(T, C, D)`` of one video from its files' headers (no data read)."""
        per_crop = len(files) > 1 or CROP_FILE.match(files[0][0]) is not None
        shapes = []
        for file, number in files:
            where = f" (list {self.path}, line {number})"
            shape, dtype = read_npy_header(file, where)
            if per_crop and len(shape) != 2:
                raise InputError(file, f"a per-crop file must be (T, D), got shape {shape}{where}")
            t, c, d = check_feature_array(file, shape, dtype, where)
            if shapes and (t, d) != shapes[0]:
                raise InputError(file, f"crop shape {shape} differs from {files[0][0]} "
                                       f"({shapes[0][0]}, {shapes[0][1]}){where}")
            shapes.append((t, d))
        t, d = shapes[0]
        return t, (len(files) if per_crop else c), d

    def _map(self, file: str) -> np.ndarray:
        if file not in self._maps:
            self._maps[file] = read_npy(file)
        return self._maps[file]

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """``(k,)`` int64 rows (sorted) -> ``(k, C, D)`` float32; InputError on NaN/Inf."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= self.n_snippets):
            raise IndexError(f"rows outside [0, {self.n_snippets})")
        video = np.searchsorted(self.ranges[:, 1], rows, side="right")
        local = rows - self.ranges[video, 0]
        order = np.argsort(video, kind="stable")
        videos, first = np.unique(video[order], return_index=True)
        out = np.empty((len(rows), self.n_crops, self.feature_size), dtype=np.float32)
        for v, pos in zip(videos, np.split(order, first[1:])):
            files = self.video_files[v]
            if len(files) == 1:
                out[pos] = np.reshape(self._map(files[0])[local[pos]], (len(pos), self.n_crops, -1))
            else:
                for c, file in enumerate(files):
                    out[pos, c] = self._map(file)[local[pos]]
        bad = first_non_finite(out)
        if bad is not None:
            (i, c), files = bad, self.video_files[video[bad[0]]]
            file = files[c] if len(files) > 1 else files[0]
            raise InputError(file, f"non-finite value (NaN or Inf) in snippet {local[i]}, crop {c} "
                                   f"(global row {rows[i]})")
        return out

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_maps": {}}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


def open_features(path: str | None = None, ranges: str | None = None,
                  list_file: str | None = None, root: str | None = None) -> FeatureSource:
    """The layout from the arguments: a list file (``.list`` / ``.txt``) is per-video, else concatenated."""
    if list_file is None and path is not None and str(path).endswith((".list", ".txt")):
        list_file, path = path, None
    if list_file is not None:
        if path is not None:
            raise InputError(path, f"give either a feature array or a list file ({list_file}), not both")
        if ranges is not None:
            raise InputError(ranges, f"the per-video layout takes its video ranges from {list_file}")
        return PerVideoFeatures(list_file, root)
    if path is None:
        raise InputError("features", "no feature file or list file given")
    return ConcatFeatures(path, ranges)


def check_finite(source: FeatureSource, chunk_rows: int = 1024) -> None:
    """Scan every row for NaN/Inf, ``chunk_rows`` at a time; InputError naming the first bad row."""
    for start in range(0, source.n_snippets, chunk_rows):
        source.gather(np.arange(start, min(start + chunk_rows, source.n_snippets), dtype=np.int64))


class ArrayFeatures(FeatureSource):
    """Features already in memory, ``(N, C, D)`` float32: one video's, as the extractor hands them over."""

    def __init__(self, features: np.ndarray, path: str = "<in memory>") -> None:
        self.features, self.path, self.ranges = np.asarray(features, dtype=np.float32), path, None
        self.n_snippets, self.n_crops, self.feature_size = self.features.shape

    def gather(self, rows: np.ndarray) -> np.ndarray:
        return self.features[rows]
