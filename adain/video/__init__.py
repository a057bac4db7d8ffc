"""Video: stylizing every frame of a video file or a folder of frames with one style.

``stylize_video`` reads the frames, stylizes them in batches with a [``Stylizer``][adain.Stylizer] while decoding
and encoding run in background threads, optionally smooths the content statistics over time, and writes H.264
video with the input's timing, rotation and audio, or numbered PNGs; it returns a ``VideoResult`` and reports
``VideoProgress``. Reading and writing video files needs PyAV, the ``video`` extra (``pip install
'adain[video]'``); folders of frames do not. Guide: [video](../guides/video.md).
"""

# Internal modules: _api (stylize_video), _source (frames in: PyAV/FFmpeg or images), _pipeline (background
# decoding and encoding), _temporal (smoothing the content statistics), _sink and _audio (frames, timing,
# rotation and audio out), _pyav (the optional dependency).

from .._arguments import moved_modules
from ._api import VideoInterrupted as VideoInterrupted
from ._api import VideoResult as VideoResult
from ._api import stylize_video as stylize_video
from ._pipeline import VideoProgress as VideoProgress
from ._pyav import MissingDependencyError as MissingDependencyError
from ._source import VideoReadError as VideoReadError

__all__ = [
    "stylize_video",
    "VideoResult",
    "VideoProgress",
    "VideoInterrupted",
    "VideoReadError",
    "MissingDependencyError",
]

# The modules of the first layout, internal now: reachable for a while, with a DeprecationWarning.
__getattr__ = moved_modules(
    __name__,
    {name: f"adain.video._{name}" for name in ("api", "audio", "pipeline", "pyav", "sink", "source", "temporal")},
)
