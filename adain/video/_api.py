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
from .._runtime import to_device
from ..errors import AdaINError, InputError
from ..inference import Stylizer
from ..inference._stylizer import DEFAULT_SIZE
from ..model import AdaINModel, load_pretrained
from ._pipeline import VideoProgress, batches, run_pipeline
from ._sink import open_sink
from ._source import VideoInfo, open_source
from ._temporal import StatsSmoother, check_smoothing


class VideoInterrupted(AdaINError):
    """Ctrl-C (``KeyboardInterrupt``) stopped ``stylize_video``; the output was closed properly and holds ``frames``.

    Attributes:
        frames: the number of frames written before the interruption.
        total: the number of frames of the input, when the container says; else ``None``.
        path: the output, a playable video (or folder) of those frames; ``None`` when no frame was written.
    """

    def __init__(self, frames: int, total: int | None, path: Path | None) -> None:
        of = f" of {total}" if total else ""
        where = f"{path} holds the first {frames}{of} frames" if path else "no frame was written"
        super().__init__(f"interrupted: {where}")
        self.frames, self.total, self.path = frames, total, path


@dataclass(frozen=True)
class VideoResult:
    """What [``stylize_video``][adain.stylize_video] returns when it finishes or its callback stops it.

    Attributes:
        output: the video file or folder of frames written; ``None`` when no frame was written (the callback
            stopped the run at once).
        frames: the number of frames written.
        seconds: wall-clock seconds the whole call took (reading, stylizing and writing).
        stopped: ``True`` when the callback stopped the run early; the output then holds the first
            ``frames`` frames.
    """

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
    backend: str | None = None,
) -> VideoResult:
    """Stylize every frame of ``input`` with ``style`` and write ``output``.

    The style is encoded once; frames are decoded and encoded in background threads while batches are
    stylized, so memory stays bounded for any length. Guide: [video](../guides/video.md).

    Arguments:
        input: a video file (anything FFmpeg reads, through PyAV; its first video stream), or a folder of
            images: the frames are the images directly in it, in natural order (``2.png`` before ``10.png``),
            all of one size.
        style: one style image (a path, ``PIL.Image``, array or tensor, as for ``adain.stylize``) or a list of
            them, blended with ``style_weights``.
        output: a ``.mp4``, ``.m4v``, ``.mov`` or ``.mkv`` file (H.264, 8-bit 4:2:0, the input's timestamps,
            rotation and colour tags), or a folder, which receives ``frame_000001.png``, ``frame_000002.png``...
        alpha: style strength in [0, 1], as in ``adain.stylize``.
        model: an [``AdaINModel``][adain.AdaINModel]; ``None``: ``adain.load_pretrained()``.
        style_size: new shorter side of each style image in pixels, default 512; ``None`` keeps its size.
            Frames keep their size.
        style_weights: blend weights, one non-negative number per style, normalised to sum 1; ``None``: equal.
        preserve_color: ``None``/``False``, ``"coral"`` (or ``True``) or ``"luminance"``, as in
            ``adain.stylize``; either colour mode re-encodes the style for every frame.
        smoothing: decay in [0, 1) of a moving average of the content statistics over frames, which removes
            flicker from jumping statistics; 0 turns it off (each frame its own statistics, as
            ``adain.stylize``). Restarted at scene cuts.
        cut_threshold: a scene cut, where smoothing restarts, is a frame whose colour histogram differs from
            the previous frame's by more than this, in (0, 1] (0: the same colours, 1: none in common).
        fps: frame rate of a folder of frames, in (0, 1000]; ``None``: 25. A video file keeps its own
            timestamps (giving ``fps`` for one is refused).
        crf: H.264 quality, an integer in [0, 51]: 0 is lossless, lower is better; the default, 18, is visually
            lossless for most content.
        audio: copy the input's audio streams unchanged (never re-encoded).
        overwrite: replace an existing output (else ``OutputExistsError``; a folder holding ``frame_*.png``
            files counts as existing); the output may never be the input (``OutputIsInputError``, even with
            ``overwrite``).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``... or a ``torch.device``; ``None``: CUDA when available,
            else CPU.
        dtype: compute dtype, as in ``adain.stylize``; ``None``: bfloat16 where the device has native
            support, else float32.
        max_memory: bytes one batch may use; ``None``: 80% of the memory free on the device. A frame too
            large to stylize whole is tiled, with the same result.
        batch_size: frames per batch, a positive integer; ``None``: from the memory budget (as many as fit, at
            most 8, about a megapixel per batch on a CPU).
        callback: ``None``, or a function that receives a [``VideoProgress``][adain.VideoProgress] after each
            batch; returning ``True`` stops the run (the output is closed properly and holds the frames
            written; ``VideoResult.stopped``). This is how a program stops on a signal: its handler sets a
            flag that the callback returns (the library installs no handler).
        compile: ``torch.compile`` the networks (as ``Stylizer(compile=True)``): seconds to minutes once, then
            faster frames; worth it for long videos on a GPU (and a few percent on the CPU).
        backend: what runs the networks, as in [``Stylizer``][adain.Stylizer]: ``None``/``"torch"``,
            ``"onnxruntime"`` (CPU, float32; needs ``adain[export]``) or ``"onnxruntime-int8"``.

    Returns:
        A [``VideoResult``][adain.video.VideoResult]: the output written, the number of frames, the seconds
        taken, and whether the callback stopped the run.

    Raises:
        VideoInterrupted: a ``KeyboardInterrupt`` (Ctrl-C) stopped the run; the output was closed properly (a
            playable video of the frames written so far) and the exception says how many frames it holds.
        VideoReadError: the input cannot be read (missing, not a video, no video stream, corrupt).
        MissingDependencyError: a video file in or out without PyAV installed.
        OutputExistsError: the output exists and ``overwrite`` is ``False``.
        OutputIsInputError: the output is the input.
        InputError: any other argument that cannot be used.
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
            stylizer = Stylizer(
                model if model is not None else load_pretrained(),
                device,
                dtype,
                max_memory=max_memory,
                compile=compile,
                backend=backend,
            )
            stylizer.set_style(style, style_size=style_size, style_weights=style_weights, preserve_color=preserve_color)
            size = batch_size if batch_size is not None else frames_per_batch(source.info, stylizer)
            smoother = StatsSmoother(smoothing, cut_threshold) if smoothing > 0 and alpha > 0 else None
            outcome = run_pipeline(
                batches(source.frames(), _check_batch(size)),
                _processor(stylizer, alpha, smoother),
                sink.write,
                total=source.info.total,
                callback=callback,
            )
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
