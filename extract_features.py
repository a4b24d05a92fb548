"""Features from your own videos: one <name>_i3d.npy (N, crops, D) per video, in the layouts main.py reads.

    python extract_features.py --videos DIR --output_dir features/mine --weights i3d_r50_kinetics.pth
    python extract_features.py --videos clips/ --output_dir features/tv --backbone r2plus1d_18
    torchrun --nproc_per_node 4 extract_features.py ...        # the videos shared over processes

A video whose features exist with the same settings is skipped, so a stopped run resumes.
"""
import argparse
import sys
from pathlib import Path

from dataset.layout import CONCAT_FILE, LIST_FILE, RANGES_FILE
from utils.config import CliParser
from utils.distributed import gather_objects, setup, teardown
from utils.errors import InputError
from utils.outputs import check_outputs
from video.backbones import BACKBONES, build_backbone
from video.extract import Extractor
from video.files import find_videos
from video.presets import PRESETS, preset_for
from video.writer import Outcome, extract_videos, write_index


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
    check_outputs({"--output_dir": args.output_dir})
    return args


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
    preset = preset_for(args.backbone, backbone.preprocessing, args.preset)
    dist, device = setup(args.device)
    try:
        backbone.net.to(device)
        extractor = Extractor(backbone, preset, args.crops, args.batch_size, device, args.amp, args.fps)
        outcomes = extract_videos(extractor, videos[dist.rank::dist.world_size], out_dir,
                                  label=f"videos (rank {dist.rank})" if dist.world_size > 1 else "videos")
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
