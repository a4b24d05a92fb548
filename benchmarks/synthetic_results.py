"""docs/results.md's synthetic results table: FRD-UVAD with each auxiliary scorer, and the baselines.

Runs, on the default synthetic dataset and configs/synthetic.yaml:
  1. ``main.py --aux none``;
  2. ``run_test.py --split train --save_pseudo_labels`` with that model (the "FRD" auxiliary labels);
  3. ``main.py --aux frd --aux_labels <those labels>``;
  4. ``main.py --aux c2fpl`` (the default job);
then prints one Markdown table. About ten minutes on two CPU cores.

    python -m benchmarks.synthetic_results --out runs/synthetic_results
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

from dataset.prepare import synthetic_dir
from dataset.synthetic import norm_score_auc
from utils.config import parse_config

ROOT = Path(__file__).resolve().parents[1]  # where the runs run


def run(*argv: str) -> None:
    subprocess.run([sys.executable, *argv], cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/synthetic_results", help="a new folder for the three runs")
    out = (ROOT / parser.parse_args().out).resolve()
    if out.exists():
        sys.exit(f"error: {out}: already exists; choose another --out")
    labels = out / "frd_aux_labels.npy"
    run("main.py", "--aux", "none", "--output_dir", str(out / "none"))
    run("run_test.py", "--ckpt_path", str(out / "none" / "last.pkl"), "--split", "train",
        "--save_pseudo_labels", str(labels))
    run("main.py", "--aux", "frd", "--aux_labels", str(labels), "--output_dir", str(out / "frd"))
    run("main.py", "--aux", "c2fpl", "--output_dir", str(out / "c2fpl"), "--c2fpl_dir", str(out / "c2fpl_stage"))
    summary = json.loads((out / "c2fpl_stage" / "c2fpl_summary.json").read_text())
    norm_auc = norm_score_auc(ROOT / synthetic_dir(parse_config([])))
    print("| method | best AUC (test-selected) | last AUC | last AUC_abn | last AP |")
    print("|---|---|---|---|---|")
    print(f"| feature norm (crop-averaged squared L2) | | {norm_auc:.4f} | | |")
    c2 = summary["classifier_test"]
    print(f"| C2FPL classifier alone | | {c2['auc_all']:.4f} | {c2['auc_abn']:.4f} | {c2['ap']:.4f} |")
    for aux in ("none", "frd", "c2fpl"):
        history = records(out / aux)
        best, last = max(h["auc_all"] for h in history), history[-1]
        print(f"| FRD-UVAD, auxiliary {aux} | {best:.4f} | {last['auc_all']:.4f} | {last['auc_abn']:.4f} | "
              f"{last['ap']:.4f} |")


if __name__ == "__main__":
    main()
