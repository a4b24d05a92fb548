"""Multi-head attention over the 16 tokens of each snippet: MSA, and MCA (cascade cross-attention)."""
import torch
import torch.nn.functional as F
from torch import nn


class SelfAttention(nn.Module):
    """MSA on tokens ``(N, cc, T, d)`` → ``(N, cc, T, d)``: each clip's T tokens attend among themselves.

    One scaled-dot-product-attention call with the clip axis folded into the batch; scale (d/H)^-0.5.
    """

    def __init__(self, dim: int, num_heads: int = 16) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"token width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def queries(self, q: torch.Tensor) -> torch.Tensor:
        """Which queries each clip uses: ``(N, cc, H, T, d/H)``, its own."""
        return q

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, cc, t, d = x.shape
        h = self.num_heads
        q, k, v = self.qkv(x).view(n, cc, t, 3, h, d // h).permute(3, 0, 1, 4, 2, 5)  # 3 × (N, cc, H, T, d/H)
        q, k, v = (z.reshape(n * cc, h, t, d // h) for z in (self.queries(q), k, v))
        y = F.scaled_dot_product_attention(q, k, v)  # (N·cc, H, T, d/H)
        return self.proj(y.view(n, cc, h, t, d // h).transpose(2, 3).reshape(n, cc, t, d))


class CascadeCrossAttention(SelfAttention):
    """MCA: clip 0 attends to itself; clip k ≥ 1 attends with the *queries of clip k−1* to the keys/values of clip k."""

    def queries(self, q: torch.Tensor) -> torch.Tensor:
        """``(N, cc, H, T, d/H)`` shifted by one clip along the clip axis (clip 0 keeps its own)."""
        return torch.cat([q[:, :1], q[:, :-1]], dim=1)
