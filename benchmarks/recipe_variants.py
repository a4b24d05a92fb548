"""Recipes compared on synthetic variants: best-on-test, last and selected AUC, mean ± std over training seeds.

Each run is ``main.py`` in its own folder, OUT/<variant>/<recipe>/seed<N>/, then ``run_test.py --run_dir`` scores
its checkpoints on the test set (with the test labels, after training: a recipe's choice used none). The C2FPL stage
of a variant and seed is shared by the recipes (it is the same for all: its cache checks its inputs). A finished
run (its recipe_variants.json) is reused and an interrupted one continued, so the grid can be stopped and started
again. The variants come in two groups: "choose" to pick a recipe's values, "report" to measure the chosen ones.

    python -m benchmarks.recipe_variants --quick                       # 2 variants x 2 seeds, a few minutes
    python -m benchmarks.recipe_variants --group choose --recipes recipe=release recipe=improved \\
        recipe=improved,ema_decay=0.999,score_fusion=0.3
    python -m benchmarks.recipe_variants --group report --recipes recipe=release recipe=improved,score_fusion=0.3
    python -m benchmarks.recipe_variants --group report --average_seeds   # also: the seeds' scores averaged
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT  # where the runs run
from dataset.synthetic import FILES
from utils.metrics import frame_metrics

BASE = ["--synth_train_videos", "140", "--synth_test_videos", "70"]  # configs/synthetic.yaml at half the videos
VARIANTS = {  # name: (group, main.py flags on top of BASE)
    "seed1": ("choose", ["--synth_seed", "1"]),
    "seed2-crops5": ("choose", ["--synth_seed", "2", "--synth_crops", "5"]),
    "seed3-d512": ("choose", ["--synth_seed", "3", "--feature_size", "512"]),
    "seed4-crops1": ("choose", ["--synth_seed", "4", "--synth_crops", "1"]),
    "seed5": ("report", ["--synth_seed", "5"]),
    "seed6-d1024": ("report", ["--synth_seed", "6", "--feature_size", "1024"]),
    "seed7-crops5-d512": ("report", ["--synth_seed", "7", "--synth_crops", "5", "--feature_size", "512"]),
    "seed8-crops1": ("report", ["--synth_seed", "8", "--synth_crops", "1"]),
    "seed9-anomalous0.2": ("report", ["--synth_seed", "9", "--synth_anomalous_fraction", "0.2"]),
    "seed10-anomalous0.35-crops5": ("report", ["--synth_seed", "10", "--synth_anomalous_fraction", "0.35",
                                               "--synth_crops", "5"]),
    "seed11-motion+burst": ("report", ["--synth_seed", "11", "--synth_anomaly_types", "motion,burst"]),
    "seed12-appearance+scene_mix-d512": ("report", ["--synth_seed", "12", "--synth_anomaly_types",
                                                    "appearance,scene_mix", "--feature_size", "512"]),
}
# Built like UCF-Crime, where the C2FPL classifier is weak: 512-d or 2048-d, 10 crops, 60 + 30 videos with UCF-Crime's
# training lengths scaled by 0.25 (up to 300 snippets), half of them anomalous, one anomaly mechanism or two (surge:
# extra energy; drift: off the normal features at the same norm) with short, mixed or long events; trained with the
# paper's UCF-Crime flags (configs/ucfcrime.yaml's model, every 5 iterations an evaluation).
UCF_LIKE = ["--synth_train_videos", "60", "--synth_test_videos", "30", "--synth_max_length", "300",
            "--synth_length_scale", "0.25", "--cross_clip", "4", "--Vitblock_num", "8", "--max_seqlen", "320",
            "--max_epoch", "5", "--snapshot", "5", "--lab", "False"]
VARIANTS.update({
    "ucf-surge-d512": ("choose", [*UCF_LIKE, "--synth_seed", "21", "--feature_size", "512",
                                  "--synth_anomaly_types", "surge"]),
    "ucf-surge+drift-short-d512": ("choose", [*UCF_LIKE, "--synth_seed", "22", "--feature_size", "512",
                                              "--synth_anomaly_types", "surge,drift",
                                              "--synth_event_share", "0.03,0.12"]),
    "ucf-surge-short-d512": ("report", [*UCF_LIKE, "--synth_seed", "23", "--feature_size", "512",
                                        "--synth_anomaly_types", "surge", "--synth_event_share", "0.03,0.12"]),
    "ucf-drift-long-d512": ("report", [*UCF_LIKE, "--synth_seed", "24", "--feature_size", "512",
                                       "--synth_anomaly_types", "drift", "--synth_event_share", "0.4,0.8"]),
    "ucf-surge+drift-d2048": ("report", [*UCF_LIKE, "--synth_seed", "25", "--feature_size", "2048",
                                         "--synth_anomaly_types", "surge,drift"]),
})
# The same at 120 + 60 videos, the size at which the C2FPL classifier falls behind FRD-UVAD (at 60 the Scorer's
# pseudo labels are too few and it is the other way round): the weak-auxiliary case.
UCF_WEAK = [*UCF_LIKE, "--synth_train_videos", "120", "--synth_test_videos", "60"]
VARIANTS.update({
    "ucf120-surge-d512": ("choose", [*UCF_WEAK, "--synth_seed", "31", "--feature_size", "512",
                                     "--synth_anomaly_types", "surge"]),
    "ucf120-surge-d512-b": ("report", [*UCF_WEAK, "--synth_seed", "32", "--feature_size", "512",
                                       "--synth_anomaly_types", "surge"]),
    "ucf120-surge-short-d512": ("report", [*UCF_WEAK, "--synth_seed", "34", "--feature_size", "512",
                                           "--synth_anomaly_types", "surge", "--synth_event_share", "0.03,0.12"]),
    # 2048-d with a reconstructor of 2 blocks instead of 8: at 8 an iteration takes ~65 s on one CPU core
    "ucf120-surge+drift-d2048": ("report", [*UCF_WEAK, "--synth_seed", "33", "--feature_size", "2048",
                                            "--synth_anomaly_types", "surge,drift", "--Vitblock_num", "2"]),
})
QUICK = ("seed1", "seed2-crops5")
DONE = "recipe_variants.json"
COLUMNS = (("best", "best on test AUC (test labels)"), ("last", "last AUC"), ("selected", "selected AUC"),
           ("c2fpl", "C2FPL classifier alone AUC"))


def recipe_flags(recipe: str) -> list[str]:
    """'recipe=improved,ema_decay=0.999' → ['--recipe', 'improved', '--ema_decay', '0.999']."""
    flags = []
    for item in recipe.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            sys.exit(f"error: --recipes: expected key=value[,key=value...], got {recipe!r}")
        flags += [f"--{key.strip()}", value.strip()]
    return flags


def folder_name(recipe: str) -> str:
    return recipe.replace("=", "-").replace(",", "_")


def run(argv: list[str], log: Path) -> None:
    with open(log, "a") as f:
        subprocess.run([sys.executable, *argv], cwd=ROOT, check=True, stdout=f, stderr=subprocess.STDOUT)


def train_and_score(out: Path, variant: str, recipe: str, seed: int) -> dict:
    """One run (trained, or continued from its resume.pt) and its checkpoints' test metrics; what is saved in
    ``DONE``."""
    folder = out / variant / folder_name(recipe) / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    started, continued = time.perf_counter(), (folder / "resume.pt").is_file()
    if continued:
        run(["main.py", "--resume", str(folder / "resume.pt")], folder / "main.log")
    else:
        run(["main.py", *BASE, *VARIANTS[variant][1], *recipe_flags(recipe), "--seed", str(seed),
             "--synthetic_dir", str(out / "data" / variant), "--c2fpl_dir", str(out / variant / f"c2fpl-seed{seed}"),
             "--output_dir", str(folder)], folder / "main.log")
    seconds = time.perf_counter() - started
    run(["run_test.py", "--run_dir", str(folder), "--metrics_out", str(folder / "checkpoints.json")],
        folder / "run_test.log")
    checkpoints = json.loads((folder / "checkpoints.json").read_text())["checkpoints"]
    best = [m["auc_all"] for m in checkpoints.values() if not m["label_free"]]
    result = {"variant": variant, "recipe": recipe, "seed": seed, "seconds": round(seconds, 1),
              "continued": continued,
              "best": best[0] if best else None, "last": checkpoints["last.pkl"]["auc_all"],
              "selected": checkpoints.get("selected.pkl", {}).get("auc_all")}
    (folder / DONE).write_text(json.dumps(result, indent=1) + "\n")
    return result


def c2fpl_auc(out: Path, variant: str, seed: int) -> float | None:
    """The test AUC of the run's C2FPL classifier alone (its stage's summary), None when the stage did not test it."""
    summary = out / variant / f"c2fpl-seed{seed}" / "c2fpl_summary.json"
    tested = json.loads(summary.read_text()).get("classifier_test") if summary.is_file() else None
    return tested["auc_all"] if tested else None


def mean_std(values: list[float | None]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    std = np.std(values, ddof=1) if len(values) > 1 else 0.0
    return f"{np.mean(values):.4f} ± {std:.4f}"


def table(results: list[dict], variants: list[str], recipes: list[str]) -> str:
    """One Markdown row per group, variant and recipe; then per group and recipe, every run of the group."""
    head = "| group | variant | recipe | seeds | " + " | ".join(name for _, name in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (4 + len(COLUMNS))]

    def row(group: str, variant: str, recipe: str, runs: list[dict]) -> str:
        cells = [mean_std([r[key] for r in runs]) for key, _ in COLUMNS]
        return f"| {group} | {variant} | {recipe} | {len(runs)} | " + " | ".join(cells) + " |"

    for group in ("choose", "report"):
        names = [v for v in variants if VARIANTS[v][0] == group]
        for variant in names:
            for recipe in recipes:
                runs = [r for r in results if r["variant"] == variant and r["recipe"] == recipe]
                if runs:
                    lines.append(row(group, variant, recipe, runs))
        for recipe in recipes:
            runs = [r for r in results if r["variant"] in names and r["recipe"] == recipe]
            if len(names) > 1 and runs:
                lines.append(row(group, f"**all {len(names)}**", recipe, runs))
    return "\n".join(lines)


def label_free_scores(folder: Path) -> np.ndarray:
    """(N_test,) scores of a run's label-free checkpoint (selected.pkl, else last.pkl), saved beside it once."""
    ckpt = folder / "selected.pkl" if (folder / "selected.pkl").is_file() else folder / "last.pkl"
    scores = folder / f"{ckpt.stem}_scores.npy"
    if not scores.is_file():
        run(["run_test.py", "--config", str(folder / "config.yaml"), "--ckpt_path", str(ckpt),
             "--scores_out", str(scores)], folder / "run_test.log")
    return np.load(scores)


def seed_average_table(out: Path, results: list[dict], variants: list[str], recipes: list[str]) -> str:
    """Per variant and recipe: the label-free checkpoint's AUC, one seed (mean ± std) against the seeds' scores
    averaged (an ensemble that costs one training per seed)."""
    lines = ["| variant | recipe | seeds | one seed: AUC | seeds averaged: AUC |", "|---|---|---|---|---|"]
    for variant in variants:
        data = out / "data" / variant
        gt, ranges = np.load(data / FILES["test_gt"]), np.load(data / FILES["test_ranges"])
        for recipe in recipes:
            runs = [r for r in results if r["variant"] == variant and r["recipe"] == recipe]
            if len(runs) < 2:
                continue
            scores = [label_free_scores(out / variant / folder_name(recipe) / f"seed{r['seed']}") for r in runs]
            one = [frame_metrics(s, gt, ranges)["auc_all"] for s in scores]
            averaged = frame_metrics(np.mean(scores, axis=0), gt, ranges)["auc_all"]
            lines.append(f"| {variant} | {recipe} | {len(runs)} | {mean_std(one)} | {averaged:.4f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/recipe_variants", help="the folder of every run (reused when rerun)")
    parser.add_argument("--group", choices=("choose", "report", "all"), default="choose",
                        help="which variants: choose (to pick a recipe's values), report (to measure them) or all")
    parser.add_argument("--recipes", nargs="+", default=["recipe=release", "recipe=improved"], metavar="K=V[,K=V]",
                        help="recipe settings to compare, main.py flags as key=value (default: the two recipes)")
    parser.add_argument("--seeds", default=None, help="training seeds, comma separated (default 1,2,3; --quick 1,2)")
    parser.add_argument("--average_seeds", action="store_true",
                        help="also score each run's label-free checkpoint and average the scores over the seeds")
    parser.add_argument("--quick", action="store_true", help=f"the variants {' and '.join(QUICK)} with seeds 1,2")
    parser.add_argument("--variants", default=None, metavar="NAMES",
                        help="only these variants of the group, comma separated (default: all of it)")
    args = parser.parse_args()
    out = (ROOT / args.out).resolve()
    variants = list(QUICK) if args.quick else [v for v, (g, _) in VARIANTS.items() if args.group in (g, "all")]
    if args.variants:
        unknown = set(args.variants.split(",")) - set(variants)
        if unknown:
            sys.exit(f"error: --variants: not in group {args.group}: {', '.join(sorted(unknown))}")
        variants = [v for v in variants if v in args.variants.split(",")]
    seeds = [int(s) for s in (args.seeds or ("1,2" if args.quick else "1,2,3")).split(",")]
    for recipe in args.recipes:
        recipe_flags(recipe)
    grid = [(v, r, s) for v in variants for r in args.recipes for s in seeds]
    results, timed, failed = [], [], []
    for n, (variant, recipe, seed) in enumerate(grid, 1):
        done = out / variant / folder_name(recipe) / f"seed{seed}" / DONE
        where = f"[{n}/{len(grid)}] {variant} {recipe} seed {seed}"
        if done.is_file():
            results.append({**json.loads(done.read_text()), "c2fpl": c2fpl_auc(out, variant, seed)})
            print(f"{where}: reused", flush=True)
            continue
        try:
            result = train_and_score(out, variant, recipe, seed)
        except subprocess.CalledProcessError as e:
            failed.append(where)
            print(f"{where}: failed ({e.returncode}); see {done.parent}/*.log", flush=True)
            continue
        results.append({**result, "c2fpl": c2fpl_auc(out, variant, seed)})
        timed.append(result["seconds"])
        print(f"{where}: {result['seconds']:.0f} s, last {result['last']:.4f}", flush=True)
    if timed:
        print(f"\none run ({len(timed)} here): {np.mean(timed):.0f} s on average, {min(timed):.0f}-{max(timed):.0f} s "
              "(training and its evaluations; the C2FPL stage and the dataset only in a variant's first runs)")
    print(f"\nruns in {out}; AUC: mean ± std over seeds\n")
    print(table(results, variants, args.recipes))
    if args.average_seeds:
        print("\nthe label-free checkpoint (selected.pkl, else last.pkl): one seed against the seeds' scores "
              "averaged\n")
        print(seed_average_table(out, results, variants, args.recipes))
    if failed:
        sys.exit(f"error: {len(failed)} run(s) failed: {'; '.join(failed)}")


if __name__ == "__main__":
    main()
