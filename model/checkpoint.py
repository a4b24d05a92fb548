"""The release's state-dict layout: which parts a file holds, loading it into FRDUVAD, and the settings that
rebuild a trained model.

Accepted state dicts: a full FRD-UVAD one (``decoder.*``, ``AE.*``, ``scorer.*``, ``scorer_c2fpl.*``), a
scorer-only one (``scorer.*`` or bare ``fc1/fc2/classifier``), or a C2FPL classifier (``fc1, fc_att1.0, fc2,
fc_att2.0, fc3``, bare or under ``scorer_c2fpl.``). Reading the files is ``utils.checkpoint``'s.
"""
import re
from typing import Any

import torch
from torch import nn

from model.frd import FRDUVAD, ModelConfig

KINDS = ("full", "scorer", "c2fpl")
SCORER_NAMES = {"fc1", "fc2", "classifier"}
C2FPL_NAMES = {"fc1", "fc_att1", "fc2", "fc_att2", "fc3"}
MODEL_KEYS = ("feature_size", "cross_clip", "Vitblock_num")  # the settings that build FRDUVAD


class CheckpointError(ValueError):
    """A checkpoint or its settings that do not fit the model: ``CheckpointError(source, problem)`` reads
    "source: problem", one line, as the commands print it."""

    def __init__(self, where: object, problem: str) -> None:
        super().__init__(f"{where}: {problem}")


def model_settings(config: ModelConfig, crops: int, **extra: Any) -> dict[str, Any]:
    """The settings of a checkpoint of the model ``config`` trained on ``crops`` crops (``score_fusion`` only when
    not 0: absent means 0), then ``extra`` keys."""
    fusion = {"score_fusion": config.score_fusion} if config.score_fusion else {}
    return {"feature_size": config.feature_size, "cross_clip": config.cross_clip,
            "Vitblock_num": config.vitblock_num, "crops": crops, **fusion, **extra}


def model_config(settings: dict[str, Any], source: object) -> ModelConfig:
    """The ModelConfig a checkpoint was trained with, from its ``settings`` (read from ``source``; no
    ``score_fusion``: 0); no auxiliary scorer (its slot stays in the model, and the fusion reads it)."""
    missing = [k for k in MODEL_KEYS if k not in settings]
    if missing:
        raise CheckpointError(source, f"no {', '.join(missing)}: not the settings of an FRD-UVAD model")
    return ModelConfig(feature_size=settings["feature_size"], cross_clip=settings["cross_clip"],
                       vitblock_num=settings["Vitblock_num"], aux="none",
                       score_fusion=float(settings.get("score_fusion", 0.0)))


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
              source: object = "checkpoint") -> str:
    """Load ``sd`` into an FRDUVAD ``model`` (whole, scorer only, or the C2FPL slot); returns the kind used.

    Any missing key, extra key or shape difference raises one ``CheckpointError`` naming ``source``.
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
        raise CheckpointError(source, "; ".join(problems))
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
