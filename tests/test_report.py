"""report.html: what each kind of report shows (against scikit-learn and frame_metrics), the --report flag, and each
kind opened in headless Chromium: no error, every image loaded, sorting reorders the table (skipped without a
Chromium)."""
import base64
import json
import re

import numpy as np
import pytest
from sklearn.metrics import roc_curve

import main
import run_test
from report.browser import check, find_chromium
from report.data import Evaluated, evaluation_data, pack, pooled
from report.page import render, write_evaluation_report, write_training_report, write_videos_report
from deploy.score import VideoReport
from tests.test_score_video import setup  # noqa: F401  (the fixture: stand-in weights, a checkpoint, two videos)
from tests.videos import write_video
from tests.test_extract import moving_square
from utils.events import Event
from utils.metrics import frame_metrics

SHIPPED = "best_ckpt/synthetic/best_ckpt_0.9532.pkl"
TINY_TEST = ["--synth_train_videos", "6", "--synth_test_videos", "5", "--synth_crops", "2"]
needs_browser = pytest.mark.skipif(find_chromium() is None, reason="no Chromium installed")


def unpack(packed: dict) -> np.ndarray:
    levels = np.frombuffer(base64.b64decode(packed["q"]), dtype="<u2")
    return packed["lo"] + levels / 65535 * (packed["hi"] - packed["lo"])


def test_pack_keeps_values_to_a_65535th_of_their_range():
    values = np.random.default_rng(0).uniform(0.1, 0.9, 1000)
    packed = pack(values)
    assert packed["n"] == 1000 and len(base64.b64decode(packed["q"])) == 2000
    np.testing.assert_allclose(unpack(packed), values, atol=0.8 / 65535 / 2 + 1e-12)
    assert unpack(pack([0.3, 0.3])).tolist() == [0.3, 0.3]


def test_pooled_keeps_each_windows_peak():
    values = np.arange(10.0)
    assert pooled(values, 20)[1] == 1
    kept, step = pooled(values, 4)
    assert step == 3 and kept.tolist() == [2, 5, 8, 9]


def small_test_set(seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Frame labels (16 N,), ranges (5, 2) of videos of 7..30 snippets (two normal ones, one anomalous throughout)
    and two checkpoints' scores."""
    rng = np.random.default_rng(seed)
    lengths = [12, 30, 7, 20, 9]
    ranges = np.stack([np.cumsum([0] + lengths[:-1]), np.cumsum(lengths)], 1)
    labels = np.zeros(16 * sum(lengths))
    labels[16 * 12 + 40:16 * 12 + 200] = 1  # video 1: one span
    labels[16 * 49:16 * 49 + 50] = labels[16 * 49 + 100:16 * 49 + 170] = 1  # video 3: two spans
    labels[16 * 69:16 * 78] = 1  # video 4: anomalous throughout
    truth = labels.reshape(-1, 16).max(1)
    scores = [np.clip(truth * k + rng.normal(0.3, 0.2, len(truth)), 0, 1) for k in (0.5, 0.1)]
    return labels, ranges, scores


def test_evaluation_data_agrees_with_frame_metrics_and_sklearn():
    labels, ranges, scores = small_test_set()
    metrics = [frame_metrics(s, labels, ranges) for s in scores]
    data = evaluation_data([Evaluated(f"ck{k}", s, m) for k, (s, m) in enumerate(zip(scores, metrics))], labels,
                           ranges, ["a", "b", "c", "d", "e"], 0.5, "t", {})
    videos = data["videos"]
    for k in range(2):
        assert [v["auc"][k] for v in videos] == pytest.approx(metrics[k]["per_video_auc"], abs=1e-12)
        assert [v["max"][k] for v in videos] == pytest.approx([scores[k][a:b].max() for a, b in ranges])
        assert data["checkpoints"][k]["metrics"]["auc_all"] == metrics[k]["auc_all"]
        fpr, tpr, _ = roc_curve(labels, np.repeat(scores[k], 16))
        roc = data["checkpoints"][k]["roc"]
        assert (roc["x"][0], roc["y"][0], roc["x"][-1], roc["y"][-1]) == (0, 0, 1, 1)
        assert len(roc["x"]) <= len(fpr)
        for x, y in zip(roc["x"], roc["y"]):  # every kept point is one of the curve's
            assert np.min(np.hypot(fpr - x, tpr - y)) < 1e-4
    assert [v["spans"] for v in videos] == [[], [[40, 200]], [], [[0, 50], [100, 170]], [[0, 144]]]
    assert [v["gt_share"] for v in videos] == pytest.approx([0, 160 / 480, 0, 120 / 320, 1])
    np.testing.assert_allclose(unpack(videos[1]["scores"][0]), scores[0][12:42], atol=1e-4)
    # worst first: anomalous by AUC, then normal by highest score, then the wholly anomalous one
    anomalous = sorted((1, 3), key=lambda i: videos[i]["auc"][0])
    normal = sorted((0, 2), key=lambda i: -videos[i]["max"][0])
    assert sorted(range(5), key=lambda i: videos[i]["worst"]) == [*anomalous, *normal, 4]


def test_page_holds_its_data_whole_and_nothing_from_the_network():
    labels, ranges, scores = small_test_set()
    name = "</script><!-- & {{js}}"
    data = evaluation_data([Evaluated("ck", scores[0], frame_metrics(scores[0], labels, ranges))], labels, ranges,
                           [name, "b", "c", "d", "e"], 0.5, "<b>title</b>", {"features": name})
    page = render(data)
    inline = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S).group(1)
    assert {k: v for k, v in json.loads(inline).items() if k != "generated"} == data
    assert "<b>title</b>" not in page and "&lt;b&gt;title&lt;/b&gt;" in page
    assert not re.search(r'(src|href)="https?:', page) and "@import" not in page and "fetch(" not in page


def test_report_flag_writes_or_not_and_changes_nothing_else(tmp_path):
    for flag in ("True", "False"):
        run_test.main(["--ckpt_path", SHIPPED, "--metrics_out", str(tmp_path / flag / "metrics.json"),
                       "--synthetic_dir", str(tmp_path / "data"), "--report", flag, *TINY_TEST])
    assert sorted(p.name for p in (tmp_path / "True").iterdir()) == ["metrics.json", "report.html"]
    assert sorted(p.name for p in (tmp_path / "False").iterdir()) == ["metrics.json"]
    written = [json.loads((tmp_path / flag / "metrics.json").read_text()) for flag in ("True", "False")]
    assert written[0] == written[1]


def videos_reports(root, n: int = 3) -> list[VideoReport]:
    """Scored videos by hand: one with a playable file and two events (thumbnails), one without events, one live."""
    write_video(root / "clip.mp4", moving_square(40))
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
    reports = [VideoReport("clip", str(root / "clip.mp4"), 25.0, 40, [0.2, 0.9, 0.7],
                           [Event(0.64, 1.6, 0.9, 0.96)], thumbnails=[(0.96, frame), (1.3, frame[:, :64])]),
               VideoReport("quiet", str(root / "quiet.avi"), 30.0, 3200, list(rng.uniform(0, 0.4, 200))),
               VideoReport("cam-1_stream", "rtsp://cam-1/stream", 25.0, 16 * 5000, list(rng.uniform(0, 1, 5000)),
                           [Event(10.0, 20.0, 0.99, 15.0)])]
    for r in reports:
        (root / "out" / r.name).mkdir(parents=True)
        (root / "out" / r.name / "events.json").write_text("{}")
    return reports[:n]


@needs_browser
def test_evaluation_report_in_a_browser(tmp_path):
    labels, ranges, scores = small_test_set()
    evaluated = [Evaluated(f"ck{k}", s, frame_metrics(s, labels, ranges), k == 1) for k, s in enumerate(scores)]
    page = write_evaluation_report(tmp_path / "report.html", evaluated, labels, ranges, list("abcde"), 0.5, "two",
                                   {"test features": "x.npy"})
    result = check(page)
    assert result["errors"] == [] and result["console"] == []
    assert result["rows"] == 5 and result["charts"] == 2 + 5  # ROC, PR, and one score curve per opened video
    assert result["curves"] == 2 * 2 + 5 * 2
    data = evaluation_data(evaluated, labels, ranges, list("abcde"), 0.5, "two", {})
    by_name = {v["name"]: v for v in data["videos"]}
    assert result["initial"] == sorted(by_name, key=lambda n: by_name[n]["worst"])
    values = {"worst": lambda v: v["worst"], "name": lambda v: v["name"], "frames": lambda v: v["frames"],
              "gt_share": lambda v: v["gt_share"], "auc_0": lambda v: v["auc"][0], "max_0": lambda v: v["max"][0],
              "auc_1": lambda v: v["auc"][1], "max_1": lambda v: v["max"][1], "curve": lambda v: v["max"][0]}
    assert set(result["sorts"]) == set(values)
    for key, get in values.items():
        for order, direction in ((result["sorts"][key]["order"], result["sorts"][key]["dir"]),
                                 (result["sorts"][key]["order2"], result["sorts"][key]["dir2"])):
            assert_sorted([get(by_name[n]) for n in order], direction, key)
    assert result["sorts"]["name"]["order"] != result["initial"]  # sorting reorders the rows


def assert_sorted(values: list, direction: str, key: str) -> None:
    """``values`` in ``direction`` order, the missing ones (None) last."""
    present = [v for v in values if v is not None]
    assert values == present + [None] * (len(values) - len(present)), key
    assert present == sorted(present, reverse=direction == "desc"), key


@needs_browser
def test_videos_report_in_a_browser(tmp_path):
    reports = videos_reports(tmp_path)
    page = write_videos_report(tmp_path / "out" / "report.html", reports, {"threshold": 0.5, "min_gap": 1.0,
                                                                           "min_length": 0.0})
    result = check(page)
    assert result["errors"] == [] and result["console"] == []
    assert result["rows"] == 3 and result["initial"] == ["cam-1_stream", "clip", "quiet"]  # highest score first
    assert result["images"] == {"total": 2 + 1, "loaded": 3}  # clip's two thumbnails and its row's peak frame
    assert result["videos"] == 2  # a player for each file, none for the live source
    assert result["sorts"]["name"]["order"] == ["cam-1_stream", "clip", "quiet"]
    assert result["sorts"]["name"]["order2"] == ["quiet", "clip", "cam-1_stream"]
    assert result["sorts"]["events"]["order"][-1] == "quiet"
    html = page.read_text()
    assert '"src":"../clip.mp4"' in html and '"events.json":"clip/events.json"' in html


@needs_browser
def test_training_report_in_a_browser(tmp_path):
    history = [{"iteration": i, "epoch": 1 + i // 6, "loss": 2.0 / i, "Lre": 1.0 / i, "Ldi": 0.5, "Ls": 0.5 / i,
                "recon_labels": 40 - i, "aux_labels": 30, "pseudo_labels": 20 - i, "labels_total": 192,
                "auc_all": 0.6 + 0.02 * i, "ap": float("nan") if i == 3 else 0.3, "bank_size": 0,
                "per_video_auc": [0.5]} for i in (3, 6, 9, 11)]
    page = write_training_report(tmp_path / "report.html", history, {"dataset_name": "synthetic", "lr": 0.001},
                                 "auc_all")
    result = check(page)
    assert result["errors"] == [] and result["console"] == []
    assert result["rows"] == 4 and result["charts"] == 3  # losses, pseudo labels, test metrics
    assert result["sorts"]["auc_all"]["order"] == ["11", "9", "6", "3"]
    assert result["sorts"]["ap"]["order"][-1] == "3"  # NaN (no value) last


@needs_browser
def test_scored_videos_end_to_end_in_a_browser(setup, tmp_path):  # noqa: F811
    out = tmp_path / "out"
    run_test.main(["--video", str(setup["videos"]), "--ckpt_path", setup["ckpt"], "--output_dir", str(out),
                   "--weights", setup["weights"], "--threshold", "0", "--annotate", "scored.mp4"])
    result = check(out / "report.html")
    assert result["errors"] == [] and result["console"] == []
    assert result["rows"] == 2 and result["videos"] == 2
    assert result["images"]["total"] >= 2 and result["images"]["loaded"] == result["images"]["total"]
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', (out / "report.html").read_text(), re.S).group(1))
    for video in data["videos"]:
        assert set(video["links"]) == {"scores.csv", "events.json", "timeline.png", "annotated"}
        for link in video["links"].values():
            assert (out / link).is_file()
        assert (out / video["src"]).resolve() == (setup["videos"] / f"{video['name']}.mp4").resolve()


def test_training_writes_its_report_unless_told_not_to(tmp_path):
    args = [*TINY_TEST, "--synthetic_dir", str(tmp_path / "data"), "--aux", "none", "--Vitblock_num", "1",
            "--max_seqlen", "32", "--max_iters", "2", "--snapshot", "1", "--feature_size", "256"]
    main.main([*args, "--output_dir", str(tmp_path / "on")])
    main.main([*args, "--output_dir", str(tmp_path / "off"), "--report", "False"])
    page = (tmp_path / "on" / "report.html").read_text()
    history = [json.loads(line) for line in (tmp_path / "on" / "metrics.jsonl").read_text().splitlines()]
    inline = json.loads(re.search(r'id="report-data">(.*?)</script>', page, re.S).group(1))
    assert [h["iteration"] for h in inline["history"]] == [h["iteration"] for h in history] == [1, 2]
    assert inline["history"][-1]["auc_all"] == pytest.approx(history[-1]["auc_all"])
    assert not (tmp_path / "off" / "report.html").exists()
    on, off = ({p.name for p in (tmp_path / run).iterdir()} for run in ("on", "off"))
    assert on - {"report.html"} == off
