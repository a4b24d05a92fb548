"""Ctrl-C: the state after the last completed step is saved, the run continues exactly with --resume, and the
command line says so in one line (exit status 130)."""
import json
import re
import runpy
import signal
import sys

import pytest
import torch

import main
from conftest import ROOT
from engine import trainer
from test_train import TINY

DROPOUT = ["--max_epoch", "1", "--keep_train_mode", "True"]  # dropout in every step: the random state matters


@pytest.fixture(autouse=True)
def ctrl_c_raises():
    """SIGINT raises KeyboardInterrupt as on a terminal, also in a background job (which starts with it ignored)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("synthetic"))


def records(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def uninterrupted(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    main.main([*TINY, *DROPOUT, "--synthetic_dir", data_dir, "--output_dir", str(out)])
    return out, records(out)


def interrupt_optimizer_step(monkeypatch, call: int, signal_after: bool) -> None:
    """Ctrl-C at the ``call``-th optimiser step: a KeyboardInterrupt before the update (``signal_after``: a SIGINT
    once the update is done, while the step is held)."""
    real, calls = torch.optim.AdamW.step, []

    def step(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == call and not signal_after:
            raise KeyboardInterrupt
        result = real(self, *args, **kwargs)
        if len(calls) == call:
            signal.raise_signal(signal.SIGINT)
        return result

    monkeypatch.setattr(torch.optim.AdamW, "step", step)


class InterruptEvaluation(trainer.Callback):
    """Ctrl-C as the ``call``-th evaluation starts to score the test set."""

    def __init__(self, call: int) -> None:
        self.call, self.calls = call, 0

    def on_evaluation_start(self, run: trainer.Trainer) -> None:
        self.calls += 1
        if self.calls == self.call:
            raise KeyboardInterrupt


@pytest.mark.parametrize("where,call,iteration,interval_steps", [
    ("before the update", 2, 1, 1),  # step 2 is dropped: its dropout, bank and loss sums are undone
    ("after the update", 5, 5, 2),   # the update is held whole: step 5 counts
    ("in the evaluation", 2, 6, 3),  # the second evaluation (iteration 6) is redone on resume
])
def test_interrupted_run_resumes_like_the_uninterrupted_one(data_dir, uninterrupted, tmp_path, monkeypatch,
                                                            where, call, iteration, interval_steps):
    reference, expected = uninterrupted
    out = tmp_path / "run"
    callbacks = [InterruptEvaluation(call)] if where == "in the evaluation" else []
    if not callbacks:
        interrupt_optimizer_step(monkeypatch, call, signal_after=where == "after the update")
    resume = out / "resume.pt"
    line = f"interrupted at iteration {iteration}: saved {resume}; continue with: python main.py --resume {resume}"
    with pytest.raises(trainer.Interrupted, match=f"^{re.escape(line)}$"):
        main.main([*TINY, *DROPOUT, "--synthetic_dir", data_dir, "--output_dir", str(out)], callbacks)
    monkeypatch.undo()
    state = torch.load(resume, weights_only=True)
    assert state["progress"]["iteration"] == iteration == state["progress"]["batch_in_epoch"]
    assert state["interval"]["steps"] == interval_steps
    main.main(["--resume", str(resume)])
    assert records(out) == expected
    last, reference_last = (torch.load(d / "last.pkl", weights_only=True) for d in (out, reference))
    assert last.keys() == reference_last.keys()
    for key in last:
        assert torch.equal(last[key], reference_last[key]), key


def test_ctrl_c_prints_one_line_and_exits_130(data_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    interrupt_optimizer_step(monkeypatch, call=1, signal_after=False)
    monkeypatch.setattr(sys, "argv", ["main.py", *TINY, "--synthetic_dir", data_dir, "--output_dir", str(out),
                                      "--max_iters", "5"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(ROOT / "main.py"), run_name="__main__")
    assert exit_info.value.code == 130
    err = capsys.readouterr().err
    resume = out / "resume.pt"
    assert err.splitlines()[-1] == (f"interrupted at iteration 0: saved {resume}; continue with: "
                                    f"python main.py --resume {resume} --max_iters 5")
    assert "Traceback" not in err and resume.is_file()


@pytest.mark.parametrize("given,named", [("missing/resume.pt", "missing/resume.pt"),
                                         (".", "resume.pt")])
def test_missing_resume_file_is_named(tmp_path, monkeypatch, given, named):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["main.py", "--resume", given])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(ROOT / "main.py"), run_name="__main__")
    assert exit_info.value.code == f"error: {named}: resume file not found"
