"""Progress displays that suit where they go: tqdm's bar on a terminal, a plain line now and then in a log.

Redirected into a file (a batch job, CI), a bar redraws itself with ``\\r`` at every update and fills the log;
:func:`progress_bar` then writes one newline-terminated line every ``LOG_INTERVAL`` seconds at most, and the final
state when the display closes (unless ``leave=False``).
"""
import sys
import time
from typing import Any

from tqdm import tqdm

LOG_INTERVAL = 30.0  # seconds between two lines of a progress display in a log


class LogProgress(tqdm):
    """tqdm for a stream that is not a terminal: a line (``desc: n/total [elapsed, rate, postfix]``) at most every
    ``interval`` seconds, however often it is updated or refreshed, none while the count stands still, and the last
    state on ``close``."""

    _next_line = float("inf")  # no line before __init__ has set the clock (tqdm displays from inside it)

    def __init__(self, *args: Any, interval: float = LOG_INTERVAL, **kwargs: Any) -> None:
        kwargs.setdefault("mininterval", interval)
        kwargs.setdefault("maxinterval", interval)
        self._interval, self._last = interval, None  # the (count, postfix) of the last line
        super().__init__(*args, **kwargs)
        self._next_line = time.monotonic() + interval

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        """A line when the interval has passed and the count moved; ``msg`` (tqdm's clearing and overflow messages)
        is never written."""
        if msg is None and time.monotonic() >= self._next_line and (self._last is None or self.n != self._last[0]):
            self._line()
        return False

    def clear(self, nolock: bool = False) -> None:
        """Nothing to clear in a log (``tqdm.write`` calls this before its line)."""

    def close(self) -> None:
        shown = not self.disable and self._time() - self.start_t >= self.delay  # tqdm's delay: nothing before it
        if shown and self.leave is not False and (self.n, self.postfix) != self._last:
            self._line()
        self.leave = False  # tqdm's own close then writes nothing (display returns False: no clearing "\r")
        super().close()

    def _line(self) -> None:
        self._last, self._next_line = (self.n, self.postfix), time.monotonic() + self._interval
        self.fp.write(self.__str__() + "\n")
        self.fp.flush()


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is an interactive terminal."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress_bar(*args: Any, **kwargs: Any) -> tqdm:
    """``tqdm(*args, **kwargs)`` on a terminal; :class:`LogProgress` when its ``file`` (stderr by default) is not
    one. Used as tqdm is: a context manager, an iterable wrapper, ``update``, ``set_postfix``."""
    stream = kwargs.get("file") or sys.stderr
    if is_terminal(stream):
        return tqdm(*args, **kwargs)
    kwargs.pop("dynamic_ncols", None)  # a log has no width to follow
    return LogProgress(*args, **kwargs)
