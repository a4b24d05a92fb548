"""What a label-free fusion of the Scorer with the C2FPL classifier would have given, run by run, next to what the
training data say about the two (the signals a recipe may use): after ``benchmarks.recipe_variants``.

For each finished run under OUT (``<variant>/<recipe>/seed<N>/``), its last.pkl is scored on the test set with
fusion weights w (``(1 − w)·Scorer + w·C2FPL``) and, on the training snippets (no label), the share the Scorer
flags (score ≥ 0.5), the share the C2FPL classifier flags, and the two scorers' Spearman correlation; the four
score arrays are kept beside the run (fusion_scores.npz) for rules of one's own.

    python -m benchmarks.recipe_fusion --out runs/rv
"""
import argparse
import json
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from benchmarks.common import ROOT
from dataset.prepare import open_test, open_train
from engine.scoring import score_snippets
from run_test import load_model
from utils.config import parse_config
from utils.metrics import frame_metrics

WEIGHTS = (0.0, 0.1, 0.25, 0.5, 1.0)


def both_scores(model, source, rows=None) -> tuple[np.ndarray, np.ndarray]:
    """(N,) Scorer and (N,) C2FPL classifier scores of ``source`` (the given rows)."""
    model.eval()
    scorer = score_snippets(lambda x: model.score(x, fusion=0.0), source, rows)
    c2fpl = score_snippets(lambda x: model.score(x, fusion=1.0), source, rows)
    return scorer, c2fpl


def study(folder: Path) -> dict:
    """One run's fused test AUCs and training-data signals."""
    cfg = parse_config(["--config", str(folder / "config.yaml")])
    model = load_model(str(folder / "last.pkl"), torch.device("cpu"))
    train = open_train(cfg)
    rows = np.arange(train.n_snippets)
    if len(rows) > 8192:
        rows = np.sort(np.random.default_rng(cfg.seed).choice(rows, 8192, replace=False))
    s_train, c_train = both_scores(model, train, rows)
    test = open_test(cfg)
    s_test, c_test = both_scores(model, test.source, test.rows)
    np.savez(folder / "fusion_scores.npz", scorer_train=s_train, c2fpl_train=c_train, scorer_test=s_test,
             c2fpl_test=c_test)
    aucs = {w: frame_metrics((1 - w) * s_test + w * c_test, test.labels, test.ranges)["auc_all"] for w in WEIGHTS}
    return {"run": str(folder.relative_to(folder.parents[2])), "scorer_flags": float(np.mean(s_train >= 0.5)),
            "c2fpl_flags": float(np.mean(c_train >= 0.5)),
            "spearman": float(spearmanr(s_train, c_train).statistic), **{f"w{w}": a for w, a in aucs.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/recipe_variants", help="recipe_variants' folder")
    args = parser.parse_args()
    out = (ROOT / args.out).resolve()
    folders = sorted(p.parent for p in out.glob("*/*/seed*/recipe_variants.json"))
    print("| run | Scorer flags (train) | C2FPL flags (train) | Spearman (train) | "
          + " | ".join(f"AUC w={w}" for w in WEIGHTS) + " |")
    print("|---|---|---|---|" + "---|" * len(WEIGHTS))
    for folder in folders:
        cache = folder / "recipe_fusion.json"
        r = json.loads(cache.read_text()) if cache.is_file() else study(folder)
        cache.write_text(json.dumps(r) + "\n")
        print(f"| {r['run']} | {r['scorer_flags']:.4f} | {r['c2fpl_flags']:.4f} | {r['spearman']:.3f} | "
              + " | ".join(f"{r[f'w{w}']:.4f}" for w in WEIGHTS) + " |", flush=True)


if __name__ == "__main__":
    main()
