"""Whether a training run learned anything, judged without labels from what it logged and from its Scorer, and the
likely cause when it did not: most often features on another scale than the I3D features the method was made for."""
import math

import numpy as np

I3D_SCALE = 0.6  # ‖x‖ / √D of a typical snippet of I3D-like features (non-negative, mean value about 0.3): the
# default synthetic dataset's, modelled on the field's I3D features (about 27 for a 2048-d snippet)
SCALE_TOLERANCE = 10.0  # a typical snippet more than this many times larger or smaller: another scale


def feature_scale(features: np.ndarray) -> float:
    """``(N, C, D)`` or ``(N, D)`` snippets -> the median over snippets of ‖x‖ / √D (averaged over crops)."""
    features = np.asarray(features, dtype=np.float64)
    norms = np.linalg.norm(features, axis=-1) / math.sqrt(features.shape[-1])
    return float(np.median(norms.mean(axis=1) if norms.ndim == 2 else norms))


def learning_problems(records: list[dict], check: dict, scale: float, feature_size: int) -> dict | None:
    """None when training learned something; else what shows it did not and the likely cause.

    ``records``: the run's metrics.jsonl records (losses, pseudo-label counts), the last one the run's end;
    ``check``: ``train.scorer_check`` of the final Scorer on training snippets; ``scale``: :func:`feature_scale` of
    training snippets. Learning nothing is no anomalous pseudo label over the run, or a Scorer that flags none of
    the training snippets (its scores then all alike); a loss that did not fall is reported alongside."""
    findings = []
    labels = sum(r["pseudo_labels"] for r in records)
    if labels == 0:
        findings.append(f"0 of {sum(r['labels_total'] for r in records)} pseudo labels anomalous (reconstruction "
                        f"{sum(r['recon_labels'] for r in records)}, auxiliary {sum(r['aux_labels'] for r in records)})")
    if check["learned_nothing"]:
        spread = "every score the same" if check["spread"] < 1e-3 else f"score spread {check['spread']:.3g}"
        findings.append(f"the Scorer flags none of {check['snippets']} training snippets ({spread})")
    if not findings:
        return None
    if len(records) > 1 and records[-1]["loss"] >= records[0]["loss"]:
        findings.append(f"the loss did not fall ({records[0]['loss']:.4g} at the first snapshot, "
                        f"{records[-1]['loss']:.4g} at the last)")
    root = math.sqrt(feature_size)
    typical, i3d = scale * root, I3D_SCALE * root
    if not I3D_SCALE / SCALE_TOLERANCE <= scale <= I3D_SCALE * SCALE_TOLERANCE:
        cause = (f"feature scale: a typical training snippet has norm {typical:.4g}, I3D features about {i3d:.3g} "
                 f"at {feature_size} dimensions ({scale / I3D_SCALE:.3g}×): rescale the features (or check the "
                 "backbone's weights) so that they are of the I3D features' order")
    else:
        cause = (f"not the feature scale (a typical snippet has norm {typical:.4g}, I3D features about {i3d:.3g}): "
                 "too little training data or too few epochs for pseudo labels, or features in which nothing "
                 "stands out")
    return {"findings": findings, "likely_cause": cause, "scorer_check": check, "feature_norm": round(typical, 4),
            "i3d_norm": round(i3d, 4)}
