"""Checkpoints in the release's state-dict layout: atomic saving, tolerant loading, clear mismatch errors.

Accepted files: a full FRD-UVAD state dict (``decoder.*``, ``AE.*``, ``scorer.*``, ``scorer_c2fpl.*``), a
scorer-only one (``scorer.*`` or bare ``fc1/fc2/classifier``), or a C2FPL classifier (``fc1, fc_att1.0, fc2,
fc_att2.0, fc3``, bare or under ``scorer_c2fpl.``); ``module.`` prefixes (DataParallel) are stripped, and a
dict wrapping the weights under ``state_dict`` or ``model`` is unwrapped.
"""
import os
import re
from typing import Any

import torch
from torch import nn

from utils.errors import InputError
from utils.io import atomic_open

KINDS = ("full", "scorer", "c2fpl")
SCORER_NAMES = {"fc1", "fc2", "classifier"}
C2FPL_NAMES = {"fc1", "fc_att1", "fc2", "fc_att2", "fc3"}


def save_checkpoint(path: str | os.PathLike, obj: dict[str, Any]) -> None:
    """``torch.save(obj)`` to ``path`` atomically: a failed save leaves any previous file intact."""
    with atomic_open(path, "wb") as f:
        torch.save(obj, f)


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict with ``weights_only=True`` onto the CPU; unwrap ``state_dict``/``model``, strip ``module.``."""
    if not os.path.isfile(path):
        raise InputError(path, "checkpoint file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InputError(path, f"not a readable torch checkpoint ({type(e).__name__})") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict) or not obj or not all(torch.is_tensor(v) for v in obj.values()):
        raise InputError(path, "not a state dict (expected a non-empty dict of tensors)")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def detect_kind(sd: dict[str, torch.Tensor]) -> str:
    """``full``, ``scorer`` or ``c2fpl`` from the key names (``full`` when nothing narrower fits)."""
    heads = {k.split(".")[0] for k in sd}
    if heads <= {"scorer"} or (heads <= SCORER_NAMES and "classifier" in heads):
        return "scorer"
    if heads <= {"scorer_c2fpl"} or heads <= C2FPL_NAMES:
        return "c2fpl"
    return "full"


def _target(model: nn.Module, kind: str, sd: dict[str, torch.Tensor]) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """The submodule that ``kind`` loads into, and ``sd`` with the keys relative to it."""
    if kind == "full":
        return model, sd
    prefix = "scorer." if kind == "scorer" else "scorer_c2fpl."
    sub = model.scorer if kind == "scorer" else model.scorer_c2fpl
    return sub, {k.removeprefix(prefix): v for k, v in sd.items()}


def _summary(keys: list[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def load_into(model: nn.Module, sd: dict[str, torch.Tensor], kind: str = "auto",
              source: str | os.PathLike = "checkpoint") -> str:
    """Load ``sd`` into an FRDUVAD ``model`` (whole, scorer only, or the C2FPL slot); returns the kind used.

    Any missing key, extra key or shape difference raises one ``InputError`` naming ``source``.
    """
    kind = detect_kind(sd) if kind == "auto" else kind
    if kind not in KINDS:
        raise ValueError(f"checkpoint kind {kind!r} is not one of {KINDS + ('auto',)}")
    module, sd = _target(model, kind, sd)
    expected = module.state_dict()
    missing = [k for k in expected if k not in sd]
    extra = [k for k in sd if k not in expected]
    shapes = [f"{k} {tuple(sd[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in sd and sd[k].shape != v.shape]
    if missing or extra or shapes:
        found = infer_config(sd).get("feature_size")
        problems = [f"{kind} checkpoint does not fit the model (feature_size {model.feature_size}"
                    + (f", checkpoint {found})" if found not in (None, model.feature_size) else ")"),
                    f"expected {len(expected)} keys, found {len(sd)}"]
        problems += [f"missing {len(missing)}: {_summary(missing)}"] if missing else []
        problems += [f"unexpected {len(extra)}: {_summary(extra)}"] if extra else []
        problems += [f"shape (found vs expected) {len(shapes)}: {_summary(shapes)}"] if shapes else []
        raise InputError(source, "; ".join(problems))
    module.load_state_dict(sd, strict=True)
    return kind


def infer_config(sd: dict[str, torch.Tensor]) -> dict[str, int | None]:
    """``feature_size`` and ``vitblock_num`` from key names/shapes (None where absent).

    ``cross_clip`` is always None: MSA and MCA blocks have the same weights, so it cannot be read off them.
    """
    feature_size = None
    for key in ("scorer.fc1.weight", "fc1.weight", "scorer_c2fpl.fc1.weight", "AE.encoder.weight"):
        if key in sd:
            feature_size = sd[key].shape[1]
            break
    blocks = {int(m.group(1)) for k in sd if (m := re.match(r"decoder\.decoder_blocks\.(\d+)\.", k))}
    has_decoder = any(k.startswith("decoder.") for k in sd)
    vitblock_num = max(blocks) + 1 if blocks else (0 if has_decoder else None)
    return {"feature_size": feature_size, "cross_clip": None, "vitblock_num": vitblock_num}
