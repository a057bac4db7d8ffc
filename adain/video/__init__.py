"""Video: stylizing every frame of a video file or a folder of frames with one style.

``stylize_video`` (``api``) reads frames (``source``: PyAV/FFmpeg or images), stylizes them in batches
with a ``Stylizer`` while decoding and encoding run in background threads (``pipeline``), optionally
smooths the content statistics over time (``temporal``), and writes H.264 video with the input's
timing, rotation and audio (``sink``, ``audio``) or numbered PNGs. PyAV is optional (``pyav``).
"""

from .api import VideoInterrupted as VideoInterrupted
from .api import VideoResult as VideoResult
from .api import stylize_video as stylize_video
from .pipeline import VideoProgress as VideoProgress
from .pyav import MissingDependencyError as MissingDependencyError
from .source import VideoReadError as VideoReadError

__all__ = ["stylize_video", "VideoResult", "VideoProgress", "VideoInterrupted", "VideoReadError",
           "MissingDependencyError"]
