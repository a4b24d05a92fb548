"""FRD-UVAD from the command line: configuration → data → model (+ auxiliary) → training.

    python main.py                                  # the synthetic default, end to end
    python main.py --dataset_name ucfcrime ...      # the paper's command (README)
    python main.py --stage data --output_dir DIR    # write the synthetic dataset into DIR
    python main.py --stage c2fpl                    # C2FPL pseudo labels and classifier only
"""
import sys
from pathlib import Path

import train_c2fpl

from dataset import synthetic
from dataset.prepare import open_test, open_train, prepare, synthetic_spec
from utils.config import Config, parse_config
from utils.device import resolve_device
from utils.errors import InputError
from utils.io import save_text


def write_synthetic(cfg: Config) -> None:
    """``--stage data``: the synthetic dataset into ``--output_dir`` under the UCF-Crime file names."""
    if not cfg.output_dir:
        raise InputError("--output_dir", "--stage data needs a folder to write into")
    files = synthetic.ensure(cfg.output_dir, synthetic_spec(cfg))
    save_text(Path(cfg.output_dir) / "config.yaml", cfg.to_yaml())
    for key, path in files.items():
        print(f"  {key:<15} {path}")
    print(f"crop-averaged squared-L2-norm baseline, test frame AUC: {synthetic.norm_score_auc(cfg.output_dir):.4f}")


def c2fpl_dir(cfg: Config) -> str:
    """Where the C2FPL stage's files live (and are reused from) when no folder is given."""
    return cfg.c2fpl_dir or str(Path("ckpt") / cfg.dataset_name / "c2fpl")


def main(argv: list[str] | None = None) -> None:
    cfg = parse_config(argv, description=__doc__.splitlines()[0])
    print("configuration:\n" + cfg.summary())
    if cfg.stage == "data":
        return write_synthetic(cfg)
    cfg = prepare(cfg)
    device = resolve_device(cfg.device)
    train, test = open_train(cfg), open_test(cfg)
    print(f"train: {train.n_snippets} snippets x {train.n_crops} crops x {train.feature_size} ({train.path})")
    print(f"test:  {test.n_snippets} snippets, {test.labels.size} frames ({test.source.path})")
    if cfg.stage == "c2fpl":
        out_dir = cfg.output_dir or c2fpl_dir(cfg)
        train_c2fpl.run_stage(cfg, train, test, out_dir, device)
        save_text(Path(out_dir) / "config.yaml", cfg.to_yaml())
        return


if __name__ == "__main__":
    try:
        main()
    except InputError as e:
        sys.exit(f"error: {e}")
