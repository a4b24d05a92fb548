"""Anomalous events from a stream of scores: spans at or above a threshold, short gaps merged, short spans dropped.

One tracker serves a whole video and a live stream alike: scores are fed as they come and an event is
handed back as soon as it can no longer change (the gap after it has reached ``min_gap``).
"""
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Event:
    """One anomalous span: [start, end) in seconds, its highest score and when it was reached."""
    start: float
    end: float
    peak_score: float
    peak_time: float

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def as_dict(self) -> dict:
        return {k: round(v, 4) for k, v in asdict(self).items()}


class EventTracker:
    """Feed ``(start, end, score)`` steps in time order (one per snippet); ``feed`` and ``close`` return the events
    that are final: scores ≥ ``threshold``, merged across gaps shorter than ``min_gap`` seconds, kept when at
    least ``min_length`` seconds long."""

    def __init__(self, threshold: float = 0.5, min_gap: float = 0.0, min_length: float = 0.0) -> None:
        self.threshold, self.min_gap, self.min_length = threshold, min_gap, min_length
        self.open: Event | None = None  # the current span, perhaps still growing or merging

    def feed(self, start: float, end: float, score: float) -> list[Event]:
        above = score >= self.threshold
        done = []
        if self.open is not None:  # the gap since the open span can only grow from here: final once >= min_gap
            gap = (start if above else end) - self.open.end
            if gap > 1e-9 and gap >= self.min_gap:
                done = self.close()
        if above and self.open is None:
            self.open = Event(start, end, score, (start + end) / 2)
        elif above:
            higher = score > self.open.peak_score
            self.open = Event(self.open.start, end, score if higher else self.open.peak_score,
                              (start + end) / 2 if higher else self.open.peak_time)
        return done

    def close(self) -> list[Event]:
        """The end of the scores: the open span, if long enough."""
        done, self.open = self.open, None
        return [done] if done is not None and done.seconds >= self.min_length - 1e-9 else []


def find_events(starts: list[float], ends: list[float], scores: list[float], threshold: float = 0.5,
                min_gap: float = 0.0, min_length: float = 0.0) -> list[Event]:
    """Every event of a whole series of ``(start, end, score)`` steps (seconds)."""
    tracker = EventTracker(threshold, min_gap, min_length)
    events = [e for step in zip(starts, ends, scores) for e in tracker.feed(*step)]
    return events + tracker.close()
