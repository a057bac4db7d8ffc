"""Video: stylizing every frame of a video file or a folder of frames with one style.

``stylize_video`` (``_api``) reads frames (``_source``: PyAV/FFmpeg or images), stylizes them in batches
with a ``Stylizer`` while decoding and encoding run in background threads (``_pipeline``), optionally
smooths the content statistics over time (``_temporal``), and writes H.264 video with the input's
timing, rotation and audio (``_sink``, ``_audio``) or numbered PNGs. PyAV is optional (``_pyav``).
"""

from .._arguments import moved_modules
from ._api import VideoInterrupted as VideoInterrupted
from ._api import VideoResult as VideoResult
from ._api import stylize_video as stylize_video
from ._pipeline import VideoProgress as VideoProgress
from ._pyav import MissingDependencyError as MissingDependencyError
from ._source import VideoReadError as VideoReadError

__all__ = ["stylize_video", "VideoResult", "VideoProgress", "VideoInterrupted", "VideoReadError",
           "MissingDependencyError"]

# The modules of the first layout, internal now: reachable for a while, with a DeprecationWarning.
__getattr__ = moved_modules(__name__, {name: f"adain.video._{name}" for name in ('api', 'audio', 'pipeline', 'pyav', 'sink', 'source', 'temporal')})
