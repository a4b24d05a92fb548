"""torchrun / DDP: two gloo processes compute what one process computes with the global batch."""
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

import main
import run_test
from conftest import ROOT
from engine.global_batch import GlobalBatchStatistics, global_batch_means
from model.frd import FRDUVAD, BatchStatistics, ModelConfig
from utils.distributed import global_mean_std, setup, teardown
from utils.errors import InputError

GLOBAL_BATCH, STEPS = 8, 4


def run_steps(rank: int, world: int, folder: str) -> None:
    """A few LAB training steps on a fixed batch sequence; each rank takes its contiguous slice of the batch.

    Plain SGD, so that parameters compare to float tolerance: Adam divides by the root of each gradient's
    second moment, which turns rounding-level differences in near-zero gradients into visible updates.
    """
    if world > 1:
        dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = FRDUVAD(ModelConfig(256, 4, 2, lab=True, aux="none", bank_capacity=GLOBAL_BATCH // 2)).eval()
    net = DistributedDataParallel(model, forward_sync_buffers=False) if world > 1 else model
    statistics = GlobalBatchStatistics() if world > 1 else BatchStatistics()  # as the Trainer chooses
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    bank_rng, data_rng = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    thresholds, ldi = [], []
    for step in range(STEPS):
        x = torch.rand(GLOBAL_BATCH - (step == STEPS - 1), 2, 4, 256, generator=data_rng)  # last: 4 + 3 samples
        x[: GLOBAL_BATCH // 2:2] *= 3  # some clearly anomalous samples for the bank
        out = global_batch_means(net(x.chunk(world)[rank], None, bank_rng, statistics), model)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        thresholds.append(out.threshold)
        ldi.append(out.Ldi.detach())
    values = torch.arange(12, dtype=torch.float32).pow(1.5).requires_grad_()
    shared = torch.tensor([2.0, 7.0, 30.0], requires_grad=True)
    mine = values.chunk(world)[rank].detach().requires_grad_()
    mean, std = global_mean_std(torch.cat([mine, shared]), shared_from=len(mine))
    (mean + 0.3 * std).backward()
    torch.save({"params": model.state_dict(), "bank": model.bank.state(), "thresholds": torch.stack(thresholds),
                "Ldi": torch.stack(ldi), "stats": torch.stack([mean, std]).detach(), "grad_own": mine.grad,
                "grad_shared": shared.grad},
               f"{folder}/rank{rank}.pt")
    if world > 1:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    one, two = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    run_steps(0, 1, str(one))
    mp.spawn(run_steps, args=(2, str(two)), nprocs=2)
    load = lambda path: torch.load(path, weights_only=True)  # noqa: E731
    return load(one / "rank0.pt"), load(two / "rank0.pt"), load(two / "rank1.pt")


def test_ranks_agree_bit_for_bit(runs):
    _, rank0, rank1 = runs
    for key in rank0["params"]:
        assert torch.equal(rank0["params"][key], rank1["params"][key]), key
    assert torch.equal(rank0["bank"], rank1["bank"]) and torch.equal(rank0["thresholds"], rank1["thresholds"])


def test_two_ranks_train_like_one_process_with_the_global_batch(runs):
    single, rank0, _ = runs
    assert single["bank"].shape[0] == 4 and torch.equal(rank0["bank"], single["bank"])
    assert (single["Ldi"] > 0).any()  # the threshold's gradient (through the all-reduce) is in play
    torch.testing.assert_close(rank0["thresholds"], single["thresholds"], rtol=1e-5, atol=1e-7)
    moved = 0
    for key, value in single["params"].items():
        torch.testing.assert_close(rank0["params"][key], value, rtol=1e-4, atol=1e-6, msg=key)
        moved += not torch.equal(value, FRDUVAD(ModelConfig(256, 4, 2)).state_dict()[key])
    assert moved > 10


def test_global_statistics_and_their_gradients(runs):
    single, rank0, rank1 = runs
    values = torch.arange(12, dtype=torch.float64).pow(1.5)
    everything = torch.cat([values, torch.tensor([2.0, 7.0, 30.0], dtype=torch.float64)])
    expected = torch.stack([everything.mean(), everything.std()]).float()
    for run in (single, rank0, rank1):
        torch.testing.assert_close(run["stats"], expected, rtol=1e-6, atol=1e-6)
    # Rank r's own rows receive every rank's gradient (world × the one-process gradient; DDP then averages);
    # the shared rows count once.
    own = torch.cat([rank0["grad_own"], rank1["grad_own"]]) / 2
    torch.testing.assert_close(own, single["grad_own"], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(rank0["grad_shared"], single["grad_shared"], rtol=1e-5, atol=1e-7)


def test_global_batch_must_split_evenly(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(InputError, match=r"--max_seqlen: the global batch 30 is not divisible by the 4 processes"):
        setup("cpu", 30)


def test_only_training_runs_under_torchrun(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(InputError, match=r"--stage: c2fpl runs in one process; torchrun is for --stage train"):
        main.main(["--stage", "c2fpl"])


def leave(rank: int, folder: str) -> None:
    """Both ranks leave the process group, rank 0 later than rank 1 (as after training, when rank 0 alone writes the
    summary): on a normal exit, then as after an error. ``rank0_leaving`` marks rank 0's arrival at ``teardown``,
    ``rank1_left`` says whether rank 1 had seen it when its ``teardown`` returned."""
    for synchronise in (True, False):
        marks = Path(folder) / str(synchronise)
        dist.init_process_group("gloo", init_method=f"file://{marks}-rendezvous", rank=rank, world_size=2)
        dist.barrier()  # both connected (the work they share)
        if rank == 0:
            if synchronise:
                time.sleep(2)
            else:  # rank 1 must not wait for rank 0, so it is gone before rank 0 leaves
                deadline = time.monotonic() + 60
                while not (marks / "rank1_left").exists():
                    assert time.monotonic() < deadline, "rank 1 is waiting for rank 0"
                    time.sleep(0.05)
            (marks / "rank0_leaving").touch()
        teardown(synchronise)
        if rank == 1:
            (marks / "rank1_left").write_text(str((marks / "rank0_leaving").exists()))


def test_teardown_waits_for_every_rank_unless_after_an_error(tmp_path):
    """A rank that leaves while another still works can abort on exit (gloo's threads), so a normal exit waits."""
    for synchronise in (True, False):
        (tmp_path / str(synchronise)).mkdir()
    mp.spawn(leave, args=(str(tmp_path),), nprocs=2)
    assert [(tmp_path / str(s) / "rank1_left").read_text() for s in (True, False)] == ["True", "False"]


TINY = ["--synth_train_videos", "10", "--synth_test_videos", "6", "--synth_crops", "2", "--Vitblock_num", "2",
        "--max_seqlen", "48", "--snapshot", "3", "--max_epoch", "2", "--aux", "none", "--lab", "True",
        "--device", "cpu"]


def torchrun(*args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "main.py", *TINY, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def test_torchrun_writes_one_set_of_outputs_and_resumes_exactly(tmp_path):
    data = str(tmp_path / "synthetic")
    whole, part = tmp_path / "whole", tmp_path / "part"
    torchrun("--synthetic_dir", data, "--output_dir", str(whole))
    torchrun("--synthetic_dir", data, "--output_dir", str(part), "--max_iters", "3")
    torchrun("--resume", str(part))
    names = sorted(p.name for p in whole.iterdir())
    best = [n for n in names if n.startswith("best_ckpt_")]
    assert len(best) == 2 and best[0].endswith(".pkl") and best[1] == best[0].replace(".pkl", ".yaml")
    assert {n for n in names if not n.startswith("best_ckpt_")} == {"config.yaml", "last.pkl", "last.yaml",
                                                                   "metrics.jsonl", "result.txt", "resume.pt",
                                                                   "report.html"}
    records = [json.loads(line) for line in (whole / "metrics.jsonl").read_text().splitlines()]
    resumed = [json.loads(line) for line in (part / "metrics.jsonl").read_text().splitlines()]
    n_snippets = np.load(tmp_path / "synthetic" / "concat_UCF.npy", mmap_mode="r").shape[0]
    total = 2 * math.ceil(n_snippets / 48)  # --max_seqlen is the global batch: as many steps as one process
    expected = list(range(3, total, 3)) + [total]
    assert [r["iteration"] for r in records] == [r["iteration"] for r in resumed] == expected  # one writer
    for a, b in zip(records, resumed):
        assert a["auc_all"] == b["auc_all"] and a["loss"] == b["loss"] and a["bank_size"] == b["bank_size"]
    assert torch.equal(torch.load(whole / "last.pkl", weights_only=True)["scorer.fc1.weight"],
                       torch.load(part / "last.pkl", weights_only=True)["scorer.fc1.weight"])
    # The test set scored in two shards and gathered gives what one process gives.
    run_test.main([*TINY, "--synthetic_dir", data, "--ckpt_path", str(whole / "last.pkl"),
                   "--metrics_out", str(tmp_path / "m.json")])
    single = json.loads((tmp_path / "m.json").read_text())
    assert single["auc_all"] == pytest.approx(records[-1]["auc_all"], abs=1e-9)
    assert single["ap"] == pytest.approx(records[-1]["ap"], abs=1e-9)
