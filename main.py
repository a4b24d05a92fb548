"""FRD-UVAD from the command line: configuration → data → model (+ auxiliary) → training.

    python main.py                                  # the synthetic default, end to end
    python main.py --dataset_name ucfcrime ...      # the paper's command (README)
    python main.py --stage data --output_dir DIR    # write the synthetic dataset into DIR
"""
import sys
from pathlib import Path

from dataset import synthetic
from dataset.prepare import open_test, open_train, prepare, synthetic_spec
from utils.config import Config, parse_config
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


def main(argv: list[str] | None = None) -> None:
    cfg = parse_config(argv, description=__doc__.splitlines()[0])
    print("configuration:\n" + cfg.summary())
    if cfg.stage == "data":
        return write_synthetic(cfg)
    cfg = prepare(cfg)
    train, test = open_train(cfg), open_test(cfg)
    print(f"train: {train.n_snippets} snippets x {train.n_crops} crops x {train.feature_size} ({train.path})")
    print(f"test:  {test.n_snippets} snippets, {test.labels.size} frames ({test.source.path})")


if __name__ == "__main__":
    try:
        main()
    except InputError as e:
        sys.exit(f"error: {e}")
