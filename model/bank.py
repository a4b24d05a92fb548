"""The latent anomaly bank (LAB): samples the model flagged as anomalous, replayed in later steps."""
from typing import Callable

import torch

POLICIES = ("wlab", "slab")


class LatentAnomalyBank:
    """Up to ``capacity`` samples ``(M, C, cc, D)``; kept out of ``state_dict()`` (use ``state``/``load``).

    Policy ``wlab`` stores a sample when any of its clips is flagged, ``slab`` when all are.
    """

    def __init__(self, capacity: int, policy: str = "wlab") -> None:
        if policy not in POLICIES:
            raise ValueError(f"bank policy {policy!r} is not one of {POLICIES}")
        self.capacity, self.policy = capacity, policy
        self.samples = torch.empty(0)

    def __len__(self) -> int:
        return self.samples.shape[0]

    def to(self, device: torch.device) -> "LatentAnomalyBank":
        self.samples = self.samples.to(device)
        return self

    def add(self, x: torch.Tensor, flags: torch.Tensor, generator: torch.Generator | None = None,
            gather: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        """Append the samples of ``x (B, C, cc, D)`` selected by ``flags (B, cc)`` by the policy (old rows first);
        if over capacity, keep a uniformly random subset of exactly ``capacity`` rows (``torch.randperm``).

        ``gather``: the selected rows → those of the whole batch, in batch order (``BatchStatistics.gather``).
        """
        flags = flags.bool()
        keep = flags.any(dim=1) if self.policy == "wlab" else flags.all(dim=1)
        new = x.detach()[keep]
        if gather is not None:
            new = gather(new)
        self.samples = new if len(self) == 0 else torch.cat([self.samples.to(new), new])
        if len(self) > self.capacity:
            device = generator.device if generator is not None else self.samples.device
            order = torch.randperm(len(self), generator=generator, device=device)[: self.capacity]
            self.samples = self.samples[order.to(self.samples.device)]

    def state(self) -> torch.Tensor:
        """The stored samples ``(M, C, cc, D)`` (``(0,)`` when empty), for checkpoints."""
        return self.samples.detach().clone()

    def load(self, samples: torch.Tensor) -> None:
        """Restore the samples saved by ``state()``."""
        self.samples = samples.detach().clone() if samples.numel() else torch.empty(0)
