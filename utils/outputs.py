"""Output paths checked before any work starts: one :class:`InputError` line naming the path and the problem."""
import os
from pathlib import Path

from utils.errors import InputError


def check_outputs(folders: dict[str, str | None] | None = None, files: dict[str, str | None] | None = None) -> None:
    """Each ``{flag: path}`` of ``folders`` must be a folder or creatable as one, each of ``files`` a file or
    creatable as one (None: not given, skipped)."""
    for flag, path in (folders or {}).items():
        if path:
            _check(Path(path), flag, folder=True)
    for flag, path in (files or {}).items():
        if path:
            _check(Path(path), flag, folder=False)


def _check(path: Path, flag: str, folder: bool) -> None:
    if path.exists():
        if folder and not path.is_dir():
            raise InputError(path, f"is an existing file, not a folder ({flag} names the folder to write into)")
        if not folder and path.is_dir():
            raise InputError(path, f"is a folder, not a file ({flag} names the file to write)")
    parent = path if folder and path.exists() else path.parent
    while not parent.exists() and parent != parent.parent:  # the nearest part of the path that exists
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(parent, f"is a file, so {flag} {path} cannot be created inside it")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(parent, f"not writable, so {flag} {path} cannot be written")
