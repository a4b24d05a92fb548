"""Which videos a path names: a folder (searched recursively), a list file of paths, or one file."""
import os
from pathlib import Path

from utils.errors import InputError

VIDEO_EXTENSIONS = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts",
                    ".3gp", ".ogv"}


def find_videos(path: str) -> list[tuple[str, str]]:
    """``(video path, output name)`` pairs, sorted: a folder's videos named by their path inside it, a list's
    by their path below the folder that holds them all, a single file by its name."""
    root = Path(path)
    if not root.exists():
        raise InputError(path, "no such file or folder")
    if root.is_dir():
        videos = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
        base = root
    elif root.suffix.lower() in VIDEO_EXTENSIONS:
        videos, base = [root], root.parent
    else:
        lines = [line.strip() for line in root.read_text().splitlines()]
        videos = [p if p.is_absolute() else root.parent / p for p in map(Path, filter(None, lines))]
        if not videos:
            raise InputError(path, "the list names no videos")
        base = Path(os.path.commonpath([str(p.parent.absolute()) for p in videos]))
        videos = [p.absolute() for p in videos]
    if not videos:
        raise InputError(path, f"no video files found (looked for {', '.join(sorted(VIDEO_EXTENSIONS))})")
    named: dict[str, str] = {}
    for video in videos:
        name = video.relative_to(base).with_suffix("").as_posix()
        if name in named:
            raise InputError(video, f"writes the same feature file as {named[name]}; rename one of them")
        named[name] = str(video)
    return [(video, name) for name, video in sorted(named.items(), key=lambda item: item[1])]
