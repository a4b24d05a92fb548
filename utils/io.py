"""Atomic writes: a temp file in the target folder, then ``os.replace``.

A crash or a failed write never leaves a half-written file, and never removes the
file that was there before.
"""
import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterator

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
