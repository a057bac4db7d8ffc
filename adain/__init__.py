"""adain: arbitrary style transfer with AdaIN (Huang & Belongie 2017), plus a Gatys optimisation backend and video.

The public API is the names below (``__all__``) and those of the public subpackages: ``adain.inference``,
``adain.optimization``, ``adain.video``, ``adain.training``, ``adain.weights``, ``adain.export``,
``adain.modeling``, ``adain.demo``, and the modules ``adain.methods``, ``adain.errors`` and ``adain.model``.
Modules whose name starts with an underscore are internal and may change without notice.
"""

from . import export  # noqa: F401 -- the public subpackage; importing it fills adain.model.onnx_exporter
from ._arguments import moved_modules
from ._version import __version__ as __version__
from .errors import AdaINError as AdaINError
from .errors import CorruptWeightsError as CorruptWeightsError
from .errors import DiskFullError as DiskFullError
from .errors import ImageReadError as ImageReadError
from .errors import InputError as InputError
from .errors import OutputExistsError as OutputExistsError
from .errors import OutputIsInputError as OutputIsInputError
from .errors import OutputNotWritableError as OutputNotWritableError
from .errors import WeightsError as WeightsError
from .errors import WeightsNotFoundError as WeightsNotFoundError
from .errors import WeightsOfflineError as WeightsOfflineError
from .inference import Stylizer as Stylizer
from .inference import TileProgress as TileProgress
from .methods import stylize as stylize
from .model import AdaINModel as AdaINModel
from .model import ModelConfig as ModelConfig
from .model import load_pretrained as load_pretrained
from .modeling import adain as adain
from .optimization import GatysProgress as GatysProgress
from .optimization import gatys as gatys
from .video import VideoProgress as VideoProgress
from .video import stylize_video as stylize_video
from .weights import list_pretrained as list_pretrained

__all__ = [
    "AdaINError",
    "AdaINModel",
    "CorruptWeightsError",
    "DiskFullError",
    "GatysProgress",
    "ImageReadError",
    "InputError",
    "ModelConfig",
    "OutputExistsError",
    "OutputIsInputError",
    "OutputNotWritableError",
    "Stylizer",
    "TileProgress",
    "VideoProgress",
    "WeightsError",
    "WeightsNotFoundError",
    "WeightsOfflineError",
    "__version__",
    "adain",
    "gatys",
    "list_pretrained",
    "load_pretrained",
    "stylize",
    "stylize_video",
]

# The modules of the first layout, internal now: reachable for a while, with a DeprecationWarning.
__getattr__ = moved_modules(
    __name__,
    {
        "arguments": "adain._arguments",
        "atomic": "adain._atomic",
        "images": "adain._images",
        "io": "adain._io",
        "runtime": "adain._runtime",
        "version": "adain._version",
        "color": "adain.modeling._color",
        "stylizer": "adain.inference._stylizer",
        "tiling": "adain.inference._tiling",
        "transfer": "adain.inference._transfer",
        "prepared": "adain.inference._prepared",
        "compiled": "adain.inference._prepared",
        "preflight": "adain.inference._checks",
        "onnx_export": "adain.export._onnx",
    },
)
