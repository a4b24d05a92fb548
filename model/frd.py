"""FRD-UVAD: reconstructor + scorer + auxiliary scorer + latent anomaly bank; one training step, test scores."""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from model.bank import LatentAnomalyBank
from model.reconstructor import AutoEncoder, Reconstructor
from model.scorer import C2FPLClassifier, Scorer
from utils.distributed import batch_share, gather_rows, global_mean_std

AUX_KINDS = ("c2fpl", "labels", "none")


@dataclass
class StepOutput:
    """One training step. Losses carry gradients; the diagnostics are detached."""

    loss: torch.Tensor  # λ1·Lre + λ2·Ldi + λ3·Ls
    Lre: torch.Tensor  # reconstruction loss, batch samples only
    Ldi: torch.Tensor  # disruption loss on the bank samples (0 without bank)
    Ls: torch.Tensor  # scorer BCE against the pseudo labels
    lossr: torch.Tensor  # (B+M, cc) max-over-crops reconstruction error of batch + bank
    threshold: torch.Tensor  # () Lr = mean(lossr) + std(lossr)
    recon_labels: torch.Tensor  # (B, cc) lossr >= Lr
    aux_labels: torch.Tensor  # (B, cc) auxiliary labels (ones when aux="none")
    pseudo_labels: torch.Tensor  # (B, cc) recon_labels · aux_labels
    scores: torch.Tensor  # (B, cc, 1) scorer output after the cumulative clip average
    bank_size: int  # rows in the bank after the update


def init_weights(module: nn.Module) -> None:
    """Xavier-uniform Linear weights, zero biases, LayerNorm 1/0."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class FRDUVAD(nn.Module):
    """The whole model; ``state_dict()`` keys follow the release (``decoder``, ``AE``, ``scorer``, ``scorer_c2fpl``).

    Samples are ``(B, C, cc, D)``: B samples, C crops (from the data), cc consecutive snippets, D features.
    The auxiliary C2FPL classifier is frozen: no gradient, and always in eval mode (no dropout).
    """

    def __init__(self, feature_size: int = 2048, cross_clip: int = 4, vitblock_num: int = 8, lab: bool = False,
                 lab_type: str = "wlab", beta: float = 0.1, delta: float = 0.5, max_seqlen: int = 320,
                 lambdas: tuple[float, float, float] = (1.0, 1.0, 1.0), aux: str = "c2fpl",
                 checkpoint_blocks: bool = False) -> None:
        super().__init__()
        if aux not in AUX_KINDS:
            raise ValueError(f"aux {aux!r} is not one of {AUX_KINDS}")
        self.feature_size, self.cross_clip, self.vitblock_num = feature_size, cross_clip, vitblock_num
        self.lab, self.delta, self.lambdas, self.aux = lab, delta, tuple(lambdas), aux
        self.decoder = Reconstructor(feature_size, cross_clip, vitblock_num, checkpoint_blocks=checkpoint_blocks)
        self.AE = AutoEncoder(feature_size)
        self.scorer = Scorer(feature_size)
        self.scorer_c2fpl = C2FPLClassifier(feature_size)
        self.bank = LatentAnomalyBank(int(max_seqlen * beta), lab_type)
        self.apply(init_weights)
        self.scorer_c2fpl.requires_grad_(False).eval()
        (self.decoder if vitblock_num == 0 else self.AE).requires_grad_(False)  # the reconstructor not in use

    def train(self, mode: bool = True) -> "FRDUVAD":
        super().train(mode)
        self.scorer_c2fpl.eval()
        return self

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, cc, D)`` → ``(B, C, cc, D)``: the transformer reconstructor (the autoencoder if Vitblock_num=0)."""
        return self.AE(x) if self.vitblock_num == 0 else self.decoder(x)

    def forward(self, x: torch.Tensor, aux_labels: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> StepOutput:
        """The training step, so that DistributedDataParallel can wrap the model; see ``training_step``."""
        return self.training_step(x, aux_labels, generator)

    def training_step(self, x: torch.Tensor, aux_labels: torch.Tensor | None = None,
                      generator: torch.Generator | None = None) -> StepOutput:
        """One step on samples ``x (B, C, cc, D)``; ``aux_labels (B, cc)`` when aux="labels"; updates the bank (LAB)."""
        if x.dim() != 4 or x.shape[2:] != (self.cross_clip, self.feature_size):
            raise ValueError(f"samples must be (B, C, {self.cross_clip}, {self.feature_size}), got {tuple(x.shape)}")
        b = x.shape[0]
        self.bank.to(x.device)
        inputs = torch.cat([x, self.bank.samples]) if self.lab and len(self.bank) else x
        recon = self.reconstruct(inputs).float()  # fp32 from here on, also under autocast
        lossr = (recon - inputs).pow(2).mean(dim=-1).max(dim=1).values  # (B+M, cc)
        mean, std = global_mean_std(lossr, shared_from=b)  # over the global batch (+ bank) under torchrun
        threshold = mean + std
        recon_labels = (lossr[:b] >= threshold).float()
        Lre = lossr[:b].mean()
        Ldi = F.relu(-(lossr[b:] - threshold).mean()) if len(inputs) > b else lossr.new_zeros(())

        s = self.scorer(x).float()  # (B, cc, 1)
        scores = s.cumsum(dim=1) / torch.arange(1, self.cross_clip + 1, device=s.device).view(1, -1, 1)
        aux = self._aux_labels(x, aux_labels).to(recon_labels)
        pseudo_labels = recon_labels * aux
        with torch.autocast(x.device.type, enabled=False):  # autocast refuses binary_cross_entropy
            Ls = F.binary_cross_entropy(scores, pseudo_labels.unsqueeze(-1))
        share = batch_share(b, Lre)  # under torchrun: each rank's part of the global batch means
        if share is not None:
            Lre, Ls = Lre * share, Ls * share
        l1, l2, l3 = self.lambdas
        loss = l1 * Lre + l2 * Ldi + l3 * Ls

        if self.lab:
            with torch.no_grad():
                mean, std = global_mean_std(scores)
                flags = (scores.squeeze(-1) >= mean + self.delta * std) * pseudo_labels
                self.bank.add(x, flags, generator, gather_rows)
        return StepOutput(loss, Lre, Ldi, Ls, lossr.detach(), threshold.detach(), recon_labels, aux, pseudo_labels,
                          scores.detach(), len(self.bank))

    def _aux_labels(self, x: torch.Tensor, given: torch.Tensor | None) -> torch.Tensor:
        """``(B, cc)`` auxiliary labels: C2FPL output ≥ 0.5, the given labels, or ones."""
        if self.aux == "c2fpl":
            with torch.no_grad():
                return (self.scorer_c2fpl(x) >= 0.5).squeeze(-1)
        if self.aux == "none":
            return torch.ones(x.shape[0], self.cross_clip, device=x.device)
        if given is None or given.shape != (x.shape[0], self.cross_clip):
            got = None if given is None else tuple(given.shape)
            raise ValueError(f"aux='labels' needs aux_labels of shape ({x.shape[0]}, {self.cross_clip}), got {got}")
        return given

    @torch.no_grad()
    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Test-time scores ``(N, C, D)`` → ``(N,)``: scorer without dropout (whatever the mode), mean over crops."""
        was_training = self.scorer.training
        self.scorer.eval()
        try:
            return self.scorer(x).squeeze(-1)
        finally:
            self.scorer.train(was_training)
