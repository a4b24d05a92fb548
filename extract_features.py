"""Features from your own videos: one <name>_i3d.npy (N, crops, D) per video, in the layouts main.py reads.

    python extract_features.py --videos DIR --output_dir features/mine --weights i3d_r50_kinetics.pth
    python extract_features.py --videos clips/ --output_dir features/tv --backbone r2plus1d_18
    torchrun --nproc_per_node 4 extract_features.py ...        # the videos shared over processes

A video whose features exist with the same settings is skipped, so a stopped run resumes.
"""
import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from utils.config import CliParser
from utils.distributed import gather_objects, setup, teardown
from utils.errors import InputError
from utils.io import save_json, save_npy_rows, save_text
from video.backbones import BACKBONES, build_backbone
from video.decode import VideoError, probe
from video.extract import Extractor, Progress, TooShort
from video.presets import PRESETS, SNIPPET, Preset, torchvision_preset

VIDEO_EXTENSIONS = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts",
                    ".3gp", ".ogv"}
SUFFIX = "_i3d"  # the per-video layout's file names: <name>_i3d.npy, whatever the backbone
LIST_FILE, INFO_FILE, CONCAT_FILE, RANGES_FILE = "features.list", "videos.json", "concat.npy", "nalist.npy"


@dataclass
class Outcome:
    """One video's result: done, skipped (with a reason) or failed (with a reason)."""
    video: str
    name: str  # output path relative to --output_dir, without suffix
    status: str
    reason: str = ""
    info: dict | None = None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = CliParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="\n".join(__doc__.split("\n")[1:]))
    parser.add_argument("--videos", required=True, metavar="PATH",
                        help="a folder (searched recursively), a list file of video paths, or one video file")
    parser.add_argument("--output_dir", required=True, metavar="DIR",
                        help="where the feature files go, mirroring the input folders")
    parser.add_argument("--backbone", default="i3d_r50", choices=sorted(BACKBONES),
                        help="i3d_r50 (the field's 2048-d features) or a torchvision Kinetics-400 model")
    parser.add_argument("--weights", metavar="FILE",
                        help="the backbone's weights file (required for i3d_r50: i3d_r50_kinetics.pth); for a "
                             "torchvision model, omit it to download its weights on first use")
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="i3d_r50's preprocessing: rtfm (default; RTFM's author's description) or gowtham "
                             "(the community extractor); torchvision models use their weights' own")
    parser.add_argument("--crops", type=int, default=10, choices=[10, 5, 1],
                        help="10 (corners, centre, and the same of the flipped frame), 5 (unflipped), 1 (centre)")
    parser.add_argument("--fps", type=float, metavar="R", help="resample each video to R frames/s first")
    parser.add_argument("--batch_size", type=int, default=4, metavar="N", help="snippets per forward pass")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--amp", default="off", choices=["off", "bf16"], help="run the backbone in bfloat16")
    parser.add_argument("--concat", action="store_true",
                        help=f"also write every video's features concatenated ({CONCAT_FILE}) and their "
                             f"[from, to) snippet ranges ({RANGES_FILE})")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        raise InputError("--batch_size", f"must be at least 1, got {args.batch_size}")
    if args.fps is not None and args.fps <= 0:
        raise InputError("--fps", f"must be positive, got {args.fps}")
    if args.preset and args.backbone != "i3d_r50":
        raise InputError("--preset", f"applies to i3d_r50; {args.backbone} uses its weights' own preprocessing")
    return args


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


def choose_preset(args: argparse.Namespace, preprocessing: dict | None) -> Preset:
    if preprocessing is None:
        return PRESETS[args.preset or "rtfm"]
    return torchvision_preset(args.backbone, **preprocessing)


def settings_of(args: argparse.Namespace, weights_id: str, preset: Preset) -> dict:
    """What decides the features' values: a video extracted with other settings is extracted again."""
    return {"backbone": args.backbone, "weights": weights_id, "preset": preset.name, "crops": args.crops,
            "fps": args.fps, "amp": args.amp}


def extract_one(extractor: Extractor, video: str, name: str, out_dir: Path, settings: dict,
                bar_position: int) -> Outcome:
    """Extract one video unless its features exist with ``settings``; errors become the outcome's reason."""
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
        with tqdm(total=expected, desc=Path(video).name, unit="snippet", position=bar_position, leave=False,
                  disable=expected is None or expected < 64) as bar:
            def batches():
                for batch in extractor.features(video, progress):
                    bar.update(len(batch))
                    yield batch
            shape = save_npy_rows(target, batches())
    except TooShort as e:
        return Outcome(video, name, "skipped", str(e))
    except VideoError as e:
        return Outcome(video, name, "failed", str(e))
    info = {"video": str(video), "features": f"{name}{SUFFIX}.npy", "frames": progress.frames, "fps": fps or None,
            "snippets": shape[0], "seconds": progress.frames / fps if fps else None, "width": meta.width,
            "height": meta.height,
            "settings": settings}
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


def print_summary(outcomes: list[Outcome], out_dir: Path, concat: bool) -> None:
    counts = {status: sum(o.status == status for o in outcomes) for status in ("done", "skipped", "failed")}
    print(f"{counts['done']} extracted, {counts['skipped']} skipped, {counts['failed']} failed "
          f"→ {out_dir / LIST_FILE}" + (f", {out_dir / CONCAT_FILE}" if concat else ""))
    for o in outcomes:
        if o.status == "failed" or (o.status == "skipped" and o.info is None):
            print(f"  {o.status}: {o.video}: {o.reason}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    videos = find_videos(args.videos)
    out_dir = Path(args.output_dir)
    backbone = build_backbone(args.backbone, args.weights)
    preset = choose_preset(args, backbone.preprocessing)
    dist, device = setup(args.device)
    try:
        backbone.net.to(device)
        extractor = Extractor(backbone, preset, args.crops, args.batch_size, device, args.amp, args.fps)
        settings = settings_of(args, backbone.weights_id, preset)
        mine = videos[dist.rank::dist.world_size]
        outcomes = [extract_one(extractor, video, name, out_dir, settings, bar_position=1)
                    for video, name in tqdm(mine, desc=f"videos (rank {dist.rank})" if dist.world_size > 1
                                            else "videos", unit="video", position=0, disable=len(mine) < 2)]
        everyone = sorted((o for share in gather_objects(outcomes) for o in share), key=lambda o: o.name)
        if dist.rank == 0:
            write_index(out_dir, everyone, args.concat)
            print_summary(everyone, out_dir, args.concat)
    except BaseException:
        teardown(synchronise=False)
        raise
    teardown()
    if any(o.status == "failed" for o in everyone):
        sys.exit(1)


if __name__ == "__main__":
    try:
        main()
    except InputError as e:
        sys.exit(f"error: {e}")
