"""Ctrl-C held off the steps that must finish whole (asking, telling, a write to the journal file).

Signals reach only the main thread, so holding is a no-op elsewhere; contexts nest: an inner one hands a held
Ctrl-C to the outer one when it ends.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext


@contextmanager
def interrupts_held() -> Iterator[Callable[[], AbstractContextManager[None]]]:
    """Hold Ctrl-C (SIGINT) while the block runs and deliver it when the block ends; the block gets
    `released`, a context inside which Ctrl-C acts at once (a held one is delivered on entry). A no-op off
    the main thread (signals reach only it) and where SIGINT is ignored."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous in (signal.SIG_IGN, None):
        yield nullcontext
        return
    held: list[int] = []

    def hold(signum: int, _frame: object) -> None:
        held.append(signum)

    def deliver() -> None:
        signal.signal(signal.SIGINT, previous)
        if held:
            held.clear()
            signal.raise_signal(signal.SIGINT)

    @contextmanager
    def released() -> Iterator[None]:
        try:
            deliver()
            yield
        finally:
            signal.signal(signal.SIGINT, hold)

    signal.signal(signal.SIGINT, hold)
    try:
        yield released
    except BaseException:
        signal.signal(signal.SIGINT, previous)  # one Ctrl-C is on its way up already; a held one joins it
        raise
    deliver()
