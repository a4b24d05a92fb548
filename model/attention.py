"""Multi-head attention over the 16 tokens of each snippet: MSA, and MCA (cascade cross-attention)."""
import torch
import torch.nn.functional as F
from torch import nn


class SelfAttention(nn.Module):
    """MSA on tokens ``(N, cc, T, d)`` → ``(N, cc, T, d)``: each clip's T tokens attend among themselves.

    Scale (d/H)^-0.5, the clip axis folded into the batch. On the CPU with heads of 8 values or more (2048-d
    features) the release's explicit softmax(q·kᵀ)·v in batched matmuls: its T×T scores are then at most twice
    the size of q, and it runs faster there than scaled_dot_product_attention, whose backward is slow for these
    shapes. Otherwise (smaller heads, whose scores would be 8× q and more; GPUs) scaled_dot_product_attention,
    which never materializes the scores, on strided views of the qkv projection.
    """

    def __init__(self, dim: int, num_heads: int = 16) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"token width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def queries(self, q: torch.Tensor) -> torch.Tensor:
        """Which queries each clip uses: ``(N, cc, H, T, hd)``, its own."""
        return q

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, cc, t, d = x.shape
        h, hd = self.num_heads, d // self.num_heads
        q, k, v = (z.transpose(2, 3) for z in self.qkv(x).view(n, cc, t, 3, h, hd).unbind(3))  # 3 × (N, cc, H, T, hd)
        q = self.queries(q)
        if x.device.type != "cpu" or hd < 8:
            y = F.scaled_dot_product_attention(*(z.flatten(0, 1) for z in (q, k, v)))  # (N·cc, H, T, hd)
            return self.proj(y.transpose(1, 2).reshape(n, cc, t, d))  # a view: SDPA's output is (N·cc, T, H, hd)
        q, k, v = (z.reshape(n * cc * h, t, hd) for z in (q, k, v))  # (N·cc·H, T, hd), copies of the views
        att = (k @ q.transpose(1, 2) * hd ** -0.5).softmax(dim=1)  # (N·cc·H, T keys, T queries): transposed
        y = v.transpose(1, 2) @ att  # (N·cc·H, hd, T) = (softmax(q·kᵀ)·v)ᵀ; MKL is fastest in this orientation
        return self.proj(y.view(n, cc, h, hd, t).permute(0, 1, 4, 2, 3).reshape(n, cc, t, d))


class CascadeCrossAttention(SelfAttention):
    """MCA: clip 0 attends to itself; clip k ≥ 1 attends with the *queries of clip k−1* to the keys/values of clip k."""

    def queries(self, q: torch.Tensor) -> torch.Tensor:
        """``(N, cc, H, T, hd)`` shifted by one clip along the clip axis (clip 0 keeps its own); contiguous."""
        return torch.cat([q[:, :1], q[:, :-1]], dim=1)
