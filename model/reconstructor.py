"""The reconstructor: tokens → disruption → embedding + position → MSA/MCA blocks → norm; or an autoencoder."""
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from model.attention import CascadeCrossAttention, SelfAttention

NUM_TOKENS = 16
NUM_HEADS = 16
# Vitblock_num values the release builds for each cross_clip (0 = autoencoder).
VALID_BLOCKS = {1: (1, 2, 4, 6, 8), 2: (2, 4, 6, 8), 4: (0, 1, 2, 4, 6, 8)}


def cascade_flags(cross_clip: int, vitblock_num: int) -> list[bool]:
    """Per block: False = MSA, True = MCA. cc=1 and single blocks are MSA; else first half MSA, second half MCA."""
    if vitblock_num not in VALID_BLOCKS.get(cross_clip, ()):
        valid = "; ".join(f"cross_clip={c}: Vitblock_num in {list(v)}" for c, v in VALID_BLOCKS.items())
        raise ValueError(f"no model for cross_clip={cross_clip}, Vitblock_num={vitblock_num}; valid: {valid}")
    if cross_clip == 1 or vitblock_num == 1:
        return [False] * vitblock_num
    return [i >= vitblock_num // 2 for i in range(vitblock_num)]


def sinusoid_table(n_position: int, dim: int) -> torch.Tensor:
    """``(n_position, dim)``: sin on even channels, cos on odd, angle = pos / 10000^(2⌊j/2⌋/dim)."""
    pos = torch.arange(n_position, dtype=torch.float64)[:, None]
    j = torch.arange(dim, dtype=torch.float64)
    angle = pos / torch.pow(10000.0, 2 * (j // 2) / dim)
    return torch.where(j.long() % 2 == 0, angle.sin(), angle.cos()).float()


class Block(nn.Module):
    """Pre-norm transformer block on tokens ``(N, cc, T, d)``: attention (MSA or MCA), then MLP d→4d→d."""

    def __init__(self, dim: int, num_heads: int, cascade: bool) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = (CascadeCrossAttention if cascade else SelfAttention)(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Reconstructor(nn.Module):
    """Reconstruction with disruption: samples ``(B, C, cc, D)`` (any leading dims) → same shape.

    Each (sample, crop) is reconstructed independently from its ``cc`` snippets, each split into
    16 tokens of D/16. Disruption is dropout p=0.5 on the tokens (train mode only).
    ``checkpoint_blocks``: activation checkpointing of the blocks. Only the disrupted tokens are kept for the
    backward pass, which recomputes the blocks ``checkpoint_rows`` (sample, crop) rows at a time: memory of
    one chunk instead of the batch, about a third more compute, the same numbers up to summation order.
    """

    checkpoint_rows = 320  # (sample, crop) rows per recomputed chunk: 32 samples of 10 crops

    def __init__(self, feature_size: int, cross_clip: int, vitblock_num: int, disruption: float = 0.5,
                 checkpoint_blocks: bool = False) -> None:
        super().__init__()
        if feature_size % (NUM_TOKENS * NUM_HEADS):
            raise ValueError(f"feature_size {feature_size} must be a multiple of {NUM_TOKENS * NUM_HEADS}")
        dim = feature_size // NUM_TOKENS
        self.cross_clip, self.dim, self.checkpoint_blocks = cross_clip, dim, checkpoint_blocks
        self.disruption = nn.Dropout(disruption)
        self.decoder_embed = nn.Linear(dim, dim)
        self.register_buffer("pos_embed", sinusoid_table(NUM_TOKENS, dim), persistent=False)
        self.decoder_blocks = nn.ModuleList(
            Block(dim, NUM_HEADS, cascade) for cascade in cascade_flags(cross_clip, vitblock_num))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.disruption(x.reshape(-1, self.cross_clip, NUM_TOKENS, self.dim))  # (N, cc, 16, D/16)
        if self.checkpoint_blocks and torch.is_grad_enabled():
            chunks = tokens.split(self.checkpoint_rows)
            return torch.cat([checkpoint(self.blocks, c, use_reentrant=False) for c in chunks]).reshape(x.shape)
        return self.blocks(tokens).reshape(x.shape)

    def blocks(self, tokens: torch.Tensor) -> torch.Tensor:
        """Disrupted tokens ``(N, cc, 16, D/16)`` → embedding + position → blocks → norm, same shape."""
        tokens = self.decoder_embed(tokens) + self.pos_embed
        for block in self.decoder_blocks:
            tokens = block(tokens)
        return self.norm(tokens)


class AutoEncoder(nn.Module):
    """The Vitblock_num=0 reconstructor, per snippet vector: ``(..., D)`` → ``(..., D)`` via D→512→D."""

    def __init__(self, feature_size: int, hidden: int = 512) -> None:
        super().__init__()
        self.encoder = nn.Linear(feature_size, hidden)
        self.decoder = nn.Linear(hidden, feature_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.relu(self.encoder(x)))
