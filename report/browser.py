"""A report opened in headless Chromium, with the standard library only: its self-test read back from the DOM, or
a screenshot.

``check(page)`` loads ``page#selftest``: the page's own script sorts its table by every column, opens every row,
waits for every image and writes what it saw (JSON) into ``<pre id="selftest">``; Chromium prints the DOM
(``--dump-dom``) once the page's virtual time budget has run out, and every line the page wrote to the console
(``--enable-logging=stderr``) is returned with it.
"""
import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio", "--no-first-run",
         "--disable-extensions", "--disable-dev-shm-usage")
CONSOLE = re.compile(r':CONSOLE(?:\(\d+\))?:?\d*\] "(.*)", source: (.*)$')
SELFTEST = re.compile(r'<pre id="selftest">(.*?)</pre>', re.S)


class BrowserError(RuntimeError):
    """Chromium did not give the page's answer."""


def find_chromium() -> str | None:
    """The Chromium (or Chrome) executable: ``$CHROMIUM`` when set, else the first of CANDIDATES on the PATH."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    return next((path for path in map(shutil.which, CANDIDATES) if path), None)


def run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Chromium with ``args``, in a throw-away profile."""
    chromium = find_chromium()
    if chromium is None:
        raise BrowserError("no Chromium found (install chromium, or set CHROMIUM to its executable)")
    with tempfile.TemporaryDirectory(prefix="frd-chromium-") as profile:
        return subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=timeout)


def check(page: str | Path, budget_ms: int = 30000, timeout: float = 120) -> dict:
    """Open ``page#selftest``; its self-test result (``rows``, ``sorts``, ``images``, ``charts``, ``errors`` …)
    with ``console``: what the page wrote to the console."""
    url = Path(page).resolve().as_uri() + "#selftest"
    done = run(["--enable-logging=stderr", "--v=0", f"--virtual-time-budget={budget_ms}", "--dump-dom", url],
               timeout)
    console = [m.group(1) for m in map(CONSOLE.search, done.stderr.splitlines()) if m]
    found = SELFTEST.findall(done.stdout)  # the last one: the script's own text may name the element too
    if not found:
        raise BrowserError(f"{page}: the page wrote no self-test result (exit {done.returncode}); console: "
                           f"{console or 'nothing'}")
    return {**json.loads(html.unescape(found[-1])), "console": console}


def screenshot(page: str | Path, png: str | Path, width: int = 1280, height: int = 1400, hash: str = "",
               budget_ms: int = 5000, timeout: float = 120) -> Path:
    """A ``width`` × ``height`` screenshot of ``page`` (``hash``: e.g. ``open=2``) into ``png``."""
    url = Path(page).resolve().as_uri() + (f"#{hash}" if hash else "")
    png = Path(png).resolve()
    done = run([f"--window-size={width},{height}", f"--virtual-time-budget={budget_ms}", f"--screenshot={png}", url],
               timeout)
    if not png.is_file():
        raise BrowserError(f"{page}: no screenshot written (exit {done.returncode}): {done.stderr[-500:]}")
    return png


def main(argv: list[str] | None = None) -> None:
    """``python -m report.browser check PAGE`` (its self-test, one line) or ``screenshot PAGE PNG [--open N]``."""
    import argparse

    parser = argparse.ArgumentParser(description="Open a report.html in headless Chromium.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="run the page's self-test").add_argument("page")
    shot = sub.add_parser("screenshot", help="a PNG of the page")
    shot.add_argument("page")
    shot.add_argument("png")
    shot.add_argument("--open", type=int, default=0, metavar="N", help="open the first N rows first")
    shot.add_argument("--size", default="1280x1400", metavar="WxH")
    args = parser.parse_args(argv)
    if args.command == "check":
        result = check(args.page)
        problems = result["errors"] + result["console"]
        images = result["images"]
        print(f"{args.page}: {result['rows']} rows, sorted by {len(result['sorts'])} columns, {result['charts']} "
              f"charts, {images['loaded']}/{images['total']} images loaded, {len(problems)} error(s)")
        for line in problems:
            print(f"  {line}")
        raise SystemExit(1 if problems or images["loaded"] != images["total"] else 0)
    width, height = (int(v) for v in args.size.lower().split("x"))
    print(screenshot(args.page, args.png, width, height, f"open={args.open}" if args.open else ""))


if __name__ == "__main__":
    main()
