"""Progress displays: tqdm's bar on a terminal, a few plain lines when the stream is a log (counted, not timed)."""
import io
import re
import sys

import numpy as np
from tqdm import tqdm

from dataset.features import ArrayFeatures
from engine import c2fpl_stage
from utils.config import parse_config
from utils.progress import LogProgress, progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_log_lines_and_a_terminal_gets_the_bar():
    assert isinstance(progress_bar(total=1, file=io.StringIO()), LogProgress)
    bar = progress_bar(total=1, file=Terminal())
    assert isinstance(bar, tqdm) and not isinstance(bar, LogProgress)


def test_thousands_of_updates_in_a_log_are_one_final_line_without_carriage_returns():
    log = io.StringIO()
    with progress_bar(total=5000, desc="work", unit="it", file=log, dynamic_ncols=True) as bar:
        for i in range(5000):
            bar.update(1)
            if i % 10 == 0:
                bar.set_postfix(loss=f"{i:.4f}")  # a refresh each time on a terminal
    text = log.getvalue()
    assert "\r" not in text and "\x1b" not in text
    assert text.count("\n") == 1 and text.startswith("work: 100%") and "5000/5000" in text and "loss=" in text


def test_the_same_updates_on_a_terminal_redraw_the_bar():
    terminal = Terminal()
    with progress_bar(total=500, desc="work", file=terminal, mininterval=0) as bar:
        for _ in range(500):
            bar.update(1)
    assert terminal.getvalue().count("\r") > 100


def test_a_log_line_per_interval_and_none_for_a_bar_that_does_not_stay():
    log = io.StringIO()
    with LogProgress(total=3, desc="work", file=log, interval=0) as bar:
        for _ in range(3):
            bar.update(1)
    assert re.findall(r"\| (\d+/3) \[", log.getvalue()) == ["1/3", "2/3", "3/3"] and log.getvalue().count("\n") == 3
    log = io.StringIO()
    with progress_bar(total=3, desc="work", file=log, leave=False) as bar:
        bar.update(3)
    assert log.getvalue() == ""


def test_a_line_written_through_tqdm_during_a_log_display_is_the_line_alone(capsys):
    with progress_bar(total=10, desc="work") as bar:
        bar.update(4)
        tqdm.write("warning: a line", file=sys.stderr)
        bar.update(6)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "warning: a line" and len(lines) == 2 and "10/10" in lines[1] and "\r" not in lines[1]


def test_c2fpl_classifier_training_logs_one_line_into_a_redirected_stderr(capsys):
    features = np.random.default_rng(0).random((600, 2, 16), dtype=np.float32)
    labels = (np.arange(600) % 5 == 0).astype(np.float32)
    recipe = parse_config(["--c2fpl_epochs", "5", "--c2fpl_batch_size", "16"]).c2fpl_recipe
    c2fpl_stage.train_classifier(ArrayFeatures(features), labels, seed=0, recipe=recipe)  # 190 batches
    err = capsys.readouterr().err
    assert "\r" not in err and err.count("\n") == 1 and "190/190" in err
