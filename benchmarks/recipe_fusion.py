"""What a label-free fusion of the Scorer with the C2FPL classifier gives, run by run, next to what the training data
say about the two (the signals a recipe may use): after ``benchmarks.recipe_variants``.

For each finished run under OUT (``<variant>/<recipe>/seed<N>/``), its last.pkl scores the test set and a seeded
sample of the training snippets (the improved recipe's check sample) with the Scorer and with the C2FPL classifier
alone, once (kept beside the run, fusion_scores.npz, for rules of one's own). The table gives, on the training
snippets (no label), the share each flags (score ≥ 0.5) and their Spearman correlation, then the test AUC of the
fused score ``(1 − w)·Scorer + w·C2FPL`` for several w (w = 0: last.pkl as trained). A second table gives, per
variant and seed, the release recipe's best-on-test and last AUC against what ``--recipe improved`` makes of the same
training (its training, evaluations and last.pkl are the release's): selected.pkl, scored with the recipe's fusion
weight (its larger one where the two scorers disagree on the sample) or by the C2FPL classifier alone where the
Scorer flags none of the sample; and whether it keeps the rule "selected ≥ last − 0.005" (do no harm).

    python -m benchmarks.recipe_fusion --out runs/rv
"""
import argparse
import json
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from benchmarks.common import ROOT
from benchmarks.recipe_variants import VARIANTS
from dataset.prepare import open_test, open_train
from engine.scoring import score_snippets
from engine.trainer import check_rows, fusion_weight
from run_test import load_model
from utils.config import RECIPES, parse_config
from utils.metrics import frame_metrics

HARM = 0.005  # selected may lose at most this much against last.pkl
WEAK = 0.05  # a run's auxiliary is weak when the C2FPL classifier alone is this much below last.pkl
WEIGHTS = (0.0, RECIPES["improved"]["score_fusion"], 0.01, 0.1, 0.25, 1.0)
SCORES = "fusion_scores.npz"


def both_scores(model, source, rows=None) -> tuple[np.ndarray, np.ndarray]:
    """(N,) Scorer and (N,) C2FPL classifier scores of ``source`` (the given rows)."""
    model.eval()
    scorer = score_snippets(lambda x: model.score(x, fusion=0.0), source, rows)
    c2fpl = score_snippets(lambda x: model.score(x, fusion=1.0), source, rows)
    return scorer, c2fpl


def run_scores(folder: Path) -> dict[str, np.ndarray]:
    """The run's four score arrays (training sample and test set, each scorer), computed once and kept."""
    path = folder / SCORES
    if not path.is_file():
        cfg = parse_config(["--config", str(folder / "config.yaml")])
        model = load_model(str(folder / "last.pkl"), torch.device("cpu"))
        train = open_train(cfg)
        s_train, c_train = both_scores(model, train, check_rows(train.n_snippets, cfg.seed))
        test = open_test(cfg)
        s_test, c_test = both_scores(model, test.source, test.rows)
        np.savez(path, scorer_train=s_train, c2fpl_train=c_train, scorer_test=s_test, c2fpl_test=c_test)
    return dict(np.load(path))


def study(folder: Path) -> dict:
    """One run's training-data signals and fused test AUCs."""
    cfg = parse_config(["--config", str(folder / "config.yaml")])
    test = open_test(cfg)
    d = run_scores(folder)
    s, c = d["scorer_train"], d["c2fpl_train"]
    aucs = {w: frame_metrics((1 - w) * d["scorer_test"] + w * d["c2fpl_test"], test.labels, test.ranges)["auc_all"]
            for w in WEIGHTS}
    fallback = not np.any(s >= 0.5)  # the improved recipe's check: the Scorer learned nothing
    spearman = float(spearmanr(s, c).statistic)
    check = {"learned_nothing": fallback, "spearman": None if np.isnan(spearman) else spearman}
    recipe = RECIPES["improved"]
    w = fusion_weight(check, *(recipe[k] for k in ("score_fusion", "disagree_fusion", "agreement", "aux_fallback")))
    selected = frame_metrics((1 - w) * d["scorer_test"] + w * d["c2fpl_test"], test.labels, test.ranges)["auc_all"]
    done = json.loads((folder / "recipe_variants.json").read_text())
    variant = folder.parents[1].name
    return {"run": str(folder.relative_to(folder.parents[2])), "variant": variant, "seed": done["seed"],
            "group": VARIANTS[variant][0] if variant in VARIANTS else "other",
            "scorer_flags": float(np.mean(s >= 0.5)), "c2fpl_flags": float(np.mean(c >= 0.5)),
            "spearman": spearman, "w": w, "aucs": aucs, "best": done["best"], "last": done["last"],
            "selected": selected, "fallback": fallback, "c2fpl": aucs[1.0]}


def summary_row(name: str, runs: list[dict]) -> str:
    """Means of a set of runs, and its worst selected − last."""
    means = " | ".join(f"{np.mean([r[k] for r in runs]):.4f}" for k in ("best", "last", "selected", "c2fpl"))
    return (f"| **{name}** | | {len(runs)} run{'s' * (len(runs) != 1)} | {means} "
            f"| worst {min(r['selected'] - r['last'] for r in runs):+.4f} |")


def rules_table(results: list[dict]) -> str:
    """Label-free rules against last.pkl, per group: a fixed weight w (with the fallback), and the recipe's rule."""
    rules = {f"w = {w:g} + fallback": lambda r, w=w: r["aucs"][1.0 if r["fallback"] else w] for w in WEIGHTS[:-1]}
    rules["C2FPL alone (w = 1)"] = lambda r: r["aucs"][1.0]
    rules["the recipe: w by agreement + fallback"] = lambda r: r["selected"]
    groups = [g for g in ("choose", "report") if any(r["group"] == g for r in results)]
    lines = ["| rule | " + " | ".join(f"{g}: runs below last − {HARM} | {g}: worst | {g}: mean − best on test"
                                       for g in groups) + " |", "|---|" + "---|---|---|" * len(groups)]
    for name, auc in rules.items():
        cells = []
        for g in groups:
            runs = [r for r in results if r["group"] == g]
            gain = [auc(r) - r["last"] for r in runs]
            cells += [f"{sum(d < -HARM for d in gain)} / {len(runs)}", f"{min(gain):+.4f}",
                      f"{np.mean([auc(r) for r in runs]) - np.mean([r['best'] for r in runs]):+.4f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def recipe_table(results: list[dict]) -> str:
    """Per variant and seed: release best-on-test and last, improved selected, C2FPL alone, the rule kept; then the
    means of the choose and report groups, of the runs where the C2FPL classifier is weak, and of all."""
    lines = ["| group | variant | seed | release: best on test | release: last | improved: selected | C2FPL alone | "
             "selected − last |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        mark = "" if r["selected"] >= r["last"] - HARM else " **(harm)**"
        note = " (fallback)" if r["fallback"] else f" (w {r['w']:g})"
        lines.append(f"| {r['group']} | {r['variant']} | {r['seed']} | {r['best']:.4f} | {r['last']:.4f} "
                     f"| {r['selected']:.4f}{note} | {r['c2fpl']:.4f} | {r['selected'] - r['last']:+.4f}{mark} |")
    for group in ("choose", "report"):
        runs = [r for r in results if r["group"] == group]
        if runs:
            lines.append(summary_row(f"{group} variants", runs))
    weak = [r for r in results if r["c2fpl"] <= r["last"] - WEAK]
    if weak:
        lines.append(summary_row(f"C2FPL alone ≥ {WEAK} below last", weak))
    lines.append(summary_row("all", results))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/recipe_variants", help="recipe_variants' folder")
    args = parser.parse_args()
    out = (ROOT / args.out).resolve()
    folders = sorted(p.parent for p in out.glob("*/*/seed*/recipe_variants.json"))
    print("| run | Scorer flags (train) | C2FPL flags (train) | Spearman (train) | "
          + " | ".join(f"AUC w={w}" for w in WEIGHTS) + " |")
    print("|---|---|---|---|" + "---|" * len(WEIGHTS))
    results = []
    for folder in folders:
        r = study(folder)
        results.append(r)
        print(f"| {r['run']} | {r['scorer_flags']:.4f} | {r['c2fpl_flags']:.4f} | {r['spearman']:.3f} | "
              + " | ".join(f"{r['aucs'][w]:.4f}" for w in WEIGHTS) + " |", flush=True)
    if results:
        recipe = RECIPES["improved"]
        print(f"\nthe improved recipe on the same trainings (selected.pkl: w = {recipe['score_fusion']}, or "
              f"{recipe['disagree_fusion']} where the two scorers' Spearman correlation on the training sample is "
              f"below {recipe['agreement']}, or the C2FPL classifier alone where the Scorer flags no training "
              "snippet)\n")
        print(recipe_table(results))
        print("\nlabel-free rules, test AUC against the release's last.pkl and best-on-test, per group\n")
        print(rules_table(results))


if __name__ == "__main__":
    main()
