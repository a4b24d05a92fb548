"""torchrun support: the process group, and the few collectives FRD-UVAD needs beyond DDP's gradient averaging.

Without a process group (a plain ``python main.py``) every function here is the single-process identity, so
one code path serves both.
"""
import os
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.distributed import _functional_collectives as funcol

from utils.device import resolve_device
from utils.errors import InputError


@dataclass(frozen=True)
class Distributed:
    """This process's place in the run: ``rank`` of ``world_size``, ``local_rank`` on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device_name: str, batch_size: int | None = None) -> tuple[Distributed, torch.device]:
    """Join the process group torchrun describes (nccl on GPUs, gloo on the CPU) and pick this rank's device.

    A single process gets ``Distributed()`` and ``resolve_device(device_name)``. ``batch_size``: a global
    training batch, which must split evenly over the processes.
    """
    if not launched_by_torchrun():
        return Distributed(), resolve_device(device_name)
    info = Distributed(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]))
    if batch_size is not None and batch_size % info.world_size:
        raise InputError("--max_seqlen", f"the global batch {batch_size} is not divisible by the "
                                         f"{info.world_size} processes")
    device = resolve_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")
    return info, device


def teardown(synchronise: bool = True) -> None:
    """Leave the process group (nothing to do in one process).

    ``synchronise`` (a normal exit): first wait at a barrier until every rank is done, so that none leaves while
    another still works (rank 0 alone writes the summary after training). The wait, with the GIL released, also
    lets gloo's worker threads finish releasing the last collectives: those issued in a backward pass (DDP's, the
    all-reduces of ``sum_over_ranks``) hold a Python object, and a worker thread that drops one after the
    interpreter has begun to shut down aborts the process ("terminate called without an active exception").
    Pass False after an error: the other ranks may never reach the barrier.
    """
    if not is_distributed():
        return
    try:
        if synchronise:
            dist.barrier()
    finally:
        dist.destroy_process_group()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def broadcast_object(obj: object) -> object:
    """Rank 0's ``obj`` on every rank (a path, a small dict)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj: object) -> list:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not is_distributed():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def sum_over_ranks(x: torch.Tensor) -> torch.Tensor:
    """Differentiable sum over ranks (the backward sums the ranks' gradients too); identity in one process."""
    return funcol.wait_tensor(funcol.all_reduce(x, "sum", dist.group.WORLD)) if is_distributed() else x


def global_mean_std(values: torch.Tensor, shared_from: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased std, differentiable, of the global batch's values.

    ``values (n, ...)``: this rank's rows; rows from ``shared_from`` on are the same on every rank (the bank)
    and count once. In one process this is exactly ``values.mean(), values.std()``. Across ranks it is
    two-pass (sum, then squared deviations from the global mean); with DDP's gradient averaging the
    gradients equal those of one process holding the global batch.
    """
    if not is_distributed():
        return values.mean(), values.std()
    world = dist.get_world_size()
    cut = len(values) if shared_from is None else shared_from
    own, shared = values[:cut], values[cut:]

    def total(x_own: torch.Tensor, x_shared: torch.Tensor) -> torch.Tensor:
        return sum_over_ranks(x_own.sum() + x_shared.sum() / world)

    count = sum_over_ranks(values.new_full((), float(own.numel()))) + shared.numel()  # a fill, no host copy
    mean = total(own, shared) / count
    var = total((own - mean).square(), (shared - mean).square()) / (count - 1)
    return mean, var.sqrt()


def batch_share(n: int, like: torch.Tensor) -> torch.Tensor | None:
    """``world · n / Σ n``: scales this rank's batch mean so that DDP's gradient average is the global batch's
    mean also when the ranks' batches differ in size (1 when they are equal); None in one process."""
    if not is_distributed():
        return None
    return dist.get_world_size() * n / sum_over_ranks(like.new_full((), float(n)))


def gather_rows(x: torch.Tensor) -> torch.Tensor:
    """``(n_r, ...)`` on each rank → ``(Σ n_r, ...)`` on every rank, in rank order (sizes may differ)."""
    if not is_distributed():
        return x
    sizes = [int(n) for n in gather_objects(len(x))]
    if max(sizes) == 0:
        return x
    padded = x.new_zeros((max(sizes), *x.shape[1:]))
    padded[: len(x)] = x
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([part[:n] for part, n in zip(parts, sizes)])


def own_share(rows: np.ndarray) -> np.ndarray:
    """This process's contiguous part of ``rows (n,)`` (``np.array_split`` over the ranks); all of them in one
    process."""
    if not is_distributed():
        return rows
    return np.array_split(rows, dist.get_world_size())[dist.get_rank()]


def sum_floats(values: list[float]) -> list[float]:
    """Each value summed over ranks (float64), for logs."""
    if not is_distributed():
        return values
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    total = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return total.tolist()


def reseed_for_rank(seed: int, rank: int) -> None:
    """Ranks other than 0 get their own torch random stream (their own dropout masks); rank 0 keeps the
    single-process stream."""
    if rank:
        torch.manual_seed(int(np.random.SeedSequence([seed, rank]).generate_state(1, np.uint64)[0] >> 1))


@contextmanager
def main_process_first():
    """Rank 0 runs the block first (writing shared files: data, the C2FPL stage); the others then reuse them."""
    others = is_distributed() and dist.get_rank() != 0
    if others:
        dist.barrier()
    yield
    if is_distributed() and not others:
        dist.barrier()
