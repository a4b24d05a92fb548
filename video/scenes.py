"""Small surveillance-like demo videos with frame-level anomalies, drawn with numpy from a seed, encoded with PyAV.

A scene: one of ``CAMERAS`` fixed cameras, as in ShanghaiTech or Avenue (a static background: buildings above a
horizon, a floor gradient, benches, lamp posts; the same for the training and the test videos of that camera) with
mild per-frame sensor noise, and 2-3 people (upright ellipses with a head) walking at 1-2 px/frame, bobbing with each
step, turning back at the edges of the ``VIEW`` band (the part of the frame an I3D centre crop keeps). An anomalous
video holds one span ``[from, to)`` (8-14 % of it) of a kind an untrained conv net sees (large, sudden motion or
light):

* ``run``: one person runs at 4-6x walking speed.
* ``vehicle``: a car drives through the walkway at 6-9 px/frame, pass after pass.
* ``collide``: two people rush together (5 px/frame each), scuffle (jumping 2-4 px a frame), then walk on.
* ``flash``: the lights flicker: the whole frame brightens for 2-3 frames every 6-10 frames.

``write_demo_set`` writes ``train/train_000.mp4 ...`` and ``test/test_000.mp4 ...`` (MPEG-4 Part 2, one encoder
thread: the same seed gives the same bytes with the same FFmpeg), the labels (``train_labels.json``, for diagnostics
only; ``test_labels.json``; ``test_gt.npy``) and ``demo_spec.json``; a folder of the same specification is reused.
"""
import io
import json
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from utils.errors import InputError
from utils.snippet import FRAMES_PER_SNIPPET as SNIPPET

ANOMALIES = ("run", "vehicle", "collide", "flash")
KINDS = ("normal", *ANOMALIES)
WIDTH, HEIGHT, FPS = 160, 120, 25
SECONDS = (12, 16)  # video length range
SPAN_FRACTION = (0.08, 0.14)  # an anomalous span covers this much of its video
NOISE = 2.0  # sensor noise, grey levels (std)
CAMERAS = 3  # fixed backgrounds shared by the training and the test videos
CAMERA_SEED = 20240  # the cameras' backgrounds come from this seed and the camera's index alone
VIEW = (0.22, 0.78)  # the band of the width people walk in: inside the 224 centre crop of a 256-high resize
RUN_FACTOR = (4.0, 6.0)
RUSH = 5.0  # px/frame of each person rushing into a collision
SCUFFLE = (2.0, 4.0)  # px the scufflers jump each frame
CAR_SPEED = (6.0, 9.0)  # px/frame
CAR = (44, 14)  # car length and body height, px at scale 1
FLASH = (50.0, 90.0)  # brightness added by a flash
BIT_RATE = 1_000_000  # bits/s: enough for the finest quantiser at 160x120
SPEC_FILE = "demo_spec.json"
SPEC_VERSION = 2  # bump when the generator draws differently: old folders are then refused, never overwritten
CLOTHES = np.array([[200, 40, 40], [40, 60, 190], [40, 150, 60], [230, 120, 30], [130, 50, 160], [30, 170, 180]],
                   np.float32)  # mid-bright colours: every walker stands out about as much
SKIN = np.array([[240, 200, 170], [200, 150, 110], [140, 95, 60], [90, 60, 40]], np.float32)


@dataclass(frozen=True)
class Scene:
    """What one video shows; the background, people, colours and speeds are drawn from ``seed``."""
    kind: str  # "normal" or one of ANOMALIES
    frames: int
    span: tuple[int, int] | None  # anomalous frames [from, to); None for "normal"
    people: int  # 1-4 (the demo sets draw 2-3; "collide" needs 2)
    seed: int
    camera: int = 0  # which of the CAMERAS backgrounds
    width: int = WIDTH
    height: int = HEIGHT

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Scene: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if (self.span is None) != (self.kind == "normal"):
            raise ValueError(f"Scene: a {self.kind} scene {'has no' if self.span is None else 'has a'} span")
        if self.span is not None and not 0 < self.span[0] < self.span[1] <= self.frames:
            raise ValueError(f"Scene: span {self.span} is not inside 1..{self.frames} frames")
        if not (2 if self.kind == "collide" else 1) <= self.people <= 4:
            raise ValueError(f"Scene: {self.people} people for a {self.kind} scene")
        if not 0 <= self.camera < CAMERAS:
            raise ValueError(f"Scene: camera {self.camera} is not one of 0..{CAMERAS - 1}")
        if self.width % 2 or self.height % 2 or min(self.width, self.height) < 64:
            raise ValueError(f"Scene: frame size {self.width}x{self.height} must be even and at least 64x64")

    @property
    def labels(self) -> np.ndarray:
        """(frames,) uint8: 1 inside the anomalous span."""
        labels = np.zeros(self.frames, np.uint8)
        if self.span is not None:
            labels[self.span[0]:self.span[1]] = 1
        return labels


@dataclass(frozen=True)
class DemoVideo:
    """One written demo video and its frame labels."""
    name: str
    path: Path
    frames: int
    fps: float
    labels: np.ndarray  # (frames,) uint8 0/1
    kind: str  # "normal" or one of ANOMALIES


def _background(rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, int]:
    """-> (H, W, 3) float32 background and the horizon's row."""
    horizon = int(height * rng.uniform(0.35, 0.5))
    rows = np.arange(height, dtype=np.float32)[:, None, None]
    tint = rng.uniform(-12, 12, (4, 3))  # greys with a tint
    sky_top, sky_low = rng.uniform(130, 190) + tint[0], rng.uniform(170, 220) + tint[1]
    far, near = rng.uniform(110, 150) + tint[2], rng.uniform(70, 120) + tint[3]
    sky = sky_top + (sky_low - sky_top) * rows / max(horizon, 1)
    floor = far + (near - far) * (rows - horizon) / (height - horizon)
    image = np.where(rows < horizon, sky, floor).astype(np.float32) * np.ones((1, width, 1), np.float32)
    for _ in range(rng.integers(3, 7)):  # buildings standing on the horizon, with rows of windows
        left, wide, top = rng.integers(-10, width), rng.integers(15, 50), rng.integers(2, max(horizon - 10, 3))
        wall = rng.uniform(50, 180) + rng.uniform(-20, 20, 3)
        image[top:horizon, max(left, 0):left + wide] = wall
        image[top + 3:horizon - 3:6, max(left + 3, 0):left + wide - 2] = wall + 40
    for _ in range(rng.integers(0, 3)):  # lamp posts
        x, top = rng.integers(0, width - 2), rng.integers(2, horizon)
        image[top:rng.integers(horizon + 5, height), x:x + 2] = 40
    for _ in range(rng.integers(1, 4)):  # benches
        x, y = rng.integers(0, width - 24), rng.integers(horizon + 4, height - 5)
        image[y:y + rng.integers(3, 6), x:x + rng.integers(14, 25)] = rng.uniform(30, 70, 3)
    return image, horizon


def _bounce(x: np.ndarray, width: int) -> np.ndarray:
    """x positions folded into the VIEW band: reaching one edge of it is turning back."""
    lo, hi = VIEW[0] * width, VIEW[1] * width
    y = np.mod(x - lo, 2 * (hi - lo))
    return lo + np.where(y > hi - lo, 2 * (hi - lo) - y, y)


def _walk(start: float, velocity: np.ndarray, width: int) -> np.ndarray:
    """(T,) velocity -> (T,) positions from ``start`` at frame 0."""
    return _bounce(start + np.concatenate([[0.0], np.cumsum(velocity)[:-1]]), width)


def _scale(feet: np.ndarray, horizon: int, height: int) -> np.ndarray:
    """Size of a person whose feet are on row ``feet``: 0.55 at the horizon to 1.2 at the bottom (perspective)."""
    return 0.55 + 0.65 * (feet - horizon) / (height - horizon)


def _tracks(rng: np.random.Generator, scene: Scene, horizon: int) -> dict:
    """The people: (P, T) ``x``, ``feet`` (row of the feet), ``bob`` (px); (P, 3) ``body`` and ``skin`` colours.
    Person 0 (and 1) carry a run or a collision; the ``car`` (None unless a vehicle scene): (T,) ``x`` (NaN out of
    the span), its ``feet`` row, ``scale``, ``direction`` and (3,) ``colour``."""
    T, W, H, P = scene.frames, scene.width, scene.height, scene.people
    lanes = rng.uniform(horizon + 0.3 * (H - horizon), horizon + 0.75 * (H - horizon), P)
    scale = _scale(lanes, horizon, H)
    speed = rng.choice([-1.0, 1.0], P) * rng.uniform(1.0, 1.8, P) * scale
    starts = rng.uniform(VIEW[0] * W, VIEW[1] * W, P)
    x = np.stack([_walk(start, np.full(T, v), W) for start, v in zip(starts, speed)])
    feet = np.repeat(lanes[:, None], T, axis=1)
    car = None
    if scene.kind == "run":
        s, e = scene.span
        velocity = np.full(T, speed[0])
        velocity[s:e] *= rng.uniform(*RUN_FACTOR)
        x[0] = _walk(starts[0] - velocity[:s].sum(), velocity, W)
    elif scene.kind == "collide":
        s, e = scene.span
        lo, hi = VIEW[0] * W, VIEW[1] * W
        first = rng.uniform(lo + 0.1 * W, hi - 0.1 * W)
        second = np.clip(first + rng.choice([-1.0, 1.0]) * rng.uniform(0.25, 0.4) * W, lo, hi)
        meet, meet_feet = (first + second) / 2, lanes[:2].mean()
        ramp = np.minimum(np.arange(e - s) / min(math.ceil(abs(second - first) / 2 / RUSH), (e - s) // 2), 1.0)
        gap = 2.8 * scale[:2].mean()  # each ends this far from the meeting point: shoulder to shoulder
        jumps = rng.uniform(*SCUFFLE, (2, e - s)) * (-1.0) ** np.arange(e - s) * (ramp == 1)
        for p, (at_start, other) in enumerate(((first, second), (second, first))):
            target = meet + np.sign(at_start - other) * gap
            x[p, :s] = _walk(at_start - s * speed[p], np.full(s, speed[p]), W)
            x[p, s:e] = at_start + (target - at_start) * ramp + jumps[p]
            x[p, e:] = _walk(target, np.full(T - e, speed[p]), W)
            feet[p, s:e] = lanes[p] + (meet_feet - lanes[p]) * ramp + 0.5 * jumps[1 - p]
            feet[p, e:] = meet_feet
    elif scene.kind == "vehicle":
        s, e = scene.span
        lane = rng.uniform(horizon + 0.45 * (H - horizon), H - 4)
        car_scale = float(_scale(lane, horizon, H))
        direction = rng.choice([-1.0, 1.0])
        lo, period = VIEW[0] * W - CAR[0] * car_scale / 2, (VIEW[1] - VIEW[0] + 0.1) * W + CAR[0] * car_scale
        track = np.mod(rng.uniform(0.3, 0.5) * period + rng.uniform(*CAR_SPEED) * np.arange(e - s), period)
        car_x = np.full(T, np.nan)
        car_x[s:e] = lo + (track if direction > 0 else period - track)
        car = {"x": car_x, "feet": lane, "scale": car_scale, "direction": direction,
               "colour": CLOTHES[rng.integers(0, len(CLOTHES))]}
    step = np.abs(np.diff(x, axis=1, prepend=x[:, :1]))
    stride = rng.uniform(9, 12, (P, 1)) * scale[:, None]
    bob = -0.8 * scale[:, None] * np.abs(np.sin(np.pi * np.cumsum(step, axis=1) / stride))
    return {"x": x, "feet": feet, "bob": bob, "car": car,
            "body": CLOTHES[rng.integers(0, len(CLOTHES), P)], "skin": SKIN[rng.integers(0, len(SKIN), P)]}


def _paint_ellipse(frame: np.ndarray, cx: float, cy: float, ax: float, ay: float, colour: np.ndarray) -> None:
    """Fill the ellipse centred (cx, cy) with semi-axes (ax, ay) px in the (H, W, 3) frame, in place."""
    H, W = frame.shape[:2]
    x0, x1 = max(int(cx - ax), 0), min(int(cx + ax) + 2, W)
    y0, y1 = max(int(cy - ay), 0), min(int(cy + ay) + 2, H)
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.ogrid[y0:y1, x0:x1]
    inside = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1
    frame[y0:y1, x0:x1][inside] = colour


def _paint_box(frame: np.ndarray, x0: float, x1: float, y0: float, y1: float, colour: np.ndarray | float) -> None:
    """Fill columns [x0, x1) and rows [y0, y1) (clipped to the frame) of the (H, W, 3) frame, in place."""
    H, W = frame.shape[:2]
    c0, c1, r0, r1 = max(int(x0), 0), min(int(x1), W), max(int(y0), 0), min(int(y1), H)
    if c0 < c1 and r0 < r1:
        frame[r0:r1, c0:c1] = colour


def _paint_person(frame: np.ndarray, x: float, feet: float, bob: float, scale: float, body: np.ndarray,
                  skin: np.ndarray) -> None:
    """An upright person: a 8x20 px ellipse and a head at scale 1."""
    half_w, half_h, head = 4 * scale, 10 * scale, 2.4 * scale
    _paint_ellipse(frame, x, feet - half_h + bob, half_w, half_h, body)
    _paint_ellipse(frame, x, feet - 2 * half_h - 0.7 * head + bob, head, head, skin)


def _paint_car(frame: np.ndarray, x: float, feet: float, scale: float, direction: float, colour: np.ndarray) -> None:
    """A car centred on column ``x`` with its wheels on row ``feet``: a body, a cabin with windows, two wheels."""
    length, height = CAR[0] * scale, CAR[1] * scale
    wheel = 3 * scale
    bottom = feet - wheel
    _paint_box(frame, x - length / 2, x + length / 2, bottom - height / 2, bottom, colour)
    cabin = x - direction * 0.1 * length
    _paint_box(frame, cabin - 0.28 * length, cabin + 0.28 * length, bottom - height, bottom - height / 2 + 1, colour)
    _paint_box(frame, cabin - 0.22 * length, cabin + 0.22 * length, bottom - 0.9 * height, bottom - height / 2,
               np.float32(200.0))
    for at in (-0.3, 0.3):
        _paint_ellipse(frame, x + at * length, feet - wheel, wheel, wheel, np.full(3, 20.0, np.float32))


def _brightness(rng: np.random.Generator, scene: Scene) -> np.ndarray:
    """(T,) brightness added to each frame: flashes inside a flash scene's span, else zeros."""
    added = np.zeros(scene.frames, np.float32)
    if scene.kind == "flash":
        t, end = scene.span
        while t < end:
            added[t:min(t + rng.integers(2, 4), end)] = rng.uniform(*FLASH)
            t += rng.integers(6, 11)
    return added


def render_video(scene: Scene) -> np.ndarray:
    """Scene -> (T, H, W, 3) uint8 RGB frames; the same scene gives the same frames. The background is the
    camera's (``CAMERA_SEED`` and ``scene.camera``), the rest comes from ``scene.seed``."""
    background, horizon = _background(np.random.default_rng([CAMERA_SEED, scene.camera]), scene.width, scene.height)
    rng = np.random.default_rng(scene.seed)
    tracks = _tracks(rng, scene, horizon)
    brightness = _brightness(rng, scene)
    scale = _scale(tracks["feet"], horizon, scene.height)
    car = tracks["car"]
    video = np.empty((scene.frames, scene.height, scene.width, 3), np.uint8)
    for t in range(scene.frames):
        frame = background + rng.normal(0.0, NOISE, background.shape).astype(np.float32)
        for p in np.argsort(tracks["feet"][:, t], kind="stable"):  # the farther first
            _paint_person(frame, tracks["x"][p, t], tracks["feet"][p, t], tracks["bob"][p, t], scale[p, t],
                          tracks["body"][p], tracks["skin"][p])
        if car is not None and not np.isnan(car["x"][t]):
            _paint_car(frame, car["x"][t], car["feet"], car["scale"], car["direction"], car["colour"])
        video[t] = np.clip(np.rint(frame + brightness[t]), 0, 255)
    return video


def padded_labels(labels: np.ndarray) -> np.ndarray:
    """(frames,) -> (16·ceil(frames/16),): the rtfm preset fills the last snippet with its last frame, so do the
    labels."""
    return np.pad(labels, (0, -len(labels) % SNIPPET), mode="edge")


def frame_ground_truth(videos: list[DemoVideo]) -> np.ndarray:
    """The per-video layout's frame ground truth: padded labels of each video in list order, concatenated."""
    return np.concatenate([padded_labels(v.labels) for v in videos])


def _plan(split: str, n: int, seed: int) -> list[tuple[str, Scene]]:
    """n (name, scene) pairs of a split: n // 2 anomalous, the kinds in turn, in a seeded order; the cameras in
    turn."""
    rng = np.random.default_rng([seed, ("train", "test").index(split)])
    kinds = [ANOMALIES[i % len(ANOMALIES)] for i in range(n // 2)] + ["normal"] * (n - n // 2)
    plan = []
    for i, kind in enumerate(rng.permutation(kinds)):
        frames = int(rng.integers(SECONDS[0] * FPS, SECONDS[1] * FPS + 1))
        span = None
        if kind != "normal":
            length = int(frames * rng.uniform(*SPAN_FRACTION))
            start = int(rng.integers(int(0.1 * frames), int(0.9 * frames) - length + 1))
            span = (start, start + length)
        people = int(rng.integers(2, 4))
        scene = Scene(str(kind), frames, span, people, int(rng.integers(2 ** 31)), camera=i % CAMERAS)
        plan.append((f"{split}_{i:03d}", scene))
    return plan


def _write_atomic(path: Path, write) -> None:
    """``write(tmp_path)`` then rename: a file is there whole or not at all (a hidden ``.part`` meanwhile, which
    no video or label reader picks up)."""
    tmp = path.with_name(f".{path.name}.part")
    write(tmp)
    os.replace(tmp, path)


def _encode(path: Path, frames: np.ndarray, fps: int = FPS) -> None:
    """(T, H, W, 3) uint8 RGB -> MPEG-4 Part 2 .mp4 at ``fps``, one thread: the same bytes on every run (libx264
    is not: even with one thread, about one encode in three of the same frames differs, PyAV 18 / FFmpeg 8.1)."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.thread_count = 1
        stream.codec_context.bit_rate = BIT_RATE
        for array in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        out.mux(stream.encode(None))


def _labels_table(videos: list[DemoVideo], scenes: list[Scene], folder: Path) -> list[dict]:
    """The rows of ``<split>_labels.json``: per video name, file (relative to ``folder``), frames, fps, kind, span."""
    return [{"name": v.name, "file": str(v.path.relative_to(folder)), "frames": v.frames, "fps": v.fps,
             "kind": v.kind, "span": None if s.span is None else list(s.span)} for v, s in zip(videos, scenes)]


def _npy_bytes(array: np.ndarray) -> bytes:
    """The .npy file of ``array`` (np.save to a path would append .npy to a temporary name)."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def write_demo_set(folder: str | os.PathLike, n_train: int, n_test: int,
                   seed: int = 0) -> tuple[list[DemoVideo], list[DemoVideo]]:
    """Write (or reuse) a demo set in ``folder``: -> (train videos, test videos), each in file-name order.

    Files: ``train/train_NNN.mp4``, ``test/test_NNN.mp4``, ``train_labels.json`` (diagnostics: the training set
    is used unlabelled), ``test_labels.json`` (per video: file, frames, fps, kind, span [from, to) or null),
    ``test_gt.npy`` (``frame_ground_truth`` of the test videos, uint8) and ``demo_spec.json``. A folder holding
    the same specification is reused (missing files written); another one, or other files, raise InputError.
    """
    if n_train < 0 or n_test < 0 or n_train + n_test == 0:
        raise ValueError(f"write_demo_set: need n_train, n_test >= 0 and some videos, got {n_train}, {n_test}")
    folder = Path(folder)
    spec = {"generator": "video.scenes", "version": SPEC_VERSION, "n_train": n_train, "n_test": n_test,
            "seed": seed, "width": WIDTH, "height": HEIGHT, "fps": FPS, "cameras": CAMERAS}
    spec_path = folder / SPEC_FILE
    if spec_path.is_file():
        try:
            found = json.loads(spec_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InputError(spec_path, "unreadable demo specification (not JSON); not overwriting it") from None
        if not isinstance(found, dict):
            raise InputError(spec_path, "not a demo specification (a JSON object); not overwriting it")
        if found != spec:
            changed = ", ".join(f"{k} {found.get(k)!r} not {v!r}" for k, v in spec.items() if found.get(k) != v)
            raise InputError(folder, f"holds a demo set of another specification ({changed}); not overwriting "
                                     f"it: delete it or choose another folder")
    elif folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InputError(folder, f"{'not a folder' if not folder.is_dir() else 'not empty'} and holds no "
                                 f"{SPEC_FILE}; not overwriting it: choose a new or empty folder")
    else:
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(spec_path, lambda p: p.write_text(json.dumps(spec, indent=1) + "\n"))
    splits = []
    for split, n in (("train", n_train), ("test", n_test)):
        (folder / split).mkdir(exist_ok=True)
        plan = _plan(split, n, seed)
        videos = []
        for name, scene in plan:
            path = folder / split / f"{name}.mp4"
            if not path.is_file():
                _write_atomic(path, lambda p: _encode(p, render_video(scene)))
            videos.append(DemoVideo(name, path, scene.frames, float(FPS), scene.labels, scene.kind))
        table = folder / f"{split}_labels.json"
        if not table.is_file():
            rows = _labels_table(videos, [s for _, s in plan], folder)
            _write_atomic(table, lambda p: p.write_text(json.dumps(rows, indent=1) + "\n"))
        splits.append(videos)
    gt_path = folder / "test_gt.npy"
    if not gt_path.is_file() and splits[1]:
        _write_atomic(gt_path, lambda p: p.write_bytes(_npy_bytes(frame_ground_truth(splits[1]))))
    return splits[0], splits[1]
