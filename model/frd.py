"""FRD-UVAD: reconstructor + scorer + auxiliary scorer + latent anomaly bank; one training step, test scores."""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from model.bank import LatentAnomalyBank
from model.reconstructor import AutoEncoder, Reconstructor
from model.scorer import C2FPLClassifier, Scorer

AUX_KINDS = ("c2fpl", "labels", "none")


@dataclass(frozen=True)
class ModelConfig:
    """What FRDUVAD is built from; the defaults are the release's (the paper's command: bank of int(320 · 0.1))."""

    feature_size: int = 2048
    cross_clip: int = 4
    vitblock_num: int = 8  # 0: the autoencoder instead of the transformer
    lab: bool = False  # the latent anomaly bank and the disruption loss
    lab_type: str = "wlab"  # bank policy: wlab (any clip flagged) or slab (all clips)
    delta: float = 0.5  # bank threshold mean + delta · std of the scores
    lambdas: tuple[float, float, float] = (1.0, 1.0, 1.0)  # λ1 (Lre), λ2 (Ldi), λ3 (Ls)
    aux: str = "c2fpl"  # the auxiliary labels: c2fpl, labels (given per step) or none
    checkpoint_blocks: bool = False  # activation checkpointing of the reconstructor's blocks
    bank_capacity: int = 32  # samples; the trainer sizes it from its batch, int(max_seqlen · beta)
    disruption: float = 0.5  # dropout on the reconstructor's tokens
    scorer_dropout: float = 0.7
    c2fpl_dropout: float = 0.6  # the auxiliary classifier's (inactive: it always runs in eval mode)
    score_fusion: float = 0.0  # w of the test scores (1 − w)·scorer + w·C2FPL classifier (0: the scorer's)


class BatchStatistics:
    """What a training step takes as "the batch": here the rows it is given (plain mean/std, nothing to gather).

    ``engine.global_batch.GlobalBatchStatistics`` makes it the global batch of every process under torchrun.
    """

    def mean_std(self, values: torch.Tensor, shared_from: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and unbiased std of ``values (n, ...)``; rows from ``shared_from`` on (the bank's) are the same for
        every process of a run."""
        return values.mean(), values.std()

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        """``(n, ...)`` new bank rows → the rows of the whole batch, in batch order."""
        return rows


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

    def __init__(self, config: ModelConfig = ModelConfig()) -> None:
        super().__init__()
        if config.aux not in AUX_KINDS:
            raise ValueError(f"aux {config.aux!r} is not one of {AUX_KINDS}")
        if not 0.0 <= config.score_fusion <= 1.0:
            raise ValueError(f"score_fusion must be in [0, 1], got {config.score_fusion}")
        self.config = config
        d = config.feature_size
        self.decoder = Reconstructor(d, config.cross_clip, config.vitblock_num, disruption=config.disruption,
                                     checkpoint_blocks=config.checkpoint_blocks)
        self.AE = AutoEncoder(d)
        self.scorer = Scorer(d, dropout=config.scorer_dropout)
        self.scorer_c2fpl = C2FPLClassifier(d, dropout=config.c2fpl_dropout)
        self.bank = LatentAnomalyBank(config.bank_capacity, config.lab_type)
        self.apply(init_weights)
        self.scorer_c2fpl.requires_grad_(False).eval()
        (self.decoder if config.vitblock_num == 0 else self.AE).requires_grad_(False)  # the reconstructor not in use

    def train(self, mode: bool = True) -> "FRDUVAD":
        super().train(mode)
        self.scorer_c2fpl.eval()
        return self

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, cc, D)`` → ``(B, C, cc, D)``: the transformer reconstructor (the autoencoder if Vitblock_num=0)."""
        return self.AE(x) if self.config.vitblock_num == 0 else self.decoder(x)

    def loss(self, Lre: torch.Tensor, Ldi: torch.Tensor, Ls: torch.Tensor) -> torch.Tensor:
        """``λ1·Lre + λ2·Ldi + λ3·Ls``."""
        l1, l2, l3 = self.config.lambdas
        return l1 * Lre + l2 * Ldi + l3 * Ls

    def forward(self, x: torch.Tensor, aux_labels: torch.Tensor | None = None,
                generator: torch.Generator | None = None,
                statistics: BatchStatistics = BatchStatistics()) -> StepOutput:
        """The training step, so that DistributedDataParallel can wrap the model; see ``training_step``."""
        return self.training_step(x, aux_labels, generator, statistics)

    def training_step(self, x: torch.Tensor, aux_labels: torch.Tensor | None = None,
                      generator: torch.Generator | None = None,
                      statistics: BatchStatistics = BatchStatistics()) -> StepOutput:
        """One step on samples ``x (B, C, cc, D)``; ``aux_labels (B, cc)`` when aux="labels"; updates the bank (LAB).

        ``statistics``: what "the batch" is for the threshold, the bank's threshold and the bank's new rows;
        ``generator``: the bank's random subset when over capacity.
        """
        cfg = self.config
        if x.dim() != 4 or x.shape[2:] != (cfg.cross_clip, cfg.feature_size):
            raise ValueError(f"samples must be (B, C, {cfg.cross_clip}, {cfg.feature_size}), got {tuple(x.shape)}")
        b = x.shape[0]
        self.bank.to(x.device)
        inputs = torch.cat([x, self.bank.samples]) if cfg.lab and len(self.bank) else x
        recon = self.reconstruct(inputs).float()  # fp32 from here on, also under autocast
        lossr = (recon - inputs).pow(2).mean(dim=-1).max(dim=1).values  # (B+M, cc)
        mean, std = statistics.mean_std(lossr, shared_from=b)
        threshold = mean + std
        recon_labels = (lossr[:b] >= threshold).float()
        Lre = lossr[:b].mean()
        Ldi = F.relu(-(lossr[b:] - threshold).mean()) if len(inputs) > b else lossr.new_zeros(())

        s = self.scorer(x).float()  # (B, cc, 1)
        scores = s.cumsum(dim=1) / torch.arange(1, cfg.cross_clip + 1, device=s.device).view(1, -1, 1)
        aux = self._aux_labels(x, aux_labels).to(recon_labels)
        pseudo_labels = recon_labels * aux
        with torch.autocast(x.device.type, enabled=False):  # autocast refuses binary_cross_entropy
            Ls = F.binary_cross_entropy(scores, pseudo_labels.unsqueeze(-1))

        if cfg.lab:
            with torch.no_grad():
                mean, std = statistics.mean_std(scores)
                flags = (scores.squeeze(-1) >= mean + cfg.delta * std) * pseudo_labels
                self.bank.add(x, flags, generator, statistics.gather)
        return StepOutput(self.loss(Lre, Ldi, Ls), Lre, Ldi, Ls, lossr.detach(), threshold.detach(), recon_labels,
                          aux, pseudo_labels, scores.detach(), len(self.bank))

    def _aux_labels(self, x: torch.Tensor, given: torch.Tensor | None) -> torch.Tensor:
        """``(B, cc)`` auxiliary labels: C2FPL output ≥ 0.5, the given labels, or ones."""
        cc = self.config.cross_clip
        if self.config.aux == "c2fpl":
            with torch.no_grad():
                return (self.scorer_c2fpl(x) >= 0.5).squeeze(-1)
        if self.config.aux == "none":
            return torch.ones(x.shape[0], cc, device=x.device)
        if given is None or given.shape != (x.shape[0], cc):
            got = None if given is None else tuple(given.shape)
            raise ValueError(f"aux='labels' needs aux_labels of shape ({x.shape[0]}, {cc}), got {got}")
        return given

    @torch.no_grad()
    def score(self, x: torch.Tensor, fusion: float | None = None) -> torch.Tensor:
        """Test-time scores ``(N, C, D)`` → ``(N,)``: scorer without dropout (whatever the mode), mean over crops;
        with a fusion weight w > 0 (``fusion``, else ``score_fusion``), ``(1 − w)·scorer + w·C2FPL classifier``."""
        w = self.config.score_fusion if fusion is None else fusion
        if w == 1:  # the C2FPL classifier's scores alone
            return self.scorer_c2fpl(x).squeeze(-1)
        was_training = self.scorer.training
        self.scorer.eval()
        try:
            scores = self.scorer(x).squeeze(-1)
        finally:
            self.scorer.train(was_training)
        return (1 - w) * scores + w * self.scorer_c2fpl(x).squeeze(-1) if w else scores
