"""Checkpoint files: atomic saving, tolerant reading, and the settings file beside each checkpoint.

A file holds a state dict (``model.checkpoint`` says which layout); ``module.`` prefixes (DataParallel) are
stripped, and a dict wrapping the weights under ``state_dict`` or ``model`` is unwrapped.

Beside every checkpoint main.py writes lie its settings, ``<name>.yaml`` (``last.pkl`` → ``last.yaml``): what
rebuilds the trained model (``feature_size``, ``cross_clip``, ``Vitblock_num``, ``crops`` of the training data,
and ``score_fusion``, the C2FPL classifier's weight in the scores, when not 0); other keys (``backbone``,
``preset``, ...) are kept as they are. Files without one (the authors') fall back to
``model.checkpoint.infer_config``.
"""
import os
from pathlib import Path
from typing import Any

import torch
import yaml

from utils.errors import InputError
from utils.io import atomic_open, save_text

SETTINGS_KEYS = ("feature_size", "cross_clip", "Vitblock_num", "crops")  # integers; model.checkpoint.MODEL_KEYS + crops


def save_checkpoint(path: str | os.PathLike, obj: dict[str, Any], settings: dict[str, Any] | None = None) -> None:
    """``torch.save(obj)`` to ``path`` atomically: a failed save leaves any previous file intact.

    ``settings``: written first, atomically too, to ``settings_path(path)``.
    """
    if settings is not None:
        save_text(settings_path(path), yaml.safe_dump(settings, sort_keys=False))
    with atomic_open(path, "wb") as f:
        torch.save(obj, f)


def settings_path(checkpoint: str | os.PathLike) -> Path:
    """Where a checkpoint's settings lie: ``last.pkl`` → ``last.yaml``."""
    return Path(checkpoint).with_suffix(".yaml")


def read_settings(checkpoint: str | os.PathLike) -> dict[str, Any] | None:
    """The settings beside ``checkpoint`` (None without a settings file): a mapping whose SETTINGS_KEYS present
    are integers ≥ 0 and whose ``score_fusion``, if present, a number in [0, 1]; every other key is returned as it
    is."""
    path = settings_path(checkpoint)
    if not path.is_file():
        return None
    try:
        settings = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        raise InputError(path, "not readable YAML") from None
    if not isinstance(settings, dict):
        raise InputError(path, f"expected a mapping of model settings ({', '.join(SETTINGS_KEYS)})")
    bad = [k for k in SETTINGS_KEYS if k in settings and not (type(settings[k]) is int and settings[k] >= 0)]
    if bad:
        raise InputError(path, f"{bad[0]} must be an integer >= 0, got {settings[bad[0]]!r}")
    fusion = settings.get("score_fusion", 0.0)
    if type(fusion) not in (int, float) or not 0 <= fusion <= 1:
        raise InputError(path, f"score_fusion must be a number in [0, 1], got {fusion!r}")
    return settings


def remove_checkpoint(path: str | os.PathLike) -> None:
    """A checkpoint and its settings file, where they exist."""
    Path(path).unlink(missing_ok=True)
    settings_path(path).unlink(missing_ok=True)


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
