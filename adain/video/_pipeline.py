"""Decode, stylize and encode at once: the decoder and the encoder run in background threads, joined to
the computing (main) thread by bounded queues, so the accelerator is never idle waiting for frames and
memory stays bounded however long the video is.

``run_pipeline`` returns how the run ended: ``"done"``, ``"stopped"`` (the callback returned True) or
``"interrupted"`` (KeyboardInterrupt: Ctrl-C, or SIGTERM as the caller arranges). In the last two cases
the frames already stylized are still written, so the output ends cleanly where the stylizing stopped.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

import numpy as np

QUEUE_DEPTH = 2
"""Batches each queue holds: one being worked on at either end, one ready."""

_END = object()
_POLL = 0.1  # seconds between checks of the other threads while waiting on a queue


@dataclass(frozen=True)
class VideoProgress:
    """What the callback of [``adain.stylize_video``][adain.stylize_video] receives after each batch of frames.

    Attributes:
        frames: frames stylized so far.
        total: frames in the video, when the container says; else ``None`` (a folder of frames always says).
        fps: frames per second since the start (decoding and encoding included).
        eta: seconds left at that rate, when ``total`` is known; else ``None``.
        elapsed: seconds since the start.
    """

    frames: int  # frames stylized so far
    total: int | None  # frames in the video, when the container says
    fps: float  # frames per second since the start (decoding and encoding included)
    eta: float | None  # seconds left at that rate, when ``total`` is known
    elapsed: float  # seconds since the start


@dataclass(frozen=True)
class Batch:
    frames: np.ndarray  # (N, H, W, 3) uint8
    pts: list[int]
    durations: list[int]


@dataclass(frozen=True)
class _Failed:
    error: BaseException


def batches(frames: Iterable[tuple[np.ndarray, int, int]], size: int) -> Iterator[Batch]:
    """Group ``(rgb, pts, duration)`` frames into batches of ``size`` (the last may be smaller)."""
    frames = iter(frames)
    while group := list(islice(frames, size)):
        yield Batch(np.stack([f[0] for f in group]), [f[1] for f in group], [f[2] for f in group])


class _Worker(threading.Thread):
    """A daemon thread that keeps its exception for the main thread."""

    def __init__(self, target: Callable[[], None], name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._work = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._work()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self.error = exc


def _put(q: queue.Queue, item, give_up: Callable[[], bool]) -> bool:
    while True:
        try:
            q.put(item, timeout=_POLL)
            return True
        except queue.Full:
            if give_up():
                return False


def run_pipeline(
    source: Iterator[Batch],
    process: Callable[[np.ndarray], np.ndarray],
    write: Callable[[np.ndarray, int, int], None],
    *,
    total: int | None = None,
    callback: Callable[[VideoProgress], bool | None] | None = None,
) -> str:
    """Read ``source`` in one thread, ``process`` each batch's frames here, ``write`` each result frame
    in another thread. Errors in either thread are raised here."""
    stop, abort = threading.Event(), threading.Event()
    inbox: queue.Queue = queue.Queue(QUEUE_DEPTH)
    outbox: queue.Queue = queue.Queue(QUEUE_DEPTH)

    def read() -> None:
        try:
            for batch in source:
                if not _put(inbox, batch, stop.is_set):
                    return
            item = _END
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            item = _Failed(exc)
        _put(inbox, item, stop.is_set)

    def drain() -> None:
        while (item := outbox.get()) is not _END:
            out, batch = item
            for rgb, pts, duration in zip(out, batch.pts, batch.durations):
                if abort.is_set():
                    break
                write(rgb, pts, duration)

    reader, writer = _Worker(read, "adain-video-decode"), _Worker(drain, "adain-video-encode")
    reader.start()
    writer.start()
    outcome = "interrupted"
    try:
        outcome = _compute(inbox, outbox, process, writer, total, callback)
    except KeyboardInterrupt:
        pass
    except BaseException:
        abort.set()
        raise
    finally:
        stop.set()
        _put(outbox, _END, lambda: not writer.is_alive())
        _join(writer, abort)
        _join(reader, abort)
    if writer.error is not None:
        raise writer.error
    return outcome


def _compute(inbox: queue.Queue, outbox: queue.Queue, process, writer: _Worker, total, callback) -> str:
    start, done = time.perf_counter(), 0

    def writer_failed() -> bool:
        if writer.error is not None:
            raise writer.error
        return False

    while True:
        item = None
        while item is None:
            try:
                item = inbox.get(timeout=_POLL)
            except queue.Empty:
                writer_failed()
        if item is _END:
            return "done"
        if isinstance(item, _Failed):
            raise item.error
        out = process(item.frames)
        _put(outbox, (out, item), writer_failed)
        done += len(out)
        if callback is not None and callback(_progress(done, total, time.perf_counter() - start)):
            return "stopped"


def _progress(done: int, total: int | None, elapsed: float) -> VideoProgress:
    fps = done / elapsed if elapsed > 0 else 0.0
    eta = max(0.0, (total - done) / fps) if total is not None and fps > 0 else None
    return VideoProgress(done, total, fps, eta, elapsed)


def _join(thread: threading.Thread, abort: threading.Event) -> None:
    """Wait for ``thread``; a further Ctrl-C only makes the writer skip the frames still queued."""
    while thread.is_alive():
        try:
            thread.join()
        except KeyboardInterrupt:
            abort.set()
