"""Demo videos: anomalies measured in the pixels, labels and their padding, written files, folder reuse."""
import json

import numpy as np
import pytest

import video.scenes
from utils.errors import InputError
from video.decode import probe, read_frames
from video.scenes import Scene, frame_ground_truth, padded_labels, render_video, write_demo_set

W, H = 160, 120


def person_masks(video: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) -> (T, H, W) bool: pixels far from the per-pixel median over time (the background)."""
    background = np.median(video, axis=0)
    return np.abs(video.astype(np.float32) - background).sum(axis=-1) > 60


def boxes(masks: np.ndarray) -> np.ndarray:
    """(T, H, W) -> (T, 4) x0, x1, y0, y1 (inclusive) of each frame's mask; -1 where empty."""
    out = np.full((len(masks), 4), -1)
    for t, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        if xs.size:
            out[t] = xs.min(), xs.max(), ys.min(), ys.max()
    return out


def in_view(box: np.ndarray) -> np.ndarray:
    """Frames whose mask is whole in the picture (not cut by the left or right edge)."""
    return (box[:, 0] > 0) & (box[:, 1] < W - 1)


def span_mask(frames: int, span: tuple[int, int]) -> np.ndarray:
    inside = np.zeros(frames, bool)
    inside[span[0]:span[1]] = True
    return inside


def test_same_seed_same_frames_other_seed_other_frames():
    scene = Scene("run", 48, (10, 30), 2, seed=5)
    first = render_video(scene)
    assert first.shape == (48, H, W, 3) and first.dtype == np.uint8
    assert np.array_equal(first, render_video(scene))
    other_people = np.abs(first.astype(int) - render_video(Scene("run", 48, (10, 30), 2, seed=6))) > 60
    assert other_people.any(axis=(1, 2, 3)).all()  # the same camera, other people in every frame


@pytest.mark.parametrize("seed", [0, 1])
def test_running_person_moves_over_three_times_as_far_per_frame(seed):
    scene = Scene("run", 120, (40, 80), 1, seed=seed)
    masks = person_masks(render_video(scene))
    centre = np.array([np.nonzero(m)[1].mean() if m.any() else np.nan for m in masks])
    ok = in_view(boxes(masks))
    step = np.abs(np.diff(centre))
    pair_ok = ok[1:] & ok[:-1]
    inside = span_mask(120, scene.span)
    running = np.median(step[pair_ok & inside[1:] & inside[:-1]])
    walking = np.median(step[pair_ok & ~inside[1:] & ~inside[:-1]])
    assert 0.4 < walking < 2.5
    assert running >= 3 * walking


def test_car_drives_through_inside_the_span_only():
    scene = Scene("vehicle", 120, (40, 90), 2, seed=3, camera=1)
    video = render_video(scene)
    normal = person_masks(render_video(Scene("normal", 120, None, 2, seed=3, camera=1)))
    masks = person_masks(video)
    area = masks.sum(axis=(1, 2))
    inside = span_mask(120, scene.span)
    assert np.median(area[inside]) > np.median(area[~inside]) + 150  # a car is larger than a person
    assert np.median(area[~inside]) < 2 * np.median(normal.sum(axis=(1, 2)))
    moved = np.abs(video[41:90].astype(int) - video[40:89]).sum(axis=-1) > 60
    assert np.median(moved.sum(axis=(1, 2))) > 100  # fast: many pixels change each frame


def test_colliding_people_rush_together_and_scuffle():
    scene = Scene("collide", 120, (40, 80), 2, seed=4)
    masks = person_masks(render_video(scene))
    box = boxes(masks)
    extent = box[:, 1] - box[:, 0] + 1
    assert extent[39] >= 30 and extent[40] >= 30  # apart when it starts
    assert (extent[50:80] <= 28).all()  # together within 10 frames (>= 1 px/frame closer), and stay
    centre = np.array([np.nonzero(m)[1].mean() for m in masks])
    assert np.median(np.abs(np.diff(centre[50:80]))) >= 1  # scuffling
    assert not np.array_equal(masks[79], masks[85])  # then walk on


def test_people_stay_inside_the_centre_crop():
    for seed, kind in enumerate(("normal", "run", "collide")):
        scene = Scene(kind, 150, None if kind == "normal" else (50, 80), 3, seed=seed, camera=seed)
        box = boxes(person_masks(render_video(scene)))
        seen = box[:, 0] >= 0
        crop = (W - 224 * H / 256) / 2  # the columns a 224 centre crop of a 256-high resize keeps
        assert seen.all() and (box[seen, 0] >= crop).all() and (box[seen, 1] < W - crop).all()


def test_cameras_share_their_background_across_videos():
    first = np.median(render_video(Scene("normal", 40, None, 2, seed=1, camera=2)), axis=0)
    second = np.median(render_video(Scene("normal", 40, None, 3, seed=9, camera=2)), axis=0)
    other = np.median(render_video(Scene("normal", 40, None, 2, seed=1, camera=0)), axis=0)
    assert np.abs(first - second).mean() < 3 < np.abs(first - other).mean()


def test_flashes_brighten_whole_frames_inside_the_span_only():
    scene = Scene("flash", 120, (40, 90), 2, seed=2)
    brightness = render_video(scene).reshape(120, -1).mean(axis=1)
    bright = brightness > np.median(brightness) + 25
    assert bright[40] and bright.sum() >= 6
    assert not bright[~span_mask(120, scene.span)].any()
    normal = render_video(Scene("normal", 120, None, 2, seed=2)).reshape(120, -1).mean(axis=1)
    assert np.ptp(normal) < 3


def test_labels_mark_the_span():
    assert Scene("run", 10, (3, 6), 1, seed=0).labels.tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]
    assert Scene("normal", 4, None, 1, seed=0).labels.tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize("args, words", [
    (("jump", 10, (2, 4), 1), "kind 'jump'"),
    (("normal", 10, (2, 4), 1), "has a span"),
    (("run", 10, None, 1), "has no span"),
    (("run", 10, (4, 11), 1), "not inside"),
    (("collide", 10, (2, 4), 1), "1 people"),
    (("normal", 10, None, 1, 0, 3), "camera 3"),
])
def test_bad_scene_is_one_line(args, words):
    with pytest.raises(ValueError, match=words):
        Scene(*args[:4], seed=0, camera=args[5] if len(args) > 5 else 0)


def test_labels_padded_with_the_last_frames_label():
    ones_at_end = np.array([0] * 30 + [1] * 5, np.uint8)
    assert padded_labels(ones_at_end).tolist() == [0] * 30 + [1] * 18
    assert padded_labels(np.zeros(32, np.uint8)).tolist() == [0] * 32
    assert padded_labels(np.array([1] + [0] * 16, np.uint8)).tolist() == [1] + [0] * 31


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo") / "set"
    return folder, write_demo_set(folder, n_train=4, n_test=3, seed=0)


def expected_gt(labels: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.concatenate([v, np.full(-len(v) % 16, v[-1])]) for v in labels])


def test_demo_set_layout_and_labels(demo):
    folder, (train, test) = demo
    assert [v.name for v in train] == [f"train_{i:03d}" for i in range(4)]
    assert [v.name for v in test] == [f"test_{i:03d}" for i in range(3)]
    assert sorted(p.name for p in (folder / "train").iterdir()) == [f"train_{i:03d}.mp4" for i in range(4)]
    assert [v.kind == "normal" for v in train].count(False) == 2 and [v.kind for v in test].count("normal") == 2
    for v in train + test:
        assert v.path.is_file() and v.fps == 25.0 and 300 <= v.frames <= 400 and v.labels.shape == (v.frames,)
        assert v.labels.any() == (v.kind != "normal")
        assert v.kind == "normal" or 0.11 <= v.labels.mean() <= 0.2
    gt = np.load(folder / "test_gt.npy")
    assert gt.dtype == np.uint8 and np.array_equal(gt, expected_gt([v.labels for v in test]))
    assert np.array_equal(frame_ground_truth(test), gt)
    for split, videos in (("train", train), ("test", test)):
        table = json.loads((folder / f"{split}_labels.json").read_text())
        assert [(r["name"], r["file"], r["frames"], r["kind"]) for r in table] == [
            (v.name, f"{split}/{v.name}.mp4", v.frames, v.kind) for v in videos]
        for row, v in zip(table, videos):
            ones = np.flatnonzero(v.labels)
            assert row["span"] == (None if v.kind == "normal" else [ones[0], ones[-1] + 1])


def test_demo_videos_decode_to_their_frames(demo):
    _, (train, test) = demo
    for v in (train[0], test[-1]):
        chunks = list(read_frames(v.path))
        assert sum(len(c) for c in chunks) == v.frames and chunks[0].shape[1:] == (H, W, 3)
        assert probe(v.path).fps == 25.0


def test_same_specification_is_reused_and_completed(demo, monkeypatch):
    folder, (train, test) = demo
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    monkeypatch.setattr(video.scenes, "render_video", lambda scene: pytest.fail("rendered again"))
    again = write_demo_set(folder, n_train=4, n_test=3, seed=0)
    assert [(v.name, v.frames, v.kind) for v in again[0] + again[1]] == [(v.name, v.frames, v.kind)
                                                                        for v in train + test]
    assert all(np.array_equal(a.labels, b.labels) for a, b in zip(again[0] + again[1], train + test))
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    monkeypatch.undo()
    test[1].path.unlink()
    (folder / "test_gt.npy").unlink()
    write_demo_set(folder, n_train=4, n_test=3, seed=0)
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before  # the same bytes again


def test_another_specification_or_foreign_folder_is_refused(demo, tmp_path):
    folder, _ = demo
    before = sorted(folder.rglob("*"))
    with pytest.raises(InputError, match=r"another specification \(seed 0 not 1\); not overwriting") as error:
        write_demo_set(folder, n_train=4, n_test=3, seed=1)
    assert str(folder) in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(InputError, match=r"n_train 4 not 5"):
        write_demo_set(folder, n_train=5, n_test=3)
    assert sorted(folder.rglob("*")) == before
    (tmp_path / "notes.txt").write_text("mine\n")
    with pytest.raises(InputError, match="not empty and holds no demo_spec.json"):
        write_demo_set(tmp_path, n_train=1, n_test=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
