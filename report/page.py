"""One HTML file per report: the template of ``report/assets/`` with its CSS, its JavaScript and the report's data
inlined (``<script type="application/json">``), so the page opens offline, from a file system or an attachment."""
import json
import re
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Sequence

import numpy as np

from report.data import Evaluated, ScoredVideo, evaluation_data, training_data, videos_data
from utils.io import save_text

ASSETS = Path(__file__).resolve().parent / "assets"


def render(data: dict) -> str:
    """The page of ``data`` (a dict of :mod:`report.data`): one self-contained HTML document."""
    page = (ASSETS / "report.html").read_text(encoding="utf-8")
    payload = json.dumps({**data, "generated": datetime.now().isoformat(timespec="seconds")},
                         separators=(",", ":"), allow_nan=False)
    # "<" and ">" escaped so no "</script>" or "<!--" can end the data block early; the JSON stays equal
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    parts = {"title": escape(data["title"]), "css": (ASSETS / "report.css").read_text(encoding="utf-8"),
             "js": (ASSETS / "report.js").read_text(encoding="utf-8"), "data": payload}
    return re.sub(r"\{\{(\w+)\}\}", lambda m: parts[m.group(1)], page)  # one pass: no inserted text is read again


def write(path: str | Path, data: dict) -> Path:
    """``render(data)`` into ``path``, atomically."""
    save_text(path, render(data))
    return Path(path)


def write_evaluation_report(path: str | Path, evaluated: Sequence[Evaluated], labels: np.ndarray,
                            ranges: np.ndarray | None, names: Sequence[str] | None, threshold: float, title: str,
                            info: dict) -> Path:
    """The report of one or more checkpoints scored on a test set (see :func:`report.data.evaluation_data`)."""
    return write(path, evaluation_data(evaluated, labels, ranges, names, threshold, title, info))


def write_test_report(folder: str | Path, evaluated: Sequence[Evaluated], test, threshold: float, what: str) -> Path:
    """A test-set evaluation's report into ``folder``: ``report.html``, or ``test_report.html`` in a training run's
    folder (its report.html is the run's). ``test``: a ``TestSet`` (labels, ranges, n_snippets, source)."""
    folder = Path(folder)
    path = folder / ("test_report.html" if (folder / "metrics.jsonl").is_file() else "report.html")
    info = {"checkpoints": ", ".join(e.name for e in evaluated), "test features": test.source.path,
            "test snippets": test.n_snippets, "alarm threshold": threshold}
    write_evaluation_report(path, evaluated, test.labels, test.ranges, getattr(test.source, "video_names", None),
                            threshold, f"{what}: test set", info)
    print(f"report -> {path}")
    return path


def write_videos_report(path: str | Path, reports: Sequence[ScoredVideo], rules: dict,
                        annotate: str | None = None) -> Path:
    """The report of scored videos whose files lie beside ``path`` (``<folder>/<video name>/``)."""
    out_dir = Path(path).parent
    title = f"{len(reports)} scored video{'s' if len(reports) != 1 else ''}: {out_dir.resolve().name}"
    write(path, videos_data(reports, out_dir, rules, annotate, title))
    print(f"report -> {path}")
    return Path(path)


def write_training_report(path: str | Path, history: Sequence[dict], settings: dict, select: str) -> Path:
    """The report of a training run: its learning curves (``history``: metrics.jsonl's records)."""
    title = f"training run {Path(path).resolve().parent.name}"
    write(path, training_data(history, settings, select, title))
    print(f"report -> {path}")
    return Path(path)
