"""Label-free selection criteria, measured: can the training videos alone pick a better snapshot than the last?

Trains ``--recipe improved`` on the "choose" variants of ``benchmarks.recipe_variants`` (their data and C2FPL stages
are reused from its ``--out`` folder), keeps the label-free checkpoint of every snapshot (what selected.pkl holds at
that point) and scores the training and the test snippets with each. Criteria, computed on the training snippets
only:

* ``bimodality``: a two-component Gaussian mixture of the scores; the distance of its means over their pooled
  spread (well separated normal and anomalous modes);
* ``c2fpl_agreement``: ROC AUC of the scores against the C2FPL classifier's 0/1 labels of the training snippets.

For each criterion: the test AUC of the snapshot it picks, against the last snapshot's (selected.pkl as the recipe
writes it) and the best snapshot on test (an oracle), and the Spearman correlation of criterion and test AUC over
the snapshots of a run.

    python -m benchmarks.selection_criteria --out runs/recipe_quick
"""
import argparse
import contextlib
import copy
import io
import json
import shutil
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture

import main as train_main
from benchmarks.recipe_variants import BASE, ROOT, VARIANTS, mean_std
from engine import trainer
from engine.scoring import score_snippets, score_test_set, scorer

RECIPE = ["--recipe", "improved"]
DONE = "criteria.json"


def bimodality(scores: np.ndarray) -> float:
    """|m1 - m2| / sqrt(v1 + v2) of a two-component Gaussian mixture of ``scores`` (N,)."""
    gmm = GaussianMixture(2, random_state=0).fit(scores.reshape(-1, 1).astype(np.float64))
    means, variances = gmm.means_[:, 0], gmm.covariances_.reshape(-1)
    return float(abs(means[0] - means[1]) / np.sqrt(variances.sum()))


def c2fpl_agreement(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC of ``scores`` against the C2FPL classifier's 0/1 ``labels`` (NaN with one class only)."""
    return float(roc_auc_score(labels, scores)) if 0 < labels.sum() < len(labels) else float("nan")


class Snapshots(trainer.Callback):
    """Every snapshot's label-free state (what selected.pkl holds then), and the trainer."""

    def __init__(self) -> None:
        self.states: list[tuple[int, dict]] = []
        self.trainer: trainer.Trainer | None = None

    def on_evaluation_end(self, run: trainer.Trainer, record: dict) -> None:
        state = run.selected_state(run.model.state_dict())
        self.states.append((run.progress.iteration, {k: v.detach().clone() for k, v in state.items()}))
        self.trainer = run


def train_with_snapshots(argv: list[str], log: Path) -> tuple[list[tuple[int, dict]], trainer.Trainer]:
    """main.py in this process; every snapshot's label-free state (iteration, state dict) and the trainer."""
    snapshots = Snapshots()
    with open(log, "w") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(io.StringIO()):
        train_main.main(argv, [snapshots])
    return snapshots.states, snapshots.trainer


def measure(out: Path, variant: str, seed: int) -> list[dict]:
    """One run: per snapshot, its iteration, test AUC and criteria (saved in the run's folder, reused when there)."""
    folder = out / variant / "criteria" / f"seed{seed}"
    if (folder / DONE).is_file():
        return json.loads((folder / DONE).read_text())
    shutil.rmtree(folder, ignore_errors=True)  # an unfinished run of this script
    folder.mkdir(parents=True)
    argv = [*BASE, *VARIANTS[variant][1], *RECIPE, "--seed", str(seed), "--synthetic_dir", str(out / "data" / variant),
            "--c2fpl_dir", str(out / variant / f"c2fpl-seed{seed}"), "--output_dir", str(folder)]
    snapshots, run = train_with_snapshots(argv, folder / "main.log")
    model, device, test, train = copy.deepcopy(run.model).eval(), run.device, run.test, run.train_source
    c2fpl = score_snippets(lambda x: model.scorer_c2fpl(x).squeeze(-1), train, device=device) >= 0.5
    rows = []
    for iteration, state in snapshots:
        model.load_state_dict(state)
        train_scores = score_snippets(scorer(model, device, run.cfg.amp), train, device=device)
        auc = score_test_set(model, run.cfg, test, device)[1]["auc_all"]
        rows.append({"iteration": iteration, "auc": auc,
                     "bimodality": bimodality(train_scores), "c2fpl_agreement": c2fpl_agreement(train_scores, c2fpl)})
    (folder / DONE).write_text(json.dumps(rows, indent=1) + "\n")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/recipe_variants", help="benchmarks.recipe_variants' folder")
    parser.add_argument("--seeds", default="1,2,3", help="training seeds, comma separated")
    args = parser.parse_args()
    out = (ROOT / args.out).resolve()
    variants = [v for v, (group, _) in VARIANTS.items() if group == "choose"]
    criteria = ("bimodality", "c2fpl_agreement")
    picked = {name: [] for name in ("last", "best on test (oracle)", *criteria)}
    correlation = {name: [] for name in criteria}
    for variant in variants:
        for seed in (int(s) for s in args.seeds.split(",")):
            rows = measure(out, variant, seed)
            aucs = np.array([r["auc"] for r in rows])
            picked["last"].append(aucs[-1])
            picked["best on test (oracle)"].append(aucs.max())
            for name in criteria:
                values = np.array([r[name] for r in rows])
                picked[name].append(aucs[np.nanargmax(values)])
                correlation[name].append(spearmanr(values, aucs, nan_policy="omit").statistic)
            print(f"{variant} seed {seed}: " + ", ".join(
                f"it {r['iteration']} auc {r['auc']:.4f} bi {r['bimodality']:.2f} agr {r['c2fpl_agreement']:.3f}"
                for r in rows), flush=True)
    print("\n| snapshot picked by | test AUC (mean ± std over runs) | Spearman with test AUC |\n|---|---|---|")
    for name, values in picked.items():
        rho = mean_std(correlation[name]) if name in correlation else ""
        print(f"| {name} | {mean_std(values)} | {rho} |")


if __name__ == "__main__":
    main()
