"""``stylize_video``: one style (or blend) over every frame of a video or a folder of frames.

The style is encoded once; frames are decoded, stylized in batches the Stylizer sizes from its memory
budget (``Stylizer.frames_per_batch``), and encoded in a pipeline (``adain.video._pipeline``). What goes in
and out is ``source`` and ``sink``'s job; temporal smoothing of the content statistics is ``temporal``'s.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .._arguments import check_alpha
from .._images import ImageLike
from ..errors import AdaINError, InputError
from ..inference import Stylizer
from ..inference._stylizer import DEFAULT_SIZE
from ..model import AdaINModel, load_pretrained
from .._runtime import to_device
from ._pipeline import VideoProgress, batches, run_pipeline
from ._sink import open_sink
from ._source import VideoInfo, open_source
from ._temporal import StatsSmoother, check_smoothing


class VideoInterrupted(AdaINError):
    """Ctrl-C (``KeyboardInterrupt``) stopped ``stylize_video``; the output was closed properly and holds ``frames``."""

    def __init__(self, frames: int, total: int | None, path: Path | None) -> None:
        of = f" of {total}" if total else ""
        where = f"{path} holds the first {frames}{of} frames" if path else "no frame was written"
        super().__init__(f"interrupted: {where}")
        self.frames, self.total, self.path = frames, total, path


@dataclass(frozen=True)
class VideoResult:
    output: Path | None  # None when no frame was written (a callback stopped the run at once)
    frames: int  # frames written
    seconds: float
    stopped: bool  # the callback stopped the run early


def stylize_video(
    input: str | os.PathLike,
    style: ImageLike | Sequence[ImageLike],
    output: str | os.PathLike,
    *,
    alpha: float = 1.0,
    model: AdaINModel | None = None,
    style_size: int | None = DEFAULT_SIZE,
    style_weights: Sequence[float] | None = None,
    preserve_color: bool | str | None = None,
    smoothing: float = 0.5,
    cut_threshold: float = 0.3,
    fps: float | None = None,
    crf: int = 18,
    audio: bool = True,
    overwrite: bool = False,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    max_memory: int | None = None,
    batch_size: int | None = None,
    callback: Callable[[VideoProgress], bool | None] | None = None,
    compile: bool = False,
) -> VideoResult:
    """Stylize every frame of ``input`` with ``style`` and write ``output``.

    Arguments:
        input: a video file (anything FFmpeg reads) or a folder of images (frames in natural order).
        style: one style image or a list (blended; ``style_weights`` as ``adain.stylize``).
        output: ``.mp4``/``.m4v``/``.mov``/``.mkv`` (H.264, 8-bit 4:2:0) or a folder (``frame_000001.png``...).
        alpha, model, style_size, style_weights, preserve_color, device, dtype, max_memory: as ``adain.stylize``.
        smoothing: decay of the moving average of the content statistics over frames (0 = each frame its
            own, as ``adain.stylize``); restarted at scene cuts, where the colour histograms of consecutive
            frames differ by more than ``cut_threshold`` (0 = same colours, 1 = none in common; see
            ``adain.video._temporal``).
        fps: frame rate of a folder of frames (default 25); a video keeps its own timestamps.
        crf: H.264 quality (0 lossless ... 51; 18 is visually lossless for most content).
        audio: copy the input's audio streams unchanged.
        overwrite: replace an existing output (else ``OutputExistsError``); the output may never be the input
            (``OutputIsInputError``, even with ``overwrite``).
        batch_size: frames per batch; default from the memory budget.
        callback: receives a ``VideoProgress`` after each batch; returning ``True`` stops the run (the output
            is closed properly and holds the frames written; ``VideoResult.stopped``). This is how a program
            stops on a signal: its handler sets a flag that the callback returns (the library installs none).
        compile: ``torch.compile`` the networks (``Stylizer(compile=True)``): seconds to minutes once, then
            faster frames; worth it for long videos on a GPU (and a few percent on the CPU).
    Returns:
        A ``VideoResult``. A ``KeyboardInterrupt`` (Ctrl-C) closes the output properly (a playable video of
        the frames written so far) and raises ``VideoInterrupted``, which says how many frames it holds.
    """
    alpha = check_alpha(alpha)
    smoothing, cut_threshold = check_smoothing(smoothing, cut_threshold)
    if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51:
        raise InputError(f"crf: expected an integer in [0, 51] (lower is better), got {crf!r}")
    start = time.perf_counter()
    source = open_source(input, fps)
    try:
        sink = open_sink(output, source.info, overwrite=overwrite, crf=crf, audio=audio)
        try:
            stylizer = Stylizer(model if model is not None else load_pretrained(), device, dtype,
                                max_memory=max_memory, compile=compile)
            stylizer.set_style(style, style_size=style_size, style_weights=style_weights,
                               preserve_color=preserve_color)
            size = batch_size if batch_size is not None else frames_per_batch(source.info, stylizer)
            smoother = StatsSmoother(smoothing, cut_threshold) if smoothing > 0 and alpha > 0 else None
            outcome = run_pipeline(batches(source.frames(), _check_batch(size)),
                                   _processor(stylizer, alpha, smoother), sink.write,
                                   total=source.info.total, callback=callback)
            path = sink.close(complete=outcome == "done")
        except BaseException:
            sink.abort()
            raise
    finally:
        source.close()
    if outcome == "interrupted":
        raise VideoInterrupted(sink.written, source.info.total, path)
    return VideoResult(path, sink.written, time.perf_counter() - start, outcome == "stopped")


def frames_per_batch(info: VideoInfo, stylizer: Stylizer) -> int:
    """Frames per batch for ``info``'s frame size, as ``stylizer`` decides from its memory budget
    (``Stylizer.frames_per_batch``): a frame too large to stylize whole goes alone, in tiles (the same
    result); ``InputError`` naming the input if even the smallest tiles do not fit, before any output."""
    return stylizer.frames_per_batch(info.height, info.width, what=str(info.path))


def _check_batch(size) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InputError(f"batch_size: expected a positive integer or None (from the memory budget), got {size!r}")
    return size


def _processor(stylizer: Stylizer, alpha: float, smoother: StatsSmoother | None) -> Callable[[np.ndarray], np.ndarray]:
    """``(N, H, W, 3)`` uint8 frames -> stylized, the same shape, on the CPU."""

    def process(frames: np.ndarray) -> np.ndarray:
        x = to_device(torch.from_numpy(frames), stylizer.device).permute(0, 3, 1, 2)  # uint8: 4x less to copy
        if smoother is not None:
            smoother.observe(x)
        out = stylizer.stylize_tensor(x, alpha, content_stats=smoother)
        out = out.mul_(255).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
        return out.cpu().numpy()

    return process
