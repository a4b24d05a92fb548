"""``--device auto|cpu|cuda|cuda:N`` to a torch.device, checked before work starts; autocast."""
import torch

from utils.errors import InputError


def resolve_device(name: str) -> torch.device:
    """'auto' picks the first GPU when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError("--device", f"not a device: {name!r}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError("--device", f"{name} asked for but no CUDA GPU is available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError("--device", f"{name}: only {torch.cuda.device_count()} GPU(s) present")
    return device


def autocast(device: torch.device, amp: str) -> torch.autocast:
    """``--amp bf16``: bfloat16 autocast on ``device``; ``off``: a disabled context (numbers unchanged)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16")
