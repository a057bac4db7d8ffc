"""Ctrl-C and SIGTERM during the long commands (``adain train``, ``adain video``): a graceful stop first.

The library installs no signal handler; its long functions stop when their callback returns ``True`` (the
trainer writes a checkpoint and raises ``adain.training.Interrupted``; ``stylize_video`` closes the output
and returns a result with ``stopped``). ``StopRequests`` turns the first SIGINT or SIGTERM into such a
request, which the command's callbacks return. A second signal is handled as if ``StopRequests`` were not
there (Ctrl-C raises ``KeyboardInterrupt``, SIGTERM does what ``adain.cli`` does with it), for a user who
will not wait for the end of a step.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequests:
    """``with StopRequests() as stop:`` ... a callback returns ``stop.requested``.

    ``signum`` is the first signal received (``None`` before). Outside the main thread, where Python cannot
    handle signals, nothing is installed and ``requested`` stays ``False``.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Callable[[int, FrameType | None], Any] | int | signal.Handlers | None] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in _SIGNALS}
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._restore()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
            return
        previous = self._previous.get(signum, signal.SIG_DFL)
        self._restore()
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            signal.raise_signal(signum)

    def _restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}


def ignore_stop_signals(worker_id: int) -> None:
    """``worker_init_fn`` for data-loading processes: leave SIGINT/SIGTERM to the training process.

    Ctrl-C (and many schedulers' SIGTERM) reach the whole process group; a loader worker that died of it
    would make the next batch fail before the training process could write its checkpoint. The workers
    exit when the training process shuts the loader down (or dies).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
