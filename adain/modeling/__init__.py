"""The network as pure tensor code: feature statistics and AdaIN, the VGG-19 encoder, the decoder, padding
to encodable sizes, and ``ModelConfig``. Imports only torch: no files, devices or printing."""

from ._config import ModelConfig as ModelConfig
from ._decoder import Decoder as Decoder
from ._encoder import VGGEncoder as VGGEncoder
from ._ops import adain as adain
from ._ops import calc_mean_std as calc_mean_std
from ._ops import coral as coral

__all__ = ["Decoder", "ModelConfig", "VGGEncoder", "adain", "calc_mean_std", "coral"]
