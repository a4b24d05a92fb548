"""The global batch under torchrun: what makes a training step see the batch of every process as one."""
import dataclasses

import torch

from model.frd import FRDUVAD, BatchStatistics, StepOutput
from utils.distributed import batch_share, gather_rows, global_mean_std


class GlobalBatchStatistics(BatchStatistics):
    """The global batch of every process, for ``FRDUVAD.training_step`` under torchrun: the statistics
    all-reduced (``global_mean_std``, with their gradients), the bank's new rows of every process in rank order."""

    def mean_std(self, values: torch.Tensor, shared_from: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return global_mean_std(values, shared_from)

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        return gather_rows(rows)


def global_batch_means(out: StepOutput, model: FRDUVAD) -> StepOutput:
    """Under torchrun: this process's batch means Lre and Ls (and the loss) weighted by its share of the global
    batch, so that DDP's average of the gradients is the global batch's also when the processes' batches differ in
    size; ``out`` itself in one process."""
    share = batch_share(out.scores.shape[0], out.Lre)
    if share is None:
        return out
    Lre, Ls = out.Lre * share, out.Ls * share
    return dataclasses.replace(out, loss=model.loss(Lre, out.Ldi, Ls), Lre=Lre, Ls=Ls)
