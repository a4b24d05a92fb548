"""Atomic writes: a temp file in the target folder, then ``os.replace``.

A crash or a failed write never leaves a half-written file, and never removes the
file that was there before.
"""
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

import numpy as np

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temp path beside ``path``; fsync and rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temp file beside ``path``; it replaces ``path`` only if the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, mode) as f:
        yield f


def atomic_write(path: str | os.PathLike, write: Callable[[IO], Any], mode: str = "wb") -> None:
    """Call ``write(file)`` on a temp file, then rename it to ``path``."""
    with atomic_open(path, mode) as f:
        write(f)


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """``np.save`` to exactly ``path`` (no ``.npy`` appended), atomically."""
    atomic_write(path, lambda f: np.save(f, array))


def save_npy_rows(path: str | os.PathLike, chunks: Iterable[np.ndarray]) -> tuple[int, ...]:
    """Chunks ``(k, *row)`` of one dtype stacked into one ``.npy`` at ``path``, atomically, in the memory
    of one chunk (rows go to a temp file first, as their count is known only at the end); returns the shape."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows, row_shape, dtype = 0, None, None
    with tempfile.TemporaryFile(dir=path.parent) as raw:
        for chunk in chunks:
            chunk = np.ascontiguousarray(chunk)
            if row_shape is None:
                row_shape, dtype = chunk.shape[1:], chunk.dtype
            elif chunk.shape[1:] != row_shape or chunk.dtype != dtype:
                raise ValueError(f"{path}: chunk {chunk.shape} {chunk.dtype} after rows {row_shape} {dtype}")
            raw.write(chunk.tobytes())
            rows += len(chunk)
        if row_shape is None:
            raise ValueError(f"{path}: no rows to write")
        shape = (rows, *row_shape)
        raw.seek(0)
        with atomic_open(path) as f:
            np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                     "fortran_order": False, "shape": shape})
            shutil.copyfileobj(raw, f, 1 << 24)
    return shape


def save_json(path: str | os.PathLike, obj: Any) -> None:
    """Pretty JSON, atomically."""
    atomic_write(path, lambda f: json.dump(obj, f, indent=2, sort_keys=True, default=str), mode="w")


def save_text(path: str | os.PathLike, text: str) -> None:
    """A text file, atomically."""
    atomic_write(path, lambda f: f.write(text), mode="w")


def fingerprint(**inputs: Any) -> str:
    """A short hash of settings and of files (absolute path, size, mtime) named by ``*_file`` keys."""
    described = {}
    for key, value in sorted(inputs.items()):
        if key.endswith("_file") and value is not None:
            stat = os.stat(value)
            value = [os.path.abspath(value), stat.st_size, stat.st_mtime_ns]
        described[key] = value
    return hashlib.sha1(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()[:16]
