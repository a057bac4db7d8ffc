"""The optional PyAV dependency (``pip install 'adain[video]'``): imported on first use, with a clear error.

Reading or writing video files needs PyAV (FFmpeg's libraries, with libx264 and AAC, in its wheels); a
folder of frames in and out does not. Nothing else in the package imports ``av``.
"""

from __future__ import annotations

from types import ModuleType

from ..errors import MissingDependencyError, install_hint

INSTALL_HINT = install_hint("video")


def require_av(what: str = "video files") -> ModuleType:
    """``import av``, or ``MissingDependencyError`` naming the install command."""
    try:
        import av
    except ImportError:
        raise MissingDependencyError(f"{what} need PyAV, which is not installed: {INSTALL_HINT}") from None
    return av


def ffmpeg_reason(exc: BaseException) -> str:
    """FFmpeg's message without the file name PyAV appends (callers name the file themselves)."""
    text = str(getattr(exc, "strerror", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
