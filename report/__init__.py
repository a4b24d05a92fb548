"""One self-contained HTML page per evaluation, comparison of checkpoints, training run or batch of scored videos.

The callers (run_test.py, main.py) hand over what they computed; :mod:`report.data` turns it into plain JSON,
:mod:`report.page` inlines that JSON with the page's CSS and JavaScript (``report/assets/``) into one file that
opens offline. :mod:`report.browser` opens a page in headless Chromium (tests, screenshots).
"""
from report.page import write_evaluation_report, write_test_report, write_training_report, write_videos_report

__all__ = ["write_evaluation_report", "write_test_report", "write_training_report", "write_videos_report"]
