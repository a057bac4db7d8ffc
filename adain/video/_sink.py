"""Where stylized frames go: an H.264 video (MP4, MOV or MKV, by the extension) or a folder of PNGs.

A user's files are never clobbered (``adain._atomic.check_output``): an existing output is refused unless
``overwrite`` (``OutputExistsError``), and the output may not be the input (``OutputIsInputError``). A video
is written under a hidden temporary name beside the target (``adain._atomic.temporary_name``, naming its
owner: the temporary of a killed run is removed by the next run into that folder) and renamed when closed; an
interrupted run closes it properly first, so the partial video is playable. A folder receives
``frame_000001.png``, ``frame_000002.png``, ... each written atomically. A full disk is a one-line
``DiskFullError`` (``adain._atomic.disk_full_error``), the temporary removed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .._atomic import check_output, disk_full_error, exists_error, is_disk_full, publish, temporary_name, tidy
from .._io import IMAGE_EXTENSIONS, save_image
from ..errors import InputError
from ._audio import AudioCopy
from ._pyav import ffmpeg_reason, require_av
from ._source import VideoInfo

VIDEO_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
"""Output extensions written as video (H.264, 8-bit 4:2:0) and their FFmpeg muxers."""

FRAME_NAME = "frame_{:06d}.png"
_NOT_FOLDERS = IMAGE_EXTENSIONS | {
    ".avi",
    ".webm",
    ".gif",
    ".mpg",
    ".mpeg",
    ".ts",
    ".mts",
    ".m2ts",
    ".flv",
    ".wmv",
    ".ogv",
    ".3gp",
    ".mxf",
    ".y4m",
}  # names that are surely not meant as folders
_MATRICES = {1, 4, 5, 7, 9}  # colour matrices swscale converts with (FFmpeg AVCOL_SPC values)


def open_sink(path, info: VideoInfo, *, overwrite: bool = False, crf: int = 18, audio: bool = True):
    """A ``VideoWriter`` for a video extension, else a ``FrameWriter`` (a folder, existing or not; an
    image or other video extension is refused)."""
    path = Path(path)
    # Only the input here: whether an existing output may be replaced is each writer's check (a folder of
    # frames may exist, frames in it may not).
    check_output(path, overwrite=True, inputs=[info.path])
    if path.suffix.lower() in VIDEO_FORMATS:
        return VideoWriter(path, info, overwrite=overwrite, crf=crf, audio=audio)
    if path.suffix.lower() in _NOT_FOLDERS and not path.is_dir():
        raise InputError(
            f"{path}: cannot write {path.suffix!r} files; use {', '.join(VIDEO_FORMATS)}, or a folder for PNG frames"
        )
    return FrameWriter(path, info, overwrite=overwrite)


class VideoWriter:
    """H.264 (libx264, ``crf``) with the input's timestamps, frame rate, size, rotation and colour tags;
    the input's audio streams copied unchanged. Odd sizes are padded by one repeated row/column."""

    def __init__(self, path: Path, info: VideoInfo, *, overwrite: bool, crf: int, audio: bool) -> None:
        if path.is_dir():
            raise InputError(f"{path}: is a folder; give a file name for the video, or no extension for frames")
        check_output(path, overwrite=overwrite)
        self._av = require_av("writing video files")
        self.path, self.info, self.overwrite, self.written = path, info, overwrite, 0
        self.tmp = temporary_name(path)
        self._durations: dict[int, int] = {}
        self._end: int | None = None  # the timestamp after the last frame written
        self._audio: AudioCopy | None = None
        self._step = max(1, round(1 / (info.rate * info.time_base)))
        path.parent.mkdir(parents=True, exist_ok=True)
        tidy(path.parent)
        try:
            self._container = self._av.open(str(self.tmp), "w", format=VIDEO_FORMATS[path.suffix.lower()])
        except (self._av.error.FFmpegError, OSError) as exc:
            raise self._error(exc) from None
        try:
            self._stream = self._video_stream(crf)
            if audio and info.has_audio and not info.is_folder:
                self._audio = AudioCopy(self._av, info.path, self._container, path)
        except BaseException:
            self.abort()
            raise

    def _video_stream(self, crf: int):
        info = self.info
        stream = self._container.add_stream("libx264", rate=info.rate)
        stream.width, stream.height = info.width + info.width % 2, info.height + info.height % 2
        stream.pix_fmt = "yuv420p"
        stream.time_base = stream.codec_context.time_base = info.time_base
        stream.options = {"crf": str(int(crf)), "preset": "medium"}
        if info.sample_aspect_ratio:
            stream.codec_context.sample_aspect_ratio = info.sample_aspect_ratio
        for name, value in info.color.items():
            setattr(stream.codec_context, name, value)
        if info.rotation:
            stream.set_display_rotation(info.rotation)
        space = info.color.get("colorspace")
        self._convert = dict(
            dst_colorspace=5 if space == 6 else space if space in _MATRICES else None,
            dst_color_range=info.color.get("color_range") or None,
        )
        return stream

    def write(self, rgb: np.ndarray, pts: int, duration: int) -> None:
        """Encode one ``(H, W, 3)`` uint8 frame at ``pts`` and copy the audio that plays before it."""
        if rgb.shape[0] % 2 or rgb.shape[1] % 2:
            rgb = np.pad(rgb, ((0, rgb.shape[0] % 2), (0, rgb.shape[1] % 2), (0, 0)), mode="edge")
        frame = self._av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p", **self._convert)
        frame.pts, frame.time_base = pts, self.info.time_base
        self._durations[pts] = duration
        try:
            self._mux(self._stream.encode(frame))
            if self._audio is not None:
                self._audio.copy_until(float(pts * self.info.time_base))
        except (self._av.error.FFmpegError, OSError) as exc:
            raise self._error(exc) from None
        self.written += 1
        self._end = pts + (duration or self._step)

    def _mux(self, packets) -> None:
        for packet in packets:  # the encoder drops frame durations; the last frame's matters to the muxer
            duration = self._durations.pop(packet.pts, None)
            if duration:
                packet.duration = duration
            self._container.mux(packet)

    def close(self, complete: bool = True) -> Path | None:
        """Flush, copy the rest of the audio (all of it, or up to the last frame if not ``complete``),
        close and rename into place. Returns the path, or ``None`` when no frame was written."""
        if not self.written:
            self.abort()
            return None
        assert self._end is not None, "set by the first frame written"
        try:
            self._mux(self._stream.encode(None))
            if self._audio is not None:
                self._audio.copy_until(None if complete else float(self._end * self.info.time_base))
            self._container.close()
        except (self._av.error.FFmpegError, OSError) as exc:
            error = self._error(exc)  # before abort() deletes the temporary, whose size it reports
            self.abort()
            raise error from None
        if self._audio is not None:
            self._audio.close()
        try:
            publish(self.tmp, self.path, replace=self.overwrite)
        except FileExistsError:
            self.tmp.unlink(missing_ok=True)
            raise exists_error(self.path, "appeared while the video was written") from None
        return self.path

    def _error(self, exc: BaseException) -> Exception:
        """``DiskFullError`` for a full disk (PyAV's ``OSError`` ENOSPC), else ``InputError`` naming the video."""
        if is_disk_full(exc):
            size = self.tmp.stat().st_size if self.tmp.is_file() else None
            return disk_full_error(self.path, exc, size)
        return InputError(f"{self.path}: cannot write video ({ffmpeg_reason(exc)})")

    def abort(self) -> None:
        """Close and delete the temporary file (the target is left as it was)."""
        for close in (self._container.close, *([self._audio.close] if self._audio is not None else [])):
            try:
                close()
            except Exception:  # noqa: BLE001 - already failing; the file is deleted below
                pass
        self.tmp.unlink(missing_ok=True)


class FrameWriter:
    """Numbered PNGs in a folder, turned upright when the video had a rotation (multiples of 90 degrees)."""

    def __init__(self, path: Path, info: VideoInfo, *, overwrite: bool) -> None:
        if path.exists() and not path.is_dir():
            raise InputError(f"{path}: exists and is not a folder")
        self._stale = sorted(path.glob("frame_*.png")) if path.is_dir() else []
        for frame in self._stale:  # frames of an earlier run are outputs that exist
            check_output(frame, overwrite=overwrite)
        self.path, self.written = path, 0
        self._turns = (info.rotation // 90) % 4 if info.rotation % 90 == 0 else 0
        path.mkdir(parents=True, exist_ok=True)

    def write(self, rgb: np.ndarray, pts: int, duration: int) -> None:
        image = Image.fromarray(np.ascontiguousarray(np.rot90(rgb, self._turns)))
        save_image(image, self.path / FRAME_NAME.format(self.written + 1))
        self.written += 1

    def close(self, complete: bool = True) -> Path:
        """Remove frames of an earlier run beyond the ones written now (only there with ``overwrite``)."""
        kept = {FRAME_NAME.format(i + 1) for i in range(self.written)}
        for old in self._stale:
            if old.name not in kept:
                old.unlink(missing_ok=True)
        return self.path

    def abort(self) -> None:
        pass  # every frame written is a complete file
