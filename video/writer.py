"""Videos → feature files on disk, in the per-video layout main.py reads: one ``<name>_i3d.npy`` per video, its
record ``<name>_i3d.json``, the list file and ``videos.json``; resumable (a video done with the same settings is
skipped) and written atomically."""
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dataset.layout import CONCAT_FILE, INFO_FILE, LIST_FILE, RANGES_FILE, SUFFIX
from utils.io import save_json, save_npy_rows, save_text
from utils.progress import progress_bar
from video.decode import VideoError, probe
from video.extract import Extractor, Progress, TooShort
from video.presets import SNIPPET


@dataclass
class Outcome:
    """One video's result: done, skipped (with a reason) or failed (with a reason)."""
    video: str
    name: str  # output path relative to --output_dir, without suffix
    status: str
    reason: str = ""
    info: dict | None = None


def extract_videos(extractor: Extractor, videos: list[tuple[str, str]], out_dir: Path,
                   label: str = "videos") -> list[Outcome]:
    """Every ``(video path, output name)`` extracted (or skipped) in turn, with a progress bar over videos."""
    return [extract_one(extractor, video, name, out_dir)
            for video, name in progress_bar(videos, desc=label, unit="video", position=0,
                                        disable=len(videos) < 2)]


def extract_one(extractor: Extractor, video: str, name: str, out_dir: Path, bar_position: int = 1) -> Outcome:
    """Extract one video into ``out_dir/<name>_i3d.npy`` unless its features exist with the extractor's settings;
    errors become the outcome's reason."""
    settings = extractor.settings
    target, record = out_dir / f"{name}{SUFFIX}.npy", out_dir / f"{name}{SUFFIX}.json"
    if target.is_file() and record.is_file():
        try:
            info = json.loads(record.read_text())
        except (OSError, ValueError):
            info = {}
        if info.get("settings") == settings:
            return Outcome(video, name, "skipped", "features exist with these settings", info)
    try:
        meta = probe(video)
        fps = extractor.fps or meta.fps
        expected = round(meta.seconds * fps / SNIPPET) if meta.seconds else None
        progress = Progress()
        with progress_bar(total=expected, desc=Path(video).name, unit="snippet", position=bar_position,
                      leave=False, disable=expected is None or expected < 64) as bar:
            def batches():
                for batch in extractor.features(video, progress):
                    bar.update(len(batch))
                    yield batch
            shape = save_npy_rows(target, batches())
    except TooShort as e:
        return Outcome(video, name, "skipped", str(e))
    except VideoError as e:
        return Outcome(video, name, "failed", str(e))
    warnings = progress.decode.warnings()
    for line in warnings:
        tqdm.write(f"warning: {video}: {line}")
    info = {"video": str(video), "features": f"{name}{SUFFIX}.npy", "frames": progress.frames, "fps": fps or None,
            "snippets": shape[0], "seconds": progress.frames / fps if fps else None, "width": meta.width,
            "height": meta.height, "decoded_frames": progress.decode.decoded,
            "repeated_frames": progress.decode.repeated, "warnings": warnings, "settings": settings}
    save_json(record, info)
    return Outcome(video, name, "done", info=info)


def write_index(out_dir: Path, outcomes: list[Outcome], concat: bool) -> None:
    """The list file, ``videos.json``, and with ``concat`` the concatenated array and its ranges."""
    kept = [o for o in outcomes if o.info is not None]
    save_text(out_dir / LIST_FILE, "".join(f"{o.info['features']}\n" for o in kept))
    save_json(out_dir / INFO_FILE, [o.info for o in kept])
    if not concat or not kept:
        return
    lengths = []

    def rows():
        for o in kept:
            features = np.load(out_dir / o.info["features"], mmap_mode="r")
            lengths.append(len(features))
            for start in range(0, len(features), 1024):
                yield np.asarray(features[start:start + 1024])
    save_npy_rows(out_dir / CONCAT_FILE, rows())
    ends = np.cumsum(lengths)
    save_npy_rows(out_dir / RANGES_FILE, [np.stack([ends - lengths, ends], axis=1).astype(np.int64)])
