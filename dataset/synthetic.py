"""Seeded I3D-like synthetic data in the UCF-Crime concatenated layout (see docs/data.md).

Each snippet's pre-activation feature is
``h = energy_v * (m + scene_v) + W (lam * z_t) + crop_{v,c} + noise``: a global mean
and a per-video scene scaled by the video's energy, AR(1) dynamics ``z_t`` in a
low-rank factor space and correlated crop views; the feature is
``x = activity_t * relu(h)``, with ``activity_t`` drifting slowly. Some videos, normal
ones included, have a stretch of rare but normal activity (a shared camera-pan pattern
plus random rare directions). Anomalous videos (``anomalous_fraction`` of each split) carry
one or two events (frame granularity) of one of five types (``anomaly_types``: which ones): each moves the features in a direction that normal
data rarely visits and changes the activity abruptly at its edges (erratically inside;
appearance events lower it, the others raise it). On top of that every type carries a
shared anomalous-activity signature, with a type-specific strength: the global mean
``m`` is rotated towards a second mean that normal data never uses, which keeps the
norm but breaks the normal cross-channel structure, so that a scorer trained
on some anomaly types transfers to the others. The norm jumps against the video's own
normal part, which C2FPL's pseudo labels rely on, while the spread of energy across
videos keeps the squared-norm baseline near a frame AUC of 0.7, not near 1.
Everything comes from ``numpy.random.Generator(PCG64)`` streams keyed by
``(seed, stream, index)``, so the same spec always gives the same bytes.
"""
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from dataset.c2fpl import snippet_norms
from utils.errors import InputError
from utils.io import atomic_path, save_json, save_npy
from utils.progress import progress_bar
from utils.ranges import ranges_from_lengths
from utils.snippet import FRAMES_PER_SNIPPET

FILES: dict[str, str] = {
    "train_features": "concat_UCF.npy",
    "train_ranges": "nalist.npy",
    "test_features": "Concat_test_10.npy",
    "test_gt": "gt-ucf-RTFM.npy",
    "test_ranges": "test_nalist.npy",
    "train_truth": "train_truth.npy",
}
MANIFEST = "synthetic.json"
GENERATOR_VERSION = 3
LENGTHS_PATH = Path(__file__).with_name("ucf_train_lengths.npy")
ANOMALY_TYPES = ("appearance", "motion", "energy", "scene_mix", "burst")  # the default mix
# Two mechanisms that UCF-Crime-like variants use alone, where the C2FPL classifier is weak: ``surge`` adds
# energy (the whole feature grows, its direction barely moves); ``drift`` moves the feature off the normal
# manifold at the same norm (each crop's L2 norm is kept snippet by snippet), which no norm can see.
EXTRA_TYPES = ("surge", "drift")
KNOWN_TYPES = ANOMALY_TYPES + EXTRA_TYPES
EVENT_SHARE = (0.10, 0.45)  # default share of a video's frames that its events cover

N_FACTORS = 32        # normal dynamics subspace
N_SCENE = 16          # scene subspace
N_RARE = 8            # rare but normal activity (camera pans, crowds): not anomalous
N_ANOMALY = 8         # directions that only anomalies use
SIGNATURE = {  # rotation angle (rad) towards the anomalous mean, per type
    "appearance": 0.6, "motion": 0.5, "energy": 0.5, "scene_mix": 0.45, "burst": 0.4, "surge": 0.15, "drift": 0.3}
SURGE_GAIN = (1.25, 1.7)   # surge: the features' scale inside the event
DRIFT_LEVEL = (0.5, 0.8)   # drift: the shift along anomaly-only directions, before the norm is restored
SIGNATURE_JITTER = 0.2  # per-snippet relative change of the rotation angle
AR_RHO = 0.95         # temporal smoothness of normal dynamics
MEAN_OFFSET = 0.15    # with MEAN_STD sets the fraction of zeros after ReLU (about 40 %)
MEAN_STD = 0.5
SCENE_STD = 0.3
CROP_OFFSET_STD = 0.12
CROP_NOISE_STD = 0.12
ENERGY_RANGE = (0.2, 1.8)  # per-video squared energy of mean and scene (camera, crowd density)
ACTIVITY_LOG_STD = 0.02    # slow within-video activity changes
ACTIVITY_RHO = 0.95
EVENT_JUMP = (0.0, 0.1)    # log-activity step at the edges of an event
DROP_JUMP = (0.15, 0.3)    # the same, downwards, for appearance events
EVENT_JITTER = 0.12        # erratic log-activity changes inside an event
RARE_PROB = 0.4
RARE_STD = 0.35
RARE_LEVEL = 0.4           # rare activity shares one pattern (a camera pan)
RARE_JUMP = (0.0, 0.05)    # and raises the activity a little


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate; lengths are UCF-Crime training lengths times ``length_scale``."""

    seed: int = 0
    n_train_videos: int = 280
    n_test_videos: int = 140
    feature_size: int = 256
    n_crops: int = 10
    length_scale: float = 0.1
    min_length: int = 8
    max_length: int = 160
    anomalous_fraction: float = 0.5
    anomaly_types: tuple[str, ...] = ANOMALY_TYPES  # the types the anomalous videos take in turn
    event_share: tuple[float, float] = EVENT_SHARE  # events cover this share of an anomalous video's frames

    def __post_init__(self) -> None:
        object.__setattr__(self, "anomaly_types", tuple(self.anomaly_types))  # a list from a manifest
        object.__setattr__(self, "event_share", tuple(float(x) for x in self.event_share))
        unknown = sorted(set(self.anomaly_types) - set(KNOWN_TYPES))
        lo, hi = self.event_share if len(self.event_share) == 2 else (0.0, 0.0)
        checks = [
            ("seed", self.seed >= 0, "must be >= 0"),
            ("n_train_videos", self.n_train_videos >= 1, "must be >= 1"),
            ("n_test_videos", self.n_test_videos >= 2, "must be >= 2 (one anomalous, one normal)"),
            ("feature_size", self.feature_size > 0 and self.feature_size % 256 == 0,
             "must be a positive multiple of 256 (16 tokens x 16 heads)"),
            ("n_crops", self.n_crops >= 1, "must be >= 1"),
            ("length_scale", self.length_scale > 0, "must be > 0"),
            ("min_length", self.min_length >= 4, "must be >= 4"),
            ("max_length", self.max_length >= self.min_length, "must be >= min_length"),
            ("anomalous_fraction", 0 < self.anomalous_fraction < 1, "must be in (0, 1)"),
            ("anomaly_types", not unknown and len(set(self.anomaly_types)) == len(self.anomaly_types) > 0,
             f"must be distinct names out of {', '.join(KNOWN_TYPES)}"),
            ("event_share", 0 < lo <= hi < 1, "must be two fractions 0 < low <= high < 1"),
        ]
        for name, ok, problem in checks:
            if not ok:
                raise InputError(f"SyntheticSpec.{name}", f"{problem}, got {getattr(self, name)!r}")

    @property
    def name(self) -> str:
        """A folder name for this spec, e.g. ``256d-10crop-280+140videos-seed0-x0.1``, with
        ``-max400``, ``-anomalous0.2``, ``-motion+burst`` and ``-events0.03-0.1`` when the longest video, the
        fraction, the types and the events' share are not the defaults."""
        name = (f"{self.feature_size}d-{self.n_crops}crop-{self.n_train_videos}+{self.n_test_videos}videos-"
                f"seed{self.seed}-x{self.length_scale:g}")
        if self.max_length != SyntheticSpec.max_length:
            name += f"-max{self.max_length}"
        if self.min_length != SyntheticSpec.min_length:
            name += f"-min{self.min_length}"
        if self.anomalous_fraction != 0.5:
            name += f"-anomalous{self.anomalous_fraction:g}"
        if self.anomaly_types != ANOMALY_TYPES:
            name += "-" + "+".join(self.anomaly_types)
        if self.event_share != EVENT_SHARE:
            name += f"-events{self.event_share[0]:g}-{self.event_share[1]:g}"
        return name


@dataclass(frozen=True)
class _World:
    """Quantities shared by all videos: bases (D, k) with per-channel RMS 1, and the mean."""

    mean: np.ndarray       # (D,)
    factors: np.ndarray    # (D, N_FACTORS)
    lam: np.ndarray        # (N_FACTORS,) factor scales, decaying
    scenes: np.ndarray     # (D, N_SCENE)
    rare: np.ndarray       # (D, N_RARE)
    anomaly: np.ndarray    # (D, N_ANOMALY)
    signature: np.ndarray  # (D,) the global mean of anomalous activity, shared by every anomaly type
    bursts: np.ndarray     # (4, D) 0/1 channel masks


@dataclass(frozen=True)
class _Video:
    """One video's plan: snippets, frame events [start, end] inclusive, anomaly type."""

    length: int
    events: tuple[tuple[int, int], ...]
    kind: int


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *key])))


def _world(spec: SyntheticSpec) -> _World:
    rng = _rng(spec.seed, 0)
    d = spec.feature_size
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    basis = q * np.sqrt(d)
    k1, k2, k3 = N_FACTORS, N_FACTORS + N_SCENE, N_FACTORS + N_SCENE + N_RARE
    lam = 0.12 * (1.0 + np.arange(N_FACTORS)) ** -0.5
    bursts = np.zeros((4, d))
    for b in bursts:
        b[rng.choice(d, size=d // 8, replace=False)] = 1.0
    return _World(
        mean=MEAN_OFFSET + MEAN_STD * rng.standard_normal(d),
        factors=basis[:, :k1], lam=lam, scenes=basis[:, k1:k2], rare=basis[:, k2:k3],
        anomaly=basis[:, k3:k3 + N_ANOMALY], bursts=bursts,
        signature=MEAN_OFFSET + MEAN_STD * basis[:, k3 + N_ANOMALY],
    )


def _events(rng: np.random.Generator, length: int, share: tuple[float, float]) -> tuple[tuple[int, int], ...]:
    """One or two frame spans, >= 16 frames each, covering ``share`` (low, high) of 16 * length frames."""
    frames = FRAMES_PER_SNIPPET * length
    lo, hi = int(np.ceil(share[0] * frames)), max(int(np.floor(share[1] * frames)), FRAMES_PER_SNIPPET)
    total = int(rng.integers(max(lo, FRAMES_PER_SNIPPET), hi + 1))
    if total >= 2 * FRAMES_PER_SNIPPET and rng.random() < 0.4:
        first = int(rng.integers(FRAMES_PER_SNIPPET, total - FRAMES_PER_SNIPPET + 1))
        sizes = [first, total - first]
    else:
        sizes = [total]
    spare = frames - total - (len(sizes) - 1)
    gaps = np.floor(rng.dirichlet(np.ones(len(sizes) + 1)) * spare).astype(int)
    gaps[1:-1] += 1
    events, pos = [], 0
    for gap, size in zip(gaps, sizes):
        start = pos + int(gap)
        events.append((start, start + size - 1))
        pos = start + size
    return tuple(events)


def _snippet_mask(video: _Video) -> np.ndarray:
    """(T,) bool: snippets overlapping an event by at least half their frames."""
    starts = FRAMES_PER_SNIPPET * np.arange(video.length)
    mask = np.zeros(video.length, dtype=bool)
    for s, e in video.events:
        overlap = np.minimum(e + 1, starts + FRAMES_PER_SNIPPET) - np.maximum(s, starts)
        mask |= overlap >= FRAMES_PER_SNIPPET // 2
    return mask


def _plan(spec: SyntheticSpec) -> tuple[list[_Video], list[_Video]]:
    """Train and test videos, anomalous ones first in each (as in the UCF-Crime lists)."""
    rng = _rng(spec.seed, 1)
    lengths = np.load(LENGTHS_PATH)

    def split(n_videos: int) -> list[_Video]:
        raw = rng.choice(lengths, size=n_videos)
        sizes = np.clip(np.rint(raw * spec.length_scale), spec.min_length, spec.max_length)
        n_anomalous = min(max(int(round(spec.anomalous_fraction * n_videos)), 1), n_videos - 1)
        types = np.array([KNOWN_TYPES.index(t) for t in spec.anomaly_types])
        kinds = types[rng.permutation(np.arange(n_anomalous) % len(types))]
        videos = []
        for i, t in enumerate(sizes.astype(int)):
            if i < n_anomalous:
                videos.append(_Video(int(t), _events(rng, int(t), spec.event_share), int(kinds[i])))
            else:
                videos.append(_Video(int(t), (), -1))
        return videos

    train = split(spec.n_train_videos)
    return train, split(spec.n_test_videos)


def _ar1(rng: np.random.Generator, rho: np.ndarray, k: int) -> np.ndarray:
    """(T, k) unit-variance AR(1) paths with per-step coefficients ``rho`` (T,)."""
    eps = rng.standard_normal((rho.shape[0], k))
    z = np.empty_like(eps)
    z[0] = eps[0]
    for t in range(1, rho.shape[0]):
        z[t] = rho[t] * z[t - 1] + np.sqrt(1.0 - rho[t] ** 2) * eps[t]
    return z


def _features(world: _World, video: _Video, n_crops: int, rng: np.random.Generator) -> np.ndarray:
    """(T, C, D) float32 features of one video."""
    t_len, d = video.length, world.mean.shape[0]
    mask = _snippet_mask(video)
    n_anom = int(mask.sum())
    kind = KNOWN_TYPES[video.kind] if video.kind >= 0 else None
    energy = np.sqrt(rng.uniform(*ENERGY_RANGE))
    scene = world.scenes @ (SCENE_STD * rng.standard_normal(N_SCENE) / np.sqrt(N_SCENE))
    crop_offset = CROP_OFFSET_STD * rng.standard_normal((n_crops, d))
    visibility = rng.uniform(0.5, 1.0, size=n_crops)

    rho = np.full(t_len, AR_RHO)
    gain = np.ones((t_len, N_FACTORS))
    rare_span = slice(0, 0)
    if rng.random() < RARE_PROB:
        width = int(rng.integers(1, max(t_len // 3, 1) + 1))
        start = int(rng.integers(0, t_len - width + 1))
        rare_span = slice(start, start + width)
    if kind == "motion":
        rho[mask] = rng.uniform(0.0, 0.4)
        gain[mask] = 1.0 + rng.uniform(2.0, 4.0) * np.linspace(0.0, 1.0, N_FACTORS)
    static = np.broadcast_to(world.mean + scene, (t_len, d)).copy()
    if n_anom:
        angle = SIGNATURE[kind] * rng.uniform(0.8, 1.2) * (1.0 + SIGNATURE_JITTER * rng.standard_normal((n_anom, 1)))
        static[mask] += ((np.cos(angle) - 1.0) * (world.mean - MEAN_OFFSET)
                         + np.sin(angle) * (world.signature - MEAN_OFFSET))
    snippet = energy * static + (_ar1(rng, rho, N_FACTORS) * gain * world.lam) @ world.factors.T
    if rare_span.stop > rare_span.start:
        rare = _ar1(rng, np.full(rare_span.stop - rare_span.start, AR_RHO), N_RARE) * RARE_STD / np.sqrt(N_RARE)
        rare[:, 0] += RARE_LEVEL * rng.uniform(0.7, 1.3)
        snippet[rare_span] += rare @ world.rare.T

    shift = np.zeros((n_anom, d))
    log_activity = ACTIVITY_LOG_STD * _ar1(rng, np.full(t_len, ACTIVITY_RHO), 1)[:, 0]
    log_activity[rare_span] += rng.uniform(*RARE_JUMP)
    if n_anom:
        jump = -rng.uniform(*DROP_JUMP) if kind == "appearance" else rng.uniform(*EVENT_JUMP)
        jump = 0.0 if kind == "drift" else jump  # drift keeps the norm
        log_activity[mask] += jump + EVENT_JITTER * rng.standard_normal(n_anom)
    scale = np.exp(log_activity)
    if kind == "appearance":
        dirs = world.anomaly[:, rng.choice(N_ANOMALY, size=2, replace=False)]
        level = rng.uniform(0.35, 0.55) * (1.0 + 0.3 * rng.standard_normal((n_anom, 2)))
        shift = level @ dirs.T / np.sqrt(2)
    elif kind == "energy":
        scale[mask] *= rng.uniform(1.0, 1.1)
        shift += rng.uniform(0.2, 0.35) * world.anomaly[:, rng.integers(N_ANOMALY)]
    elif kind == "scene_mix":
        other = world.scenes @ (2.8 * SCENE_STD * rng.standard_normal(N_SCENE) / np.sqrt(N_SCENE))
        odd = world.anomaly @ (0.5 * rng.standard_normal(N_ANOMALY) / np.sqrt(N_ANOMALY))
        shift += rng.uniform(0.5, 0.8) * (other + odd - scene)
    elif kind == "burst":
        channels = world.bursts[rng.integers(len(world.bursts))]
        shift = (rng.random((n_anom, d)) < 0.6) * np.abs(rng.normal(1.1, 0.4, size=(n_anom, d))) * channels
    elif kind == "surge":
        scale[mask] *= rng.uniform(*SURGE_GAIN) * np.exp(0.1 * rng.standard_normal(n_anom))
    elif kind == "drift":
        dirs = world.anomaly[:, rng.choice(N_ANOMALY, size=3, replace=False)]
        level = rng.uniform(*DRIFT_LEVEL) * (1.0 + 0.3 * rng.standard_normal((n_anom, 3)))
        shift = level @ dirs.T / np.sqrt(3)

    h = rng.standard_normal((t_len, n_crops, d), dtype=np.float32)
    h *= CROP_NOISE_STD
    h += snippet[:, None, :].astype(np.float32)
    h += crop_offset[None].astype(np.float32)
    if kind == "drift":  # the same norm as without the shift, crop by crop
        plain = np.linalg.norm(np.maximum(h[mask], 0.0), axis=-1, keepdims=True)
    h[mask] += (shift[:, None, :] * visibility[None, :, None]).astype(np.float32)
    np.maximum(h, 0.0, out=h)
    if kind == "drift":
        h[mask] *= plain / np.maximum(np.linalg.norm(h[mask], axis=-1, keepdims=True), 1e-6)
    h *= scale[:, None, None].astype(np.float32)
    return h


def _frame_gt(videos: list[_Video]) -> np.ndarray:
    """(16 * N,) float32 0/1, events labelled start..end inclusive, cut at 16 * T."""
    parts = []
    for video in videos:
        gt = np.zeros(FRAMES_PER_SNIPPET * video.length, dtype=np.float32)
        for s, e in video.events:
            gt[s:e + 1] = 1.0
        parts.append(gt)
    return np.concatenate(parts)


def _write_features(
    path: Path, world: _World, videos: list[_Video], spec: SyntheticSpec, stream: int, bar: tqdm
) -> None:
    """Stream the videos into a temp ``.npy`` memmap beside ``path``, then rename it; ``bar`` counts videos."""
    n = sum(v.length for v in videos)
    with atomic_path(path) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32,
                                        shape=(n, spec.n_crops, spec.feature_size))
        pos = 0
        for i, video in enumerate(videos):
            out[pos:pos + video.length] = _features(world, video, spec.n_crops, _rng(spec.seed, stream, i))
            pos += video.length
            bar.update(1)
        out.flush()
        del out


def generate(out_dir: str | Path, spec: SyntheticSpec) -> dict[str, Path]:
    """Write every file of ``FILES`` and the manifest into ``out_dir``; return key -> path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {key: out_dir / name for key, name in FILES.items()}
    save_json(out_dir / MANIFEST, {"generator_version": GENERATOR_VERSION, "complete": False})
    print(f"generating the synthetic dataset into {out_dir} ({spec.n_train_videos} + {spec.n_test_videos} videos) ...")
    world = _world(spec)
    train, test = _plan(spec)
    with progress_bar(total=len(train) + len(test), desc="synthetic videos", unit="video",
                  dynamic_ncols=True) as bar:
        _write_features(paths["train_features"], world, train, spec, stream=2, bar=bar)
        _write_features(paths["test_features"], world, test, spec, stream=3, bar=bar)
    save_npy(paths["train_ranges"], ranges_from_lengths([v.length for v in train]))
    save_npy(paths["test_ranges"], ranges_from_lengths([v.length for v in test]))
    save_npy(paths["test_gt"], _frame_gt(test))
    save_npy(paths["train_truth"], np.concatenate([_snippet_mask(v) for v in train]).astype(np.uint8))
    save_json(out_dir / MANIFEST, {
        "generator_version": GENERATOR_VERSION,
        "spec": asdict(spec),
        "files": dict(FILES),
        "train_snippets": int(sum(v.length for v in train)),
        "test_snippets": int(sum(v.length for v in test)),
        "train_anomaly_types": [KNOWN_TYPES[v.kind] if v.kind >= 0 else None for v in train],
        "test_anomaly_types": [KNOWN_TYPES[v.kind] if v.kind >= 0 else None for v in test],
    })
    return paths


def ensure(out_dir: str | Path, spec: SyntheticSpec) -> dict[str, Path]:
    """The files of ``spec`` in ``out_dir``: reused when the manifest matches, else generated.

    Neither files that the generator did not write (no manifest) nor a complete dataset of another spec
    are ever overwritten; an unfinished or older generator's dataset is made again.
    """
    out_dir = Path(out_dir)
    paths = {key: out_dir / name for key, name in FILES.items()}
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        manifest = None
    complete = isinstance(manifest, dict) and manifest.get("generator_version") == GENERATOR_VERSION
    written = SyntheticSpec(**manifest["spec"]) if complete and manifest.get("spec") else None
    if written == spec and all(p.is_file() for p in paths.values()):
        return paths
    if written not in (None, spec):
        other = written.name
        raise InputError(out_dir, f"holds the synthetic dataset {other}, not {spec.name}; choose another "
                                  "--synthetic_dir (nothing was overwritten)")
    foreign = [p.name for p in paths.values() if p.is_file()] if manifest is None else []
    if foreign:
        raise InputError(out_dir, f"holds {', '.join(foreign)} not written by the synthetic generator; "
                                  "choose another folder (nothing was overwritten)")
    return generate(out_dir, spec)


def norm_score_auc(out_dir: str | Path, chunk_rows: int = 4096) -> float:
    """Frame ROC AUC on the test set of the crop-averaged squared L2 norm ``mean_c sum_D x^2`` (``snippet_norms``)."""
    features_path, gt_path = Path(out_dir) / FILES["test_features"], Path(out_dir) / FILES["test_gt"]
    for path in (features_path, gt_path):
        if not path.is_file():
            raise InputError(path, "file not found")
    features = np.load(features_path, mmap_mode="r")
    gt = np.load(gt_path)
    if features.ndim != 3:
        raise InputError(features_path, f"expected (N, C, D), got shape {features.shape}")
    if gt.shape != (FRAMES_PER_SNIPPET * features.shape[0],):
        raise InputError(gt_path, f"shape {gt.shape} is not ({FRAMES_PER_SNIPPET} x {features.shape[0]} test "
                                  "snippets,)")
    norms = snippet_norms(features, chunk_rows)
    return float(roc_auc_score(gt, np.repeat(norms, FRAMES_PER_SNIPPET)))
