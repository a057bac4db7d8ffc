"""Where frames come from: a video file (decoded by PyAV/FFmpeg) or a folder of images, with what the
output must preserve (size, frame rate, timestamps, rotation, colour tags).

Sources are opened in the caller's thread (so a bad input fails at once, with one line naming the file)
and then read in a background thread through ``frames()``, which yields ``(rgb, pts, duration)``:
an ``(H, W, 3)`` uint8 array in the stored orientation and its timestamps in ``info.time_base`` units.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import chain
from pathlib import Path

import numpy as np

from .._io import IMAGE_EXTENSIONS, read_image, read_size
from ..errors import ImageReadError, InputError
from ._pyav import ffmpeg_reason, require_av

DEFAULT_FPS = 25
"""Frame rate of a folder of frames when none is given (FFmpeg's default for image sequences)."""

Frame = tuple[np.ndarray, int, int]  # rgb, pts, duration (both in VideoInfo.time_base units)


class VideoReadError(ImageReadError):
    """A video (or a frame of a folder) that cannot be read: missing, not a video, no video stream, corrupt.
    An ``ImageReadError`` (so an ``InputError``): an input that cannot be read, a failure (exit status 1)."""


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int
    height: int
    rate: Fraction  # frames per second (the average for variable-frame-rate video)
    time_base: Fraction  # unit of the timestamps ``frames()`` yields
    total: int | None  # number of frames when the container says so
    rotation: int = 0  # display matrix: degrees the frame is turned counter-clockwise for display
    color: dict = field(default_factory=dict)  # FFmpeg colour tags of the frames (colorspace, range, ...)
    sample_aspect_ratio: Fraction | None = None
    has_audio: bool = False
    is_folder: bool = False


def open_source(path, fps: float | None = None) -> VideoFile | FrameFolder:
    """A folder of images (frames in natural order: ``2.png`` before ``10.png``) or a video file."""
    path = Path(path)
    if not path.exists():
        raise VideoReadError(f"{path}: no such file or directory")
    if path.is_dir():
        return FrameFolder(path, DEFAULT_FPS if fps is None else fps)
    if fps is not None:
        raise InputError(
            f"fps: {path} is a video file, whose own frame rate and timestamps are kept; "
            "fps applies to a folder of frames"
        )
    return VideoFile(path)


class VideoFile:
    """The first video stream of any file FFmpeg reads. The first frame is decoded when opening."""

    def __init__(self, path: Path) -> None:
        av = require_av()
        self.path = path
        try:
            self._container = av.open(str(path), "r")
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise VideoReadError(f"{path}: not a video FFmpeg can read ({ffmpeg_reason(exc)})") from None
        try:
            self.info = self._probe(av)
        except BaseException:
            self._container.close()
            raise

    def _probe(self, av) -> VideoInfo:
        if not self._container.streams.video:
            raise VideoReadError(f"{self.path}: has no video stream")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self._decoded = self._decode(av, stream)
        first = next(self._decoded, None)
        if first is None:
            raise VideoReadError(f"{self.path}: its video stream has no frames")
        self._first = first
        start, length = stream.start_time, stream.duration
        self._end = start + length if start is not None and length else None  # in stream.time_base
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(DEFAULT_FPS)
        color = {
            name: int(getattr(first, name)) for name in ("colorspace", "color_range", "color_primaries", "color_trc")
        }
        return VideoInfo(
            self.path,
            first.width,
            first.height,
            Fraction(rate),
            Fraction(stream.time_base or 1 / rate),
            stream.frames or None,
            int(first.rotation or 0),
            color,
            stream.sample_aspect_ratio or None,
            bool(self._container.streams.audio),
        )

    def _decode(self, av, stream) -> Iterator:
        done = 0
        try:
            for frame in self._container.decode(stream):
                yield frame
                done += 1
        except av.error.FFmpegError as exc:
            raise VideoReadError(f"{self.path}: cannot decode frame {done + 1} ({ffmpeg_reason(exc)})") from None

    def frames(self) -> Iterator[Frame]:
        """Every frame as RGB in the stored orientation, with increasing timestamps (missing or repeated
        ones are filled in so that the encoder accepts them) and display durations (up to the next frame;
        the last one's up to the end of the stream)."""
        info = self.info
        held: np.ndarray | None = None  # the frame waiting for its duration, and its timestamp
        last: int | None = None
        step = max(1, round(1 / (info.rate * info.time_base)))
        color_range = info.color.get("color_range") or None
        for frame in chain([self._first], self._decoded):
            pts = frame.pts
            if pts is None or (last is not None and pts <= last):
                pts = 0 if last is None else last + (step if frame.pts is None else 1)
            if held is not None and last is not None:  # both set from the second frame on
                yield held, last, pts - last
            held = frame.to_ndarray(format="rgb24", width=info.width, height=info.height, src_color_range=color_range)
            last = pts
        assert held is not None and last is not None, "the first frame is decoded when opening"
        yield held, last, self._end - last if self._end is not None and self._end > last else step

    def close(self) -> None:
        self._container.close()


class FrameFolder:
    """The image files directly inside a folder, in natural order; every frame must have the same size."""

    def __init__(self, path: Path, fps: float) -> None:
        if isinstance(fps, bool) or not isinstance(fps, (int, float, Fraction)) or not 0 < fps <= 1000:
            raise InputError(f"fps: expected a frame rate in (0, 1000], got {fps!r}")
        self.path = path
        self.files = sorted(
            (
                f
                for f in path.iterdir()
                if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_EXTENSIONS
            ),
            key=_natural_key,
        )
        if not self.files:
            raise VideoReadError(f"{path}: no image files (frames) in this folder")
        height, width = read_size(self.files[0])
        rate = Fraction(fps).limit_denominator(1001)
        self.info = VideoInfo(path, width, height, rate, 1 / rate, len(self.files), is_folder=True)

    def frames(self) -> Iterator[Frame]:
        for index, file in enumerate(self.files):
            image = read_image(file)
            if image.size != (self.info.width, self.info.height):
                raise VideoReadError(
                    f"{file}: frame is {image.width}x{image.height}, the first frame is "
                    f"{self.info.width}x{self.info.height}; all frames must have the same size"
                )
            yield np.asarray(image), index, 1

    def close(self) -> None:
        pass


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]
