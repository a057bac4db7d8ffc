"""adain: arbitrary style transfer with AdaIN (Huang & Belongie 2017), plus a Gatys optimisation backend and video."""

from .errors import AdaINError as AdaINError
from .errors import CorruptWeightsError as CorruptWeightsError
from .errors import DiskFullError as DiskFullError
from .errors import ImageReadError as ImageReadError
from .errors import InputError as InputError
from .errors import WeightsError as WeightsError
from .errors import WeightsNotFoundError as WeightsNotFoundError
from .errors import WeightsOfflineError as WeightsOfflineError
from .model import AdaINModel as AdaINModel
from .model import ModelConfig as ModelConfig
from .model import load_pretrained as load_pretrained
from .modeling.ops import adain as adain
from .optimization import GatysProgress as GatysProgress
from .optimization import gatys as gatys
from .stylizer import Stylizer as Stylizer
from .stylizer import stylize as stylize
from .tiling import TileProgress as TileProgress
from .version import __version__ as __version__
from .video import VideoProgress as VideoProgress
from .video import stylize_video as stylize_video
from .weights.resolve import list_pretrained as list_pretrained

__all__ = [
    "AdaINError",
    "AdaINModel",
    "CorruptWeightsError",
    "DiskFullError",
    "ImageReadError",
    "InputError",
    "ModelConfig",
    "GatysProgress",
    "VideoProgress",
    "Stylizer",
    "TileProgress",
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
