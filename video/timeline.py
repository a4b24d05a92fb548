"""A video's presentation timeline → output frames: which decoded frame each output slot shows.

Both rules take frames with their times (seconds since the first frame, in presentation order) and yield
``(frame, n)``: show this frame ``n`` times (0 when a faster-coming frame replaces it before its slot). ``end``
is called once the frames are exhausted: the time the last one stops being shown.

* :func:`at_nominal_rate` (no ``--fps``): every decoded frame once, at its slot ``round(time · rate)`` (or the slot
  after its predecessor's, if that is later); slots no frame lands on repeat the frame before them, as a player
  shows it. A constant-rate video gives its frames one to one.
* :func:`on_grid` (``--fps R``): slot ``k`` at ``k / R`` shows the frame on screen then (the last one whose
  time is at or before it).
"""
import math
from fractions import Fraction
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")


def nearest_slot(time: Fraction, rate: Fraction) -> int:
    """The slot ``time`` falls nearest to, on a grid of ``rate`` slots per second (halves round up)."""
    return math.floor(time * rate + Fraction(1, 2))


def at_nominal_rate(timed: Iterable[tuple[Fraction, T]], rate: Fraction,
                    end: Callable[[], Fraction]) -> Iterator[tuple[T, int]]:
    """Every frame shown, each from its own slot until the next frame's; the last until ``end()``'s slot."""
    held, slot = None, 0
    for time, frame in timed:
        if held is not None:
            following = max(slot + 1, nearest_slot(time, rate))
            yield held, following - slot
            slot = following
        held = frame
    if held is not None:
        yield held, max(slot + 1, nearest_slot(end(), rate)) - slot


def on_grid(timed: Iterable[tuple[Fraction, T]], rate: Fraction,
            end: Callable[[], Fraction]) -> Iterator[tuple[T, int]]:
    """Slot ``k`` (at ``k / rate``) shows the last frame whose time is at or before ``k / rate``, up to ``end()``."""
    held, shown = None, 0
    for time, frame in timed:
        if held is not None:
            until = max(shown, math.ceil(time * rate))
            yield held, until - shown
            shown = until
        held = frame
    if held is not None:
        yield held, max(shown, math.ceil(end() * rate)) - shown
