"""Checkpoints in the release's state-dict layout: atomic saving, tolerant loading, clear mismatch errors.

Accepted files: a full FRD-UVAD state dict (``decoder.*``, ``AE.*``, ``scorer.*``, ``scorer_c2fpl.*``), a
scorer-only one (``scorer.*`` or bare ``fc1/fc2/classifier``), or a C2FPL classifier (``fc1, fc_att1.0, fc2,
fc_att2.0, fc3``, bare or under ``scorer_c2fpl.``); ``module.`` prefixes (DataParallel) are stripped, and a
dict wrapping the weights under ``state_dict`` or ``model`` is unwrapped.

Beside every checkpoint main.py writes lie its settings, ``<name>.yaml`` (``last.pkl`` → ``last.yaml``): what
rebuilds the trained model (``feature_size``, ``cross_clip``, ``Vitblock_num``, ``crops`` of the training data,
and ``score_fusion``, the C2FPL classifier's weight in the scores, when not 0); other keys (``backbone``,
``preset``, ...) are kept as they are. Files without one (the authors') fall back to ``infer_config``.
"""
import os
import re
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from model.frd import FRDUVAD, ModelConfig
from utils.errors import InputError
from utils.io import atomic_open, save_text

KINDS = ("full", "scorer", "c2fpl")
SCORER_NAMES = {"fc1", "fc2", "classifier"}
C2FPL_NAMES = {"fc1", "fc_att1", "fc2", "fc_att2", "fc3"}
SETTINGS_KEYS = ("feature_size", "cross_clip", "Vitblock_num", "crops")  # integers; the first three build FRDUVAD


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


def model_settings(config: ModelConfig, crops: int, **extra: Any) -> dict[str, Any]:
    """The settings of a checkpoint of the model ``config`` trained on ``crops`` crops (``score_fusion`` only when
    not 0: absent means 0), then ``extra`` keys."""
    fusion = {"score_fusion": config.score_fusion} if config.score_fusion else {}
    return {"feature_size": config.feature_size, "cross_clip": config.cross_clip,
            "Vitblock_num": config.vitblock_num, "crops": crops, **fusion, **extra}


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


def model_config(settings: dict[str, Any], source: str | os.PathLike) -> ModelConfig:
    """The ModelConfig a checkpoint was trained with, from its ``settings`` (read from ``source``; no
    ``score_fusion``: 0); no auxiliary scorer (its slot stays in the model, and the fusion reads it)."""
    missing = [k for k in SETTINGS_KEYS[:3] if k not in settings]
    if missing:
        raise InputError(source, f"no {', '.join(missing)}: not the settings of an FRD-UVAD model")
    return ModelConfig(feature_size=settings["feature_size"], cross_clip=settings["cross_clip"],
                       vitblock_num=settings["Vitblock_num"], aux="none",
                       score_fusion=float(settings.get("score_fusion", 0.0)))


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


def load_into(model: FRDUVAD, sd: dict[str, torch.Tensor], kind: str = "auto",
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
        size = model.config.feature_size
        problems = [f"{kind} checkpoint does not fit the model (feature_size {size}"
                    + (f", checkpoint {found})" if found not in (None, size) else ")"),
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
