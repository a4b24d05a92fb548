"""Ctrl-C in the middle of work that must not be cut: the block runs whole, then the interrupt says what was kept."""
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, once what could be kept is saved; ``str()`` is the line for the user ('' where nothing to say)."""


@contextmanager
def sigint_held(drop: bool = False) -> Iterator[None]:
    """Run the block whole: a Ctrl-C inside it takes effect when it ends (``drop``: is ignored).

    Only the main thread receives signals; elsewhere, or under a handler not set from Python, the block runs as is.
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught and not drop:
        signal.raise_signal(signal.SIGINT)  # to the handler of before: a KeyboardInterrupt by default
